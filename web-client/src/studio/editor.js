// Entry of the display editor /studio/<m>/displays/<d> (its own chunk: visitor pages never
// load it). The document is the display's scene file as JSON (GET .../source with its
// ETag); every edit is one undo step, and is sent (150 ms after the last one) to the
// preview API, which validates it and publishes it on the display's preview channel: the
// 3D view here and any phone on the preview link follow that channel. Publish writes the
// file under If-Match; a conflict shows both versions.
import './editor.css';
import { call, problemsOf } from './api.js';
import { History } from './history.js';
import * as D from './doc.js';
import { SchemaForm, resolve, showProblems } from './schemaform.js';
import { Viewport } from './viewport.js';
import { renderTree } from './tree.js';
import { showConflict } from './conflict.js';
import { renderHistory } from './history_panel.js';
import { assetEntry, setupUpload } from './upload.js';
import { setupSchedule } from './schedule_card.js';

const PREVIEW_DEBOUNCE_MS = 150;
const WATCH_MS = 5000;

const boot = JSON.parse(document.getElementById('editor-boot').textContent);
const $ = (id) => document.getElementById(id);
const hook = { ready: false, previews: 0, previewed: 0, problems: [], errors: [], published: 0 };
window.__editor = hook;

const ed = {
  doc: null, etag: null, saved: null, selected: null, history: new History(),
  coalesce: null, problems: [], form: null, timer: null, seq: 0, viewport: null,
};
Object.defineProperty(hook, 'doc', { get: () => ed.doc });
Object.defineProperty(hook, 'etag', { get: () => ed.etag });
Object.defineProperty(hook, 'selected', { get: () => ed.selected });

function status(text) {
  $('ed-status').textContent = text;
}

const dirty = () => JSON.stringify(ed.doc) !== JSON.stringify(ed.saved);

// ---- edits ------------------------------------------------------------------------------

// One edit: `mutate` changes the document in place. Keystrokes in one field (the same
// `coalesce` key) make one undo step together.
function edit(label, mutate, { coalesce = null, redraw = true } = {}) {
  const before = D.clone(ed.doc);
  mutate(ed.doc);
  if (JSON.stringify(before) === JSON.stringify(ed.doc)) return;
  if (!(coalesce && coalesce === ed.coalesce)) ed.history.push(before, label);
  ed.coalesce = coalesce;
  changed({ redraw });
}

function changed({ redraw = true } = {}) {
  hook.lastEditAt = Date.now(); // tests time a phone's update from here
  $('ed-undo').disabled = !ed.history.canUndo;
  $('ed-redo').disabled = !ed.history.canRedo;
  drawTree();
  if (redraw) drawForms();
  $('ed-saved').textContent = dirty() ? 'Changes not published yet' : 'Published version';
  updatePublish();
  schedulePreview();
}

function restore(step, verb) {
  if (!step) return;
  ed.doc = step.doc;
  ed.coalesce = null;
  if (ed.selected && !D.find(ed.doc, ed.selected)) ed.selected = null;
  ed.viewport?.select(ed.selected);
  changed();
  status(`${verb}: ${step.label}`);
}

const undo = () => restore(ed.history.undo(D.clone(ed.doc)), 'Undone');
const redo = () => restore(ed.history.redo(D.clone(ed.doc)), 'Redone');

function select(id) {
  ed.selected = id && D.find(ed.doc, id) ? id : null;
  ed.coalesce = null;
  ed.viewport?.select(ed.selected);
  drawTree();
  drawNodeForm();
}

// ---- preview ------------------------------------------------------------------------------

function schedulePreview() {
  clearTimeout(ed.timer);
  ed.timer = setTimeout(sendPreview, PREVIEW_DEBOUNCE_MS);
}

async function sendPreview() {
  const seq = ++ed.seq;
  hook.previews += 1;
  const result = await call(boot.preview, { method: 'POST', body: ed.doc });
  if (seq !== ed.seq) return; // a newer draft went out meanwhile
  if (result.ok) {
    hook.previewed += 1;
    hook.lastPreviewAt = performance.now();
    setProblems([]);
  } else setProblems(problemsOf(result));
}

