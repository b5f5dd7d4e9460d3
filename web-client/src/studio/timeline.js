// The show timeline /studio/<m>/shows/<show> (web/studio/shows.py): a show's cues on a
// timeline (drag or arrow keys change a cue's pre-wait), the cue list, the selected cue's
// fields from the show file's JSON Schema (schemaform.js, the display editor's form), save
// with optimistic concurrency (If-Match; a conflict shows theirs), and rehearse a cue on the
// performer's own device. Its configuration is the page's #show-boot JSON.

import { call } from './api.js';
import { SchemaForm, showProblems } from './schemaform.js';

const boot = JSON.parse(document.getElementById("show-boot").textContent);
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; };
let doc = boot.document, etag = boot.etag, timeline = boot.timeline;
let selected = 0, dirty = false, errors = [], checkTimer = null, conflictDoc = null;
const cues = () => doc.show.cues;
const schema = boot.schema;

// The show's authoring API (api.js: the session cookie, the page's CSRF token on writes).
async function api(method, path, body, headers = {}) {
  const result = await call(boot.api + path, {method, body, headers});
  return {res: result, data: result.data};
}
function status(text, unsaved = false) {
  $("status").textContent = text;
  $("status").classList.toggle("unsaved", unsaved);
}
function changed() {
  dirty = true;
  status("Unsaved changes", true);
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 200);
}
window.addEventListener("beforeunload", (ev) => { if (dirty) { ev.preventDefault(); ev.returnValue = ""; } });

