// The performer console (/perform/<market>/<show>): polls the show's state, fires GO /
// pause / resume / stop / panic / standby through the API with the session cookie and the
// CSRF header. A GO names the standing-by cue's id, so two consoles pressing GO at the same
// moment fire that cue once. Every text is set with textContent (show text is plain text).
import './perform.css';

const POLL_MS = 500;
const boot = JSON.parse(document.getElementById('perform-boot').textContent);
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';
const $ = (id) => document.getElementById(id);
const hook = { state: boot.state, posts: [], errors: [], fetchedAt: Date.now() };
window.__perform = hook;

function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.append(td);
}

function renderCues(state) {
  const body = $('cues');
  if (body.childElementCount === 0) {
    for (const cue of state.cue_list) {
      const tr = document.createElement('tr');
      tr.dataset.number = cue.number;
      cell(tr, cue.number);
      cell(tr, cue.name);
      cell(tr, `${cue.pre_wait}s`);
      cell(tr, `${cue.duration}s`);
      cell(tr, `${cue.post_wait}s`);
      cell(tr, cue.continue === 'none' ? 'GO' : cue.continue);
      tr.addEventListener('click', () => post('standby', { number: cue.number }));
      body.append(tr);
    }
  }
  const now = state.server_time + (Date.now() - hook.fetchedAt);
  const running = new Set(state.cues.filter((c) => c.start_time <= now
    && now < c.start_time + Math.max(c.duration, 500)).map((c) => c.group || c.number));
  for (const tr of body.children) {
    tr.classList.toggle('standing-by', state.standby?.number === tr.dataset.number);
    tr.classList.toggle('running', running.has(tr.dataset.number));
  }
}

function render() {
  const state = hook.state;
  $('status').textContent = state.status;
  const { standby } = state;
  $('standby').textContent = standby
    ? `${standby.number}${standby.name ? ` · ${standby.name}` : ''}`
    : '— (nothing: stand a cue by)';
  const canGo = !!state.standby && state.status !== 'paused' && state.status !== 'stopped';
  $('go').disabled = !canGo;
  $('pause').textContent = state.status === 'paused' ? 'Resume' : 'Pause';
  $('pause').disabled = !['running', 'paused', 'ready'].includes(state.status);
  const since = state.status === 'running' ? Date.now() - hook.fetchedAt : 0;
  $('elapsed').textContent = clock(state.elapsed_ms + since);
  $('remaining').textContent = clock(state.remaining_ms - since);
  $('devices').textContent = String(state.devices);
  const sync = state.sync;
  $('spread').textContent = sync && sync.devices
    ? `${sync.p99_spread_ms} ms (${sync.devices} devices)` : '–';
  $('spread').title = sync && sync.devices
    ? `cue ${sync.number}: max-min ${sync.spread_ms} ms, mean lateness ${sync.mean_late_ms} ms`
    : '';
  renderCues(state);
}

function adopt(state) {
  hook.state = state;
  hook.fetchedAt = Date.now();
  render();
}

async function refresh() {
  try {
    const response = await fetch(boot.api, { credentials: 'same-origin',
      headers: { Accept: 'application/json' } });
    if (response.status === 401) {
      location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    if (response.ok) adopt(await response.json());
  } catch (err) {
    $('message').textContent = `offline? ${err.message}`;
  }
}

async function post(action, body = undefined) {
  $('message').textContent = '';
  hook.posts.push(action);
  const response = await fetch(`${boot.api}/${action}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (response.ok) adopt(payload);
  else {
    const detail = typeof payload?.detail === 'string' ? payload.detail
      : `${action} refused (${response.status})`;
    hook.errors.push(detail);
    $('message').textContent = detail;
    refresh();
  }
}

function go() {
  const standby = hook.state.standby;
  if (standby) post('go', { cue: standby.id });
}

$('go').addEventListener('click', go);
$('pause').addEventListener('click', () => post(hook.state.status === 'paused' ? 'resume' : 'pause'));
$('stop').addEventListener('click', () => post('stop'));
$('panic').addEventListener('click', () => post('panic'));
document.addEventListener('keydown', (ev) => {
  if (ev.repeat || ev.target instanceof HTMLInputElement) return;
  if (ev.code === 'Space') {
    ev.preventDefault(); // a focused button would also "click" on space: GO once
    go();
  } else if (ev.key === 'Escape') {
    ev.preventDefault();
    post('panic');
  }
});
// Space on a focused button fires click on keyup: swallow it, keydown already did GO.
document.addEventListener('keyup', (ev) => {
  if (ev.code === 'Space') ev.preventDefault();
});

render();
setInterval(refresh, POLL_MS);
setInterval(render, 250);
hook.ready = true;