function setProblems(problems) {
  ed.problems = problems;
  hook.problems = problems;
  drawTree();
  const left = showProblems($('ed-panel-forms'), problems);
  const box = $('ed-problems');
  box.replaceChildren();
  if (problems.length) {
    const h = document.createElement('p');
    h.textContent = `${problems.length === 1 ? 'One problem' : `${problems.length} problems`} to fix before publishing (phones keep showing the last good draft):`;
    const ul = document.createElement('ul');
    for (const p of problems) {
      const li = document.createElement('li');
      const owner = ownerOf(p.pointer);
      const text = `${owner ? `${owner}: ` : ''}${p.message}`;
      if (owner && owner !== ed.selected && left.includes(p)) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'linklike';
        b.textContent = text;
        b.addEventListener('click', () => select(owner));
        li.append(b);
      } else li.textContent = text;
      ul.append(li);
    }
    box.append(h, ul);
  }
  box.hidden = !problems.length;
  updatePublish();
}

// The node a JSON Pointer points into (its id), or null for the display itself.
function ownerOf(pointer) {
  let best = null;
  for (const e of D.walk(ed.doc)) {
    if ((pointer === e.pointer || pointer?.startsWith(`${e.pointer}/`))
      && (!best || e.pointer.length > best.pointer.length)) best = e;
  }
  return best ? best.node.id : null;
}

// ---- drawing --------------------------------------------------------------------------------

function drawTree() {
  renderTree($('ed-tree'), {
    doc: ed.doc, selected: ed.selected,
    troubled: new Set(ed.problems.map((p) => ownerOf(p.pointer)).filter(Boolean)),
    onSelect: select,
    onAction: (id, action) => {
      if (action === 'remove') {
        edit(`Remove ${id}`, (d) => D.remove(d, id));
        select(null);
        status(`Removed ${id} (Undo brings it back)`);
      } else if (action === 'up' || action === 'down') {
        edit(`Move ${id} ${action}`, (d) => D.move(d, id, action === 'up' ? -1 : 1));
      } else if (action === 'in' || action === 'out') {
        edit(`${action === 'in' ? 'Group' : 'Ungroup'} ${id}`, (d) => D.regroup(d, id, action === 'in' ? 1 : -1));
      }
      $('ed-tree').querySelector(`[data-node="${CSS.escape(id)}"] .tree-name`)?.focus();
    },
  });
}

function drawForms() {
  drawNodeForm();
  const box = $('ed-display-form');
  ed.form.render(box, ed.form.def('Display'), ed.doc.display, '/display', (key, value, opts) => {
    edit(`Change ${key}`, (d) => {
      if (value === undefined) delete d.display[key];
      else d.display[key] = value;
    }, { ...opts, redraw: false });
  }, { skip: ['nodes', 'id'] });
  showProblems($('ed-panel-forms'), ed.problems);
}

function drawNodeForm() {
  const box = $('ed-node-form');
  const found = ed.selected ? D.find(ed.doc, ed.selected) : null;
  if (!found) {
    $('ed-node-heading').textContent = 'Selected node';
    box.replaceChildren();
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'Choose a node in the list or in the 3D view.';
    box.append(p);
    return;
  }
  const { node } = found;
  $('ed-node-heading').textContent = `${node.id} (${node.kind})`;
  const variant = ed.form.variants(ed.nodeSchema).find((v) => v.kind === node.kind);
  if (!variant) return;
  ed.form.kindHint = node.kind;
  const shown = ed.viewport?.state?.nodes?.[node.id] || {};
  let id = node.id;
  ed.form.render(box, variant.schema, node, found.pointer, (key, value, opts) => {
    edit(`Change ${key} of ${id}`, (d) => {
      const at = D.find(d, id);
      if (!at) return;
      if (value === undefined) delete at.node[key];
      else at.node[key] = value;
    }, { ...opts, redraw: false });
    if (key === 'id' && typeof value === 'string') {
      id = value;
      ed.selected = value;
      ed.viewport?.select(value); // the arrows follow the node under its new id
    }
  }, { skip: ['children'], rendered: templatesShown(node, shown) });
  showProblems($('ed-panel-forms'), ed.problems);
}

// What each template field shows right now (the preview channel's composed node).
function templatesShown(node, shown) {
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (typeof v === 'string' && v.includes('{{') && typeof shown[k] === 'string') out[k] = shown[k];
  }
  return out;
}