// ---- checking (the server's models) and the timeline ---------------------------
async function check(whole = false) {
  const {res, data} = await api("POST", "/check", doc);
  if (!res.ok || !data) return;
  errors = data.errors;
  if (!errors.length) timeline = data.timeline;
  if (whole) render(); else refresh();
}
function cueOf(pointer) {
  const m = /^\/show\/cues\/(\d+)(?:\/(.*))?$/.exec(pointer || "");
  return m ? {index: Number(m[1]), rest: m[2] || ""} : null;
}
function renderProblems() {
  const box = $("problems");
  box.replaceChildren();
  box.hidden = !errors.length;
  if (!errors.length) return;
  box.append(el("p", "Not saved yet: fix these first (the same checks as holobazaar validate)."));
  const list = el("ul");
  for (const e of errors) {
    const at = cueOf(e.pointer);
    const li = el("li");
    if (at && cues()[at.index]) {
      const b = el("button", `Cue ${cues()[at.index].number}`, "secondary");
      b.type = "button";
      b.addEventListener("click", () => { selected = at.index; render(); focusField(e.pointer); });
      li.append(b, " ");
    }
    li.append(`${at && at.rest ? at.rest.replaceAll("/", " › ") + ": " : (e.pointer ? e.pointer + ": " : "")}${e.message}`);
    list.append(li);
  }
  box.append(list);
}
function tickStep(total) {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300]) if (total / s <= 8) return s;
  return 600;
}
function renderTimeline() {
  const box = $("timeline");
  box.replaceChildren();
  const total = Math.max(10, ...timeline.map((t) => t.end));
  const pct = (s) => `${(s / total) * 100}%`;
  const ruler = el("div", null, "tl-ruler");
  ruler.append(el("div", "seconds", "tl-label"));
  const rt = el("div", null, "tl-track");
  rt.setAttribute("aria-hidden", "true");
  const step = tickStep(total);
  for (let s = 0; s <= total; s += step) {
    const t = el("span", s / total < 0.94 ? `${s}` : "", "tl-tick");
    t.style.left = pct(s);
    rt.append(t);
  }
  ruler.append(rt);
  box.append(ruler);
  cues().forEach((cue, index) => {
    const row = el("div", null, "tl-row");
    row.append(el("div", `${cue.number} ${cue.name || ""}`, "tl-label"));
    const track = el("div", null, "tl-track");
    const mine = timeline.filter((t) => t.index === index);
    const top = mine.find((t) => !t.child);
    if (!top) row.classList.add("unreached");
    for (const t of mine) {
      const bar = el(t.child ? "span" : "button", t.child ? null : `${cue.number}`, "tl-bar" + (t.child ? " child" : ""));
      bar.style.left = pct(t.start);
      bar.style.width = pct(Math.max(t.end - t.start, total / 200));
      if (t.child) { bar.title = `${t.number} ${t.name}`; track.append(bar); continue; }
      bar.type = "button";
      bar.dataset.cue = cue.number;
      bar.setAttribute("aria-pressed", String(index === selected));
      bar.setAttribute("aria-label", `Cue ${cue.number} ${cue.name || ""}: starts at ${t.start} s, runs ${(t.end - t.start).toFixed(1)} s, pre-wait ${cue.pre_wait || 0} s`);
      bar.addEventListener("click", () => { if (!bar.dataset.dragged) { selected = index; render(); } });
      bar.addEventListener("keydown", (ev) => {
        if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
        ev.preventDefault();
        const by = (ev.shiftKey ? 0.1 : 0.5) * (ev.key === "ArrowRight" ? 1 : -1);
        selected = index;
        setPreWait(cue, (cue.pre_wait || 0) + by);
      });
      drag(bar, cue, index, box, total);
      track.append(bar);
    }
    row.append(track);
    box.append(row);
  });
}
function setPreWait(cue, seconds) {
  const value = Math.max(0, Math.round(seconds * 10) / 10);
  if (value === 0) delete cue.pre_wait; else cue.pre_wait = value;
  changed();
}
function drag(bar, cue, index, box, total) {
  bar.addEventListener("pointerdown", (ev) => {
    const track = bar.parentElement;
    const perSecond = track.clientWidth / total;
    const x0 = ev.clientX, pre0 = cue.pre_wait || 0, left0 = bar.offsetLeft;
    let moved = false;
    bar.setPointerCapture(ev.pointerId);
    const move = (e) => {
      const dx = e.clientX - x0;
      if (Math.abs(dx) > 3) moved = true;
      const pre = Math.max(0, Math.round((pre0 + dx / perSecond) * 10) / 10);
      bar.style.left = `${left0 + (pre - pre0) * perSecond}px`;
      bar.dataset.pre = String(pre);
    };
    const up = () => {
      bar.removeEventListener("pointermove", move);
      bar.removeEventListener("pointerup", up);
      if (moved) {
        bar.dataset.dragged = "1";
        setTimeout(() => delete bar.dataset.dragged, 0);
        selected = index;
        setPreWait(cue, Number(bar.dataset.pre));
      }
    };
    bar.addEventListener("pointermove", move);
    bar.addEventListener("pointerup", up);
  });
}

// ---- the cue list ----------------------------------------------------------------
function renderList() {
  const list = $("cue-list");
  list.replaceChildren();
  const bad = new Set(errors.map((e) => cueOf(e.pointer)?.index));
  cues().forEach((cue, index) => {
    const li = el("li", null, (index === selected ? "selected" : "") + (bad.has(index) ? " bad" : ""));
    const head = el("div", null, "head");
    const t = timeline.find((x) => x.index === index && !x.child);
    const pick = el("button", `${cue.number} · ${cue.name || "(no name)"}${t ? ` · ${t.start} s` : ""}`, "pick");
    pick.type = "button";
    pick.setAttribute("aria-current", index === selected ? "true" : "false");
    pick.addEventListener("click", () => { selected = index; render(); });
    head.append(pick);
    const acts = el("div", null, "acts");
    const button = (text, label, fn, cls = "secondary") => {
      const b = el("button", text, cls);
      b.type = "button";
      b.setAttribute("aria-label", `${label} cue ${cue.number}`);
      b.addEventListener("click", fn);
      acts.append(b);
      return b;
    };
    button("Rehearse", "Rehearse", () => rehearse(cue.number), "rehearse").dataset.cue = cue.number;
    if (index > 0) button("↑", "Move up", () => move(index, -1));
    if (index < cues().length - 1) button("↓", "Move down", () => move(index, 1));
    if (cues().length > 1) button("Remove", "Remove", () => {
      if (!confirm(`Remove cue ${cue.number} (${cue.name || "no name"})?`)) return;
      cues().splice(index, 1);
      selected = Math.min(selected, cues().length - 1);
      changed();
      render();
    });
    head.append(acts);
    li.append(head);
    list.append(li);
  });
}
function move(index, by) {
  const list = cues();
  const [cue] = list.splice(index, 1);
  list.splice(index + by, 0, cue);
  selected = index + by;
  changed();
  render();
}
$("add-cue").addEventListener("click", () => {
  const numbers = new Set(cues().map((c) => c.number));
  let n = Math.floor(Math.max(0, ...cues().map((c) => parseFloat(c.number) || 0))) + 1;
  while (numbers.has(String(n))) n += 1;
  cues().push({number: String(n), name: "New cue", duration: 5, actions: []});
  selected = cues().length - 1;
  changed();
  render();
});

