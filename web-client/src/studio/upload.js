// Upload a model or image from the display editor: POST /api/v1/assets (multipart, the
// session cookie and the CSRF header, as the studio's other writes) with a progress bar
// while the bytes go up, then the asset's status polled (queued → processing → ready or
// failed) and the pipeline's report in plain words: what it made of the file, its warnings,
// or why it refused it. A ready asset is handed to `onReady` (the editor puts it in a node).
import { call, writeHeaders } from './api.js';

const POLL_MS = 300;
const kb = (bytes) => `${Math.max(1, Math.round(bytes / 1024))} KB`;

function send(url, form, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [k, v] of Object.entries(writeHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, data });
    });
    xhr.addEventListener('error', () => resolve({ status: 0, ok: false, data: { detail: 'the file did not reach the server (network error)' } }));
    xhr.send(form);
  });
}

const top = (asset) => asset.files.find((f) => f.role === 'lod0' || f.role === 'image');

// What the pipeline did, in a curator's words.
function madeOf(asset) {
  const file = top(asset);
  const lines = [];
  if (asset.kind === 'image') {
    lines.push(`Made web-ready: ${asset.source_name} (${kb(asset.input_bytes)}) is now a ${kb(file.bytes)} picture for phones, with a fallback for older browsers.`);
    return lines;
  }
  const lods = asset.files.filter((f) => f.role.startsWith('lod')).length;
  lines.push(`Made web-ready: ${asset.source_name} (${kb(asset.input_bytes)}) is now ${kb(file.bytes)} with ${asset.triangles} triangles`
    + `${lods > 1 ? `, in ${lods} levels of detail (phones load a lighter one)` : ''}`
    + `${asset.files.some((f) => f.role === 'compat') ? ', with a fallback for browsers without WebP pictures' : ''}.`);
  const b = asset.bbox;
  const size = b && (b.size || (b.min && b.max ? b.max.map((v, i) => v - b.min[i]) : null));
  lines.push(`Scaled to metres, standing upright on its base${Array.isArray(size) ? ` (${size.map((v) => Number(v).toFixed(2)).join(' × ')} m)` : ''}.`);
  return lines;
}

function report(box, { heading, lines = [], notes = [], failed = false }) {
  box.replaceChildren();
  box.className = failed ? 'alert' : '';
  const h = document.createElement('p');
  h.textContent = heading;
  box.append(h);
  for (const line of lines) {
    const p = document.createElement('p');
    p.textContent = line;
    box.append(p);
  }
  if (notes.length) {
    const p = document.createElement('p');
    p.textContent = 'The pipeline noted:';
    const ul = document.createElement('ul');
    for (const n of notes) {
      const li = document.createElement('li');
      li.textContent = n.message || n.code;
      ul.append(li);
    }
    box.append(p, ul);
  }
}

const detailOf = (result) => {
  const d = result.data?.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((x) => x.msg).join('; ');
  return d?.message || `the server answered ${result.status}`;
};

/**
 * @param {object} o {url, market, input, progress, box, onReady(asset) -> string, onState(state)}
 */
export function setupUpload({ url, market, input, progress, box, onReady, onState = () => {} }) {
  input.addEventListener('change', async () => {
    const files = [...input.files];
    if (!files.length) return;
    const form = new FormData();
    form.append('market', market);
    for (const f of files) form.append('files', f, f.name);
    input.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    onState('uploading');
    report(box, { heading: `Uploading ${files.map((f) => f.name).join(', ')}…` });
    const sent = await send(url, form, (share) => {
      progress.value = Math.round(share * 100);
    });
    let asset = sent.data;
    if (!sent.ok) {
      finish('failed', { heading: `Not uploaded: ${detailOf(sent)}`, lines: ['The display is unchanged.'], failed: true });
      return;
    }
    progress.value = 100;
    while (asset.status === 'queued' || asset.status === 'processing') {
      report(box, { heading: asset.status === 'queued' ? 'Uploaded; waiting for its turn to be processed…' : 'Processing: making it light enough for phones…' });
      await new Promise((r) => setTimeout(r, POLL_MS));
      const polled = await call(`${url}/${asset.id}`);
      if (polled.ok) asset = polled.data;
    }
    if (asset.status !== 'ready') {
      finish('failed', { heading: `Not usable: ${asset.error || 'processing failed'}`, lines: ['The display is unchanged.'], notes: asset.warnings || [], failed: true });
      return;
    }
    const used = onReady(asset);
    finish('ready', { heading: `Ready: “${asset.name}”. ${used}`, lines: madeOf(asset), notes: asset.warnings || [] });
  });

  function finish(state, what) {
    report(box, what);
    progress.hidden = true;
    input.disabled = false;
    input.value = '';
    onState(state);
  }
}

export const assetEntry = (market, asset) => {
  const file = top(asset);
  return { name: asset.name, url: file.url, media_type: file.media_type, size: file.bytes, thumbnail: `/studio/${market}/assets/${asset.name}/thumbnail.png`,
    notes: (asset.warnings || []).map((w) => w.message || w.code) };
};