function refreshShown(state) {
  // The heading: the title as visitors read it (the draft's, rendered by the server).
  const title = state?.display?.title;
  if (typeof title === 'string' && title) $('ed-title').textContent = title;
  const node = state?.nodes?.[ed.selected];
  if (!node) return;
  for (const slot of document.querySelectorAll('[data-rendered-for]')) {
    const key = slot.dataset.renderedFor.split('/').pop();
    const raw = D.find(ed.doc, ed.selected)?.node[key];
    slot.textContent = typeof raw === 'string' && raw.includes('{{') && typeof node[key] === 'string'
      ? `Shows: ${node[key]}` : '';
  }
}

// The gizmo moved a node: write its transform; the numeric fields follow.
function transformed(id, transform, final) {
  edit(`Move ${id}`, (d) => {
    const at = D.find(d, id);
    if (at) D.setTransform(at.node, transform);
  }, { coalesce: `gizmo:${id}:${ed.gizmoDrag}`, redraw: false });
  if (final) ed.gizmoDrag = (ed.gizmoDrag || 0) + 1; // the next drag is a new undo step
  const found = D.find(ed.doc, id);
  if (!found || id !== ed.selected) return;
  const t = D.transformOf(found.node);
  for (const key of ['position', 'rotation', 'scale']) {
    t[key].forEach((v, i) => {
      const input = document.querySelector(`[data-pointer="${found.pointer}/${key}/${i}"]`);
      if (input && document.activeElement !== input) input.value = Number(v.toFixed(3));
    });
  }
}

function updatePublish() {
  const b = $('ed-publish');
  b.disabled = !ed.doc || ed.problems.length > 0 || !dirty();
  b.title = ed.problems.length ? 'Fix the problems listed above first' : '';
}

// ---- adding nodes ---------------------------------------------------------------------------

const PRESETS = {
  'preset:price-board': {
    label: 'Price board (bound to an item)',
    make: (d) => {
      const sku = ed.items[0]?.sku;
      if (sku && !(d.display.items || []).includes(sku)) d.display.items = [...(d.display.items || []), sku];
      return { id: D.freshId(d, 'price-board'), kind: 'panel', item: sku,
        title: '{{ item.name }}', body: '{{ item.price }} / {{ item.unit }} · {{ item.status_label }}',
        position: [0.35, 0.3, 0] };
    },
  },
};

function skeleton(d, kind) {
  const variant = ed.form.variants(ed.nodeSchema).find((v) => v.kind === kind);
  const node = { id: D.freshId(d, kind), kind };
  for (const key of variant.schema.required || []) {
    if (key in node) continue;
    const s = resolve(ed.root, variant.schema.properties[key]);
    if (key === 'asset') node.asset = assetsFor(kind)[0]?.value ?? '';
    else if (s.default !== undefined) node[key] = s.default;
    else if (s.type === 'string') node[key] = `New ${kind}`;
    else if (s.type === 'number') node[key] = s.minimum ?? 1;
  }
  if (kind !== 'light' && kind !== 'group') node.position = [0, 0.25, 0];
  return node;
}

function addNode() {
  const choice = $('ed-add-kind').value;
  let made = null;
  edit(`Add ${choice.replace('preset:', '')}`, (d) => {
    made = PRESETS[choice] ? PRESETS[choice].make(d) : skeleton(d, choice);
    if (made.item === undefined) delete made.item;
    D.insert(d, made, ed.selected);
  });
  select(made.id);
  ed.viewport.frameSoon(); // the new node in view, once the preview has it
  status(`Added ${made.id}: set it up in "Selected node"`);
}

const MODEL = /gltf|glb|model/i;
function assetsFor(kind) {
  const wanted = kind === 'image' ? (a) => /^image\//.test(a.media_type) : (a) => MODEL.test(a.media_type) || /\.(glb|gltf)$/.test(a.url);
  return boot.assets.filter(wanted).map((a) => ({ value: a.name, label: `${a.name} (${Math.max(1, Math.round(a.size / 1024))} KB)` }));
}