// ---- the selected cue's fields: the show file's schema through schemaform.js -------
// The same form as the display editor's: a field added to the show format gets a field
// here without new page code. Pickers offer what exists (cues, displays, their nodes).
const choices = (values) => values.map((v) => ({value: v, label: v}));
function setKey(obj, key, value) {
  if (value === undefined) delete obj[key]; else obj[key] = value;
  changed();
}
function cueTitle() {
  const cue = cues()[selected];
  $("cue-h").textContent = cue ? `Cue ${cue.number}${cue.name ? " · " + cue.name : ""}` : "Cue";
}
function renderCue() {
  const box = $("cue-fields");
  box.replaceChildren();
  cueTitle();
  const cue = cues()[selected];
  if (!cue) return;
  const grid = el("div", null, "grid2");
  const others = cues().map((c) => c.number).filter((n) => n !== cue.number);
  new SchemaForm(schema, {next: choices(others)}).render(grid,
    {properties: schema.cue, required: schema.cue_required}, cue, `/show/cues/${selected}`,
    (key, v) => { setKey(cue, key, v); if (key === "number" || key === "name") { renderList(); cueTitle(); } });
  box.append(grid);
  (cue.actions || []).forEach((action, j) => box.append(actionFields(cue, action, j)));
  if ((cue.group || []).length) box.append(el("p", `Fired with it: ${cue.group.map((g) => g.number + " " + (g.name || "")).join(", ")} (edit those in the file).`, "muted"));
  const add = el("div", null, "field");
  const kindLabel = el("label", "Add an action");
  kindLabel.htmlFor = "new-action";
  const kind = el("select");
  kind.id = "new-action";
  for (const k of Object.keys(schema.actions)) kind.append(new Option(k, k));
  const addButton = el("button", "Add action", "secondary");
  addButton.type = "button";
  addButton.addEventListener("click", () => {
    cue.actions = cue.actions || [];
    cue.actions.push(newAction(kind.value));
    changed();
    renderCue();
  });
  add.append(kindLabel, kind, " ", addButton);
  box.append(add);
  showProblems(box, errors);
}
function newAction(kind) {
  const s = schema.actions[kind];
  const out = {kind};
  const displays = Object.keys(boot.displays);
  for (const key of s.required || []) {
    if (key === "kind") continue;
    if (key === "display") out.display = displays[0] || "";
    else if (key === "node") out.node = (boot.displays[out.display] || [""])[0];
    else if (s.properties[key].enum) out[key] = s.properties[key].enum[0];
    else out[key] = "";
  }
  return out;
}
function actionFields(cue, action, j) {
  const set = el("fieldset", null, "action");
  set.append(el("legend", `Action ${j + 1}: ${action.kind}`));
  const s = schema.actions[action.kind];
  const grid = el("div", null, "grid2");
  if (s) {
    const pickers = {display: choices(Object.keys(boot.displays))};
    if (boot.displays[action.display]) pickers.node = choices(boot.displays[action.display]);
    new SchemaForm(schema, pickers).render(grid, s, action, `/show/cues/${selected}/actions/${j}`,
      (key, v) => { setKey(action, key, v); if (key === "display") renderCue(); }, {skip: ["kind"]});
  }
  set.append(grid);
  const remove = el("button", "Remove action", "secondary");
  remove.type = "button";
  remove.addEventListener("click", () => { cue.actions.splice(j, 1); changed(); renderCue(); });
  set.append(remove);
  return set;
}
function focusField(pointer) {
  // The deepest control whose pointer starts the problem's.
  const controls = [...$("cue-fields").querySelectorAll("[data-pointer]")]
    .filter((c) => pointer === c.dataset.pointer || pointer.startsWith(`${c.dataset.pointer}/`))
    .sort((a, b) => b.dataset.pointer.length - a.dataset.pointer.length);
  controls[0]?.focus();
}
function keepFocus(draw) {
  // Rebuilt from the document: keep the focus where it was (same field or bar).
  const active = document.activeElement;
  const key = active?.dataset?.pointer ? `[data-pointer="${CSS.escape(active.dataset.pointer)}"]`
    : active?.classList?.contains("tl-bar") && active.dataset.cue ? `.tl-bar[data-cue="${CSS.escape(active.dataset.cue)}"]`
      : active?.id ? `#${CSS.escape(active.id)}` : null;
  draw();
  if (key && document.activeElement !== active) document.querySelector(key)?.focus();
}
// After a check: everything but the cue's fields (the performer may be typing in one).
function refresh() {
  keepFocus(() => {
    renderProblems();
    renderTimeline();
    renderList();
    cueTitle();
    showProblems($("cue-fields"), errors);
  });
}
function render() {
  keepFocus(() => {
    renderProblems();
    renderTimeline();
    renderList();
    renderCue();
  });
}