// An upload the pipeline made ready: in the library, and in the selected model or image
// node (or a new one). Returns what was done, for the upload's report.
function useUpload(asset) {
  const entry = assetEntry(boot.market, asset);
  boot.assets = [...boot.assets.filter((a) => a.name !== entry.name), entry]
    .sort((a, b) => a.name.localeCompare(b.name));
  const kind = asset.kind === 'image' ? 'image' : 'model';
  const found = ed.selected ? D.find(ed.doc, ed.selected) : null;
  if (found && found.node.kind === kind) {
    const id = found.node.id;
    edit(`Use ${entry.name} in ${id}`, (d) => {
      D.find(d, id).node.asset = entry.name;
    });
    return `It now shows in ${id}.`;
  }
  let made = null;
  edit(`Add ${entry.name}`, (d) => {
    made = { ...skeleton(d, kind), id: D.freshId(d, entry.name), asset: entry.name };
    D.insert(d, made, ed.selected);
  });
  select(made.id);
  ed.viewport.frameSoon();
  return `Added as the new ${kind} node ${made.id}.`;
}

// ---- publish, conflicts and changes on disk --------------------------------------------------

async function publish() {
  const doc = D.clone(ed.doc);
  $('ed-publish').disabled = true;
  status('Publishing…');
  const result = await call(boot.source, { method: 'PUT', body: doc, headers: { 'If-Match': ed.etag } });
  if (result.ok) {
    ed.etag = result.etag || result.data?.etag;
    ed.saved = doc;
    hook.published += 1;
    $('ed-conflict').hidden = true;
    status(`Published at ${new Date().toLocaleTimeString()}: visitors see it now.`);
    drawHistory();
  } else if (result.status === 412) {
    conflict(result.data.detail);
  } else {
    setProblems(problemsOf(result));
    status('Not published: fix the problems listed.');
  }
  changed({ redraw: false });
}

function conflict(detail) {
  hook.conflicts = (hook.conflicts || 0) + 1;
  status('Not published: the display changed meanwhile.');
  showConflict($('ed-conflict'), {
    mine: ed.doc, theirs: detail.current,
    onTakeTheirs: () => {
      edit('Load the current version', (d) => {
        d.display = D.clone(detail.current.display);
        d.format = detail.current.format;
      });
      ed.etag = detail.etag;
      ed.saved = D.clone(detail.current);
      changed();
      status('Loaded the current version. Your edits are one Undo away.');
    },
    onOverwrite: async () => {
      ed.etag = detail.etag;
      await publish();
    },
  });
}

// ---- history: earlier versions -----------------------------------------------------------

function drawHistory() {
  if (!$('ed-history-card').open) return;
  renderHistory($('ed-history'), { url: boot.revisions, onRestore: restoreRevision });
}

async function restoreRevision(r) {
  if (dirty() && !window.confirm(`Restore version ${r.number}? Your changes that are not `
    + 'published yet are replaced (Undo brings them back).')) return;
  const result = await call(`${boot.revisions}/${r.number}/restore`, { method: 'POST', headers: { 'If-Match': ed.etag } });
  if (result.status === 412) {
    conflict(result.data.detail);
    return;
  }
  if (!result.ok) {
    status(`Version ${r.number} could not be restored: ${result.data?.detail?.message || result.status}`);
    return;
  }
  const source = await call(boot.source);
  edit(`Restore version ${r.number}`, (d) => {
    d.display = source.data.display;
    d.format = source.data.format;
  });
  ed.etag = source.etag;
  ed.saved = D.clone(source.data);
  hook.published += 1;
  changed();
  drawHistory();
  status(`Version ${r.number} restored and published: visitors see it now.`);
}

// The file on the server changed (someone published, or it was edited on disk).
async function watch() {
  const result = await call(boot.source);
  if (!result.ok || !result.etag || result.etag === ed.etag) return;
  if (!dirty()) {
    ed.doc = result.data;
    ed.saved = D.clone(result.data);
    ed.etag = result.etag;
    ed.history.push(D.clone(ed.doc), 'Changed elsewhere');
    changed();
    status('The display was changed elsewhere: this is the new version.');
  } else {
    status('The display was changed elsewhere. Publishing will show both versions first.');
  }
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  const [source, schema, items] = await Promise.all([
    call(boot.source), call(boot.schema), call(boot.items)]);
  if (!source.ok || !schema.ok) throw new Error(`could not load the display (${source.status})`);
  ed.doc = source.data;
  ed.saved = D.clone(source.data);
  ed.etag = source.etag;
  ed.root = schema.data;
  ed.items = items.ok ? items.data : [];
  ed.nodeSchema = ed.root.$defs.Display.properties.nodes.items;
  ed.form = new SchemaForm(ed.root, {
    item: ed.items.map((i) => ({ value: i.sku, label: `${i.name} (${i.sku})` })),
    farm: boot.farms.map((f) => ({ value: f.id, label: f.name })),
    zone: boot.zones.map((z) => ({ value: z.id, label: z.name })),
    asset: (kind) => assetsFor(kind),
    assetThumbnail: (name) => boot.assets.find((a) => a.name === name)?.thumbnail || null,
    assetNotes: (name) => boot.assets.find((a) => a.name === name)?.notes || [],
    bindings: boot.bindings,
  });
  const add = $('ed-add-kind');
  for (const v of ed.form.variants(ed.nodeSchema)) add.append(new Option(v.kind, v.kind));
  for (const [value, p] of Object.entries(PRESETS)) add.append(new Option(p.label, value));
  add.value = 'model';

  await sendPreview(); // the preview channel starts with this draft
  ed.viewport = new Viewport({
    container: $('ed-view'), boot,
    onSelect: select,
    onTransform: transformed,
    onState: refreshShown,
    onStream: (ev) => {
      if (ev.type === 'server-error') hook.errors.push(`${ev.code}: ${ev.message}`);
    },
    onWarning: (msg) => console.warn(`[editor] ${msg}`),
  });
  Object.defineProperty(hook, 'viewport', { value: ed.viewport, enumerable: false });
  hook.select = select;

  $('ed-undo').addEventListener('click', undo);
  $('ed-redo').addEventListener('click', redo);
  $('ed-add').addEventListener('click', addNode);
  $('ed-publish').addEventListener('click', publish);
  $('ed-fit').addEventListener('click', () => ed.viewport.frame());
  $('ed-history-card').addEventListener('toggle', drawHistory);
  const scheduling = setupSchedule({
    url: boot.schedule, timeZone: boot.timezone, input: $('ed-schedule-at'),
    button: $('ed-schedule-go'), message: $('ed-schedule-msg'), list: $('ed-schedule-list'),
    draft: () => D.clone(ed.doc), etag: () => ed.etag,
    onChange: (pending) => {
      hook.scheduled = pending;
    },
  });
  $('ed-schedule-card').addEventListener('toggle', () => {
    if ($('ed-schedule-card').open) scheduling.draw();
  });
  $('ed-snap').addEventListener('change', (e) => ed.viewport.setSnap(e.target.checked));
  setupUpload({
    url: boot.upload, market: boot.market, input: $('ed-upload-file'),
    progress: $('ed-upload-progress'), box: $('ed-upload-report'), onReady: useUpload,
    onState: (state) => {
      hook.upload = state;
    },
  });
  for (const b of document.querySelectorAll('[data-mode]')) {
    b.addEventListener('click', () => setMode(b.dataset.mode));
  }
  document.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', (e) => {
    if (dirty()) e.preventDefault();
  });
  setInterval(watch, WATCH_MS);
  changed();
  $('editor').dataset.state = 'ready';
  status('Ready. Changes show on the preview at once; Publish makes them live for visitors.');
  hook.ready = true;
}

function setMode(mode) {
  ed.viewport.setMode(mode);
  for (const b of document.querySelectorAll('[data-mode]')) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
}

function onKey(e) {
  const typing = e.target.closest?.('input[type=text], input[type=number], textarea, select');
  const mod = e.ctrlKey || e.metaKey;
  if (mod && !typing && e.key.toLowerCase() === 'z') {
    e.preventDefault();
    if (e.shiftKey) redo();
    else undo();
  } else if (mod && !typing && e.key.toLowerCase() === 'y') {
    e.preventDefault();
    redo();
  } else if (!mod && !typing && !e.altKey) {
    const mode = { w: 'translate', e: 'rotate', r: 'scale' }[e.key.toLowerCase()];
    if (mode && e.target.closest?.('#editor')) setMode(mode);
  }
}

start().catch((err) => {
  hook.errors.push(String(err?.stack || err));
  status(`The editor could not start: ${err.message}`);
  console.error(err);
});