// ---- save, conflict, rehearse --------------------------------------------------
async function save() {
  status("Saving…", true);
  const {res, data} = await api("PUT", "/source", doc, {"If-Match": etag});
  if (res.ok) {
    etag = data.etag;
    timeline = data.timeline;
    errors = [];
    dirty = false;
    $("conflict").hidden = true;
    status(`Saved ${new Date().toLocaleTimeString()}`);
    render();
  } else if (res.status === 412) {
    conflictDoc = data.detail;
    const list = $("theirs");
    list.replaceChildren(...conflictDoc.current.show.cues.map((c) => el("li", `${c.number} · ${c.name || ""} (pre-wait ${c.pre_wait || 0} s, ${c.duration || 0} s)`)));
    $("conflict").hidden = false;
    status("Not saved: someone else saved first", true);
  } else if (res.status === 422) {
    errors = data.detail.errors || [];
    status("Not saved: see the problems", true);
    render();
  } else {
    status(`Not saved (${res.status}): ${data?.detail?.message || data?.detail || "try again"}`, true);
  }
}
$("save").addEventListener("click", save);
$("take-theirs").addEventListener("click", () => {
  doc = conflictDoc.current; etag = conflictDoc.etag; dirty = false;
  $("conflict").hidden = true;
  selected = 0;
  status("Showing their version");
  check(true);
});
$("keep-mine").addEventListener("click", () => { etag = conflictDoc.etag; $("conflict").hidden = true; save(); });
async function rehearse(number) {
  status(`Rehearsing cue ${number}…`, dirty);
  // The cue as it stands in the editor, saved or not.
  const {res, data} = await api("POST", "/rehearse", {number, document: doc});
  if (res.ok) status(`Cue ${number} sent to ${data.channels.length} preview${data.channels.length === 1 ? "" : "s"}${dirty ? " (your unsaved version)" : ""}`, dirty);
  else if (res.status === 422) { errors = data.detail.errors || []; render(); status("Not rehearsed: see the problems", true); }
  else status(`Rehearsal refused: ${data?.detail?.message || data?.detail || res.status}`, true);
}

render();
