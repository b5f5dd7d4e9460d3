// The layout engine for display content (docs/scene-format.md, "Layout"). Curators place
// nodes in metres; the engine then makes the result readable on the device at hand:
// panels size themselves from measured text (troika's textRenderInfo), titles and bodies
// stack by measured height, long bodies are clipped with a "more" link, labels of a model
// sit above its bounds, no two text blocks overlap, portrait screens get a column
// arrangement, text reaches a minimum on-screen size, and the camera frames everything drawn.
import * as THREE from 'three';
import { Text } from 'troika-three-text';

export const MIN_TEXT_PX = 12.5; // the check asks for 12 CSS px: keep a little headroom
const PORTRAIT_ASPECT = 1.2; // views narrower than this (phones) get the column arrangement
const COLUMN_WIDTH = 0.62; // metres: the portrait column the goods and panels share
// A wide view whose authored arrangement leaves text under this many CSS px (or text blocks
// that cannot be moved apart) gets the rows too, in a wider column: readable beats as-placed.
const WIDE_MIN_PX = 9;
const WIDE_COLUMN = 1.2; // metres
const WIDE_ROWS_PX = 12; // a wide view's rows stop growing text here (fewer rounds)
const CELL = 0.2; // metres: the narrowest cell of a wide column's rows
const PASSES = 240; // moves separate() may make before it gives up
const ROW_HEIGHT = 0.12; // metres: the tallest goods may stand in a portrait row
const GAP = 0.012; // metres between stacked blocks
const LABEL_GAP = 0.01; // metres between a model's top and its lowest label
const MARGIN = 0.06; // of the view, kept free on every side when framing
export const BODY_LINE_HEIGHT = 1.3; // panel bodies: known, so clipping falls between lines
const MAX_ROUNDS = 4;
const PAGER_ROOM = 0.07; // metres above a paged column kept free for the pager's buttons

// Resolves when troika has laid the text out (sync's callback never fires for a text that
// needs no sync, and a second sync during one in flight is dropped: cover both).
export function synced(text) {
  if (text._needsSync) return new Promise((resolve) => text.sync(resolve));
  if (text._isSyncing) {
    return new Promise((resolve) => {
      const done = () => {
        text.removeEventListener('synccomplete', done);
        resolve();
      };
      text.addEventListener('synccomplete', done);
    });
  }
  return Promise.resolve();
}

// The text's drawn rectangle in its own plane (blockBounds, cut by its clipRect).
export function textRect(text) {
  const info = text.textRenderInfo;
  if (!info || !text.text) return null;
  const [x0, y0, x1, y1] = info.blockBounds;
  const clip = text.clipRect;
  if (!clip) return [x0, y0, x1, y1];
  return [Math.max(x0, clip[0]), Math.max(y0, clip[1]), Math.min(x1, clip[2]), Math.min(y1, clip[3])];
}

// World-space box of one text block.
export function textBox(text) {
  const r = textRect(text);
  const box = new THREE.Box3();
  if (!r || r[2] <= r[0] || r[3] <= r[1]) return box;
  text.updateWorldMatrix(true, false);
  for (const x of [r[0], r[2]]) {
    for (const y of [r[1], r[3]]) {
      box.expandByPoint(new THREE.Vector3(x, y, 0).applyMatrix4(text.matrixWorld));
    }
  }
  return box;
}

// World box of the meshes under an object, texts excluded (they are blocks of their own),
// except a failed model's placeholder label: that is part of the model.
export function meshBox(object) {
  const box = new THREE.Box3();
  object.updateWorldMatrix(true, true);
  object.traverseVisible((o) => {
    if (o instanceof Text && o.parent?.userData.placeholder) {
      box.union(textBox(o));
      return;
    }
    if (o instanceof Text || !o.isMesh || !o.geometry) return;
    if (!o.geometry.boundingBox) o.geometry.computeBoundingBox();
    box.union(o.geometry.boundingBox.clone().applyMatrix4(o.matrixWorld));
  });
  return box;
}

function visibleInTree(object) {
  for (let o = object; o; o = o.parent) if (!o.visible) return false;
  return true;
}

// Move an object so that its world position shifts by `delta` (a world vector).
function shiftWorld(object, delta) {
  const parent = object.parent;
  const world = object.getWorldPosition(new THREE.Vector3()).add(delta);
  if (parent) parent.worldToLocal(world);
  object.position.copy(world);
  object.updateWorldMatrix(false, true);
}

function overlap2(a, b, pad) {
  return a.min.x < b.max.x + pad && b.min.x < a.max.x + pad
    && a.min.y < b.max.y + pad && b.min.y < a.max.y + pad;
}

export class LayoutEngine {
  /**
   * @param {object} o
   * @param {import('./scene.js').DisplayRenderer} o.display
   * @param {THREE.PerspectiveCamera} o.camera
   * @param {() => boolean} o.portrait whether the view wants the column arrangement
   * @param {(report) => void} o.onLayout after each layout (the caller frames the camera)
   */
  constructor({ display, camera, onLayout = () => {}, onError = () => {}, onPages = () => {} }) {
    this.onError = onError;
    this.onPages = onPages; // after each layout: {page, pages} (the app's pager)
    this.page = 0; // the portrait page shown (pagination: one column page at a time)
    this.pages = 1;
    this.pageBox = null; // the box the camera frames for a page (constant scale across pages)
    this.display = display;
    this.camera = camera;
    this.onLayout = onLayout;
    this.generation = 0;
    this.running = null;
    this.again = false;
    this.report = { generation: 0, rounds: 0, minPx: null, moved: 0, clipped: 0, portrait: false };
    this.rows = false; // the goods in rows, headlines above, panels below (paged)
    this.columnWidth = COLUMN_WIDTH;
    // The page's "Larger text" setting (access.js): 1, or more to grow every text and the
    // minimum on-screen size with it.
    this.textScale = 1;
    this.unresolved = false; // separate() ran out of moves with blocks still overlapping
  }

  get portrait() {
    return this.camera.aspect < PORTRAIT_ASPECT;
  }

  // Re-run soon (after a state change, a model load, a resize); runs never overlap.
  schedule() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      await new Promise((r) => setTimeout(r, 0));
      // Models still loading: each one that lands schedules again, so lay out once, after
      // the last (a failed model counts as landed).
      if ([...this.display.progress.values()].some((p) => !p.done)) {
        await Promise.race([Promise.allSettled([...this.display.models.values()]),
          new Promise((r) => setTimeout(r, 3000))]);
      }
      try {
        do {
          this.again = false;
          await this.run();
        } while (this.again);
      } catch (err) {
        this.onError(err); // a layout bug must not take the display down: it stays as authored
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  get minTextTarget() {
    return MIN_TEXT_PX * this.textScale;
  }

  setTextScale(scale) {
    const next = Number.isFinite(scale) && scale >= 1 && scale <= 3 ? scale : 1;
    if (next === this.textScale) return null;
    this.textScale = next;
    return this.schedule();
  }

  entriesOf(kind) {
    return [...this.display.entries.values()].filter((e) => e.data.kind === kind);
  }

  async run() {
    this.labelCache = new Map(); // node data -> is a label (the tree is fixed during a run)
    const portrait = this.portrait;
    const view = this.viewSize();
    let { rounds, fontMin, lineBudget, result } = await this.arrange(portrait, COLUMN_WIDTH, view);
    if (!portrait && result.minPx !== null && (result.minPx < (WIDE_MIN_PX * this.textScale) || this.unresolved)) {
      // The curator's arrangement cannot be read on this wide view: the rows, wider.
      ({ rounds, fontMin, lineBudget, result } = await this.arrange(true, WIDE_COLUMN, view));
    }
    this.generation += 1;
    this.report = { generation: this.generation, rounds: rounds + 1, portrait, rows: this.rows,
      fontMin: Math.round(fontMin * 1e4) / 1e4, lineBudget, page: this.page, pages: this.pages,
      ...result };
    this.onPages({ page: this.page, pages: this.pages });
  }

  // One arrangement: as authored (rows false) or the rows of a column `width` metres wide.
  async arrange(rows, width, view) {
    this.rows = rows;
    this.columnWidth = width;
    // Rows: the column's width sets the scale, so the smallest readable font is known up
    // front. What does not fit the view's height at that scale goes on further pages (the
    // pager over the view): text never shrinks below the minimum to fit.
    let fontMin = rows ? (this.minTextTarget * 1.03 * width) / (view.w * (1 - 2 * MARGIN)) : 0;
    let lineBudget = rows ? (this.portrait ? 4 : 8) : 12;
    let pageH = rows ? width * (view.h / view.w) * 0.98 - PAGER_ROOM : Infinity;
    let rounds = 0;
    let result = null;
    for (; rounds < MAX_ROUNDS + 3; rounds += 1) {
      this.restore(rows, fontMin);
      await Promise.all(this.allTexts().map(synced));
      const clipped = this.layoutPanels(lineBudget);
      this.fitLabelWidths(rows);
      await Promise.all(this.allTexts().map(synced));
      if (rows) this.arrangeGoods(); // after the labels wrapped: rows leave them room
      this.placeLabels();
      let tallest = 0;
      if (rows) {
        this.arrangeAround();
        tallest = this.paginate(pageH);
      } else {
        this.pageBox = null;
        this.pages = 1;
        this.page = 0;
      }
      this.onLayout(); // the app frames the camera on everything drawn
      let moved = this.separate();
      if (moved) {
        this.onLayout(); // moving blocks changed what there is to frame: again, then check
        moved += this.separate();
        this.onLayout();
      }
      const minPx = this.minTextPx();
      result = { minPx, moved, clipped };
      if (minPx === null || minPx >= this.minTextTarget) break;
      if (rows && !this.portrait && minPx >= (WIDE_ROWS_PX * this.textScale)) break; // no phone: close enough
      // As authored, text may grow to twice its size: if even that stays under the wide
      // view's floor, the rows will be used (run()), so do not grow it first.
      if (!rows && !this.portrait && minPx * 2 < (WIDE_MIN_PX * this.textScale)) break;
      const size = this.framingBox().getSize(new THREE.Vector3());
      const tall = size.y * (view.w / view.h) > size.x * 1.02;
      if (rows && tall && tallest < pageH * 0.98) {
        // The page ended up taller than planned (blocks moved apart): smaller pages.
        pageH *= Math.max(0.5, Math.min(0.97, minPx / (this.minTextTarget * 1.02)));
        continue;
      }
      if (rows && tall && lineBudget > 0) {
        lineBudget -= 1; // one block taller than a page: fewer panel lines ("more")
        continue;
      }
      if (rounds >= (rows ? MAX_ROUNDS : 1)) break; // as authored: two passes
      if (rows) {
        // The column's width sets the scale (perspective takes a little): larger text.
        fontMin *= (this.minTextTarget * 1.02) / minPx;
        continue;
      }
      // Never more than twice the curator's smallest size: past that, text is what makes
      // the display big, and growing it further only zooms the camera out.
      const smallest = this.smallestFont() * this.textScale;
      fontMin = Math.min(smallest * 2,
        Math.max(fontMin, smallest) * ((this.minTextTarget * 1.03) / minPx));
    }
    return { rounds, fontMin, lineBudget, result };
  }

  // Portrait pages: the column (headlines, rows of goods, panels) cut into pages no taller
  // than `pageH` metres, between bands (blocks side by side stay together). Only the
  // current page is drawn; the camera frames a page-sized box, so every page has the same
  // scale. Returns the tallest band (one taller than a page cannot be split).
  paginate(pageH) {
    const items = [];
    for (const e of this.display.entries.values()) {
      if (e.data.parent || e.data.kind === 'light' || !visibleInTree(e.object)) continue;
      const box = meshBox(e.object);
      e.object.traverse((o) => {
        if (o instanceof Text && visibleInTree(o)) box.union(textBox(o));
      });
      if (!box.isEmpty()) items.push({ e, box });
    }
    items.sort((a, b) => b.box.max.y - a.box.max.y);
    const bands = [];
    for (const item of items) {
      const last = bands[bands.length - 1];
      if (last && item.box.max.y > last.box.min.y + 1e-4) {
        last.items.push(item);
        last.box.union(item.box);
      } else bands.push({ items: [item], box: item.box.clone() });
    }
    const pages = [];
    let tallest = 0;
    for (const band of bands) {
      tallest = Math.max(tallest, band.box.max.y - band.box.min.y);
      const cur = pages[pages.length - 1];
      if (cur && cur.top - band.box.min.y <= pageH) {
        cur.bands.push(band);
        cur.box.union(band.box);
      } else pages.push({ top: band.box.max.y, bands: [band], box: band.box.clone() });
    }
    this.pages = Math.max(1, pages.length);
    this.page = Math.min(Math.max(0, this.page), this.pages - 1);
    pages.forEach((page, i) => {
      if (i === this.page) return;
      for (const band of page.bands) {
        for (const { e } of band.items) {
          e.object.visible = false;
          e.object.userData.offPage = true;
        }
      }
    });
    const shown = pages[this.page];
    if (shown && pages.length > 1) {
      // The column's width and a page's height, from the page's top: the pager sits over
      // the view's top edge, so a strip above is kept free too.
      const cx = (shown.box.min.x + shown.box.max.x) / 2;
      const z = (shown.box.min.z + shown.box.max.z) / 2;
      const half = this.columnWidth / 2;
      this.pageBox = new THREE.Box3(new THREE.Vector3(cx - half, shown.top - pageH, z),
        new THREE.Vector3(cx + half, shown.top + PAGER_ROOM, z));
    } else this.pageBox = null;
    return tallest;
  }

  // How far above the display the camera looks from: less on a portrait column (a steep
  // view makes its lower half read smaller).
  get elevation() {
    return this.rows ? 0.08 : 0.18;
  }

  // What the camera frames: everything drawn, and on a paged column the page's box.
  framingBox() {
    const box = this.drawnBox();
    if (this.pageBox) box.union(this.pageBox);
    return box;
  }

  // Show another portrait page (the pager's buttons): lays out again.
  showPage(page) {
    this.page = Math.min(Math.max(0, page), this.pages - 1);
    return this.schedule();
  }

  viewSize() {
    return { w: this.display.viewWidth?.() ?? 800, h: this.viewHeight() };
  }

  allTexts() {
    const out = [];
    this.display.root.traverse((o) => {
      if (o instanceof Text) out.push(o);
    });
    return out;
  }

  // Back to what the curator wrote: the engine always starts from the authored scene.
  restore(rows, fontMin) {
    for (const { object, data } of this.display.entries.values()) {
      this.display.applyTransform(object, data);
      object.userData.offPage = false;
      const panel = object.userData.panel;
      if (panel) {
        if (rows && !data.parent) {
          object.rotation.set(0, 0, 0);
          // The column's width (no wider than a phone's column: lines stay readable).
          panel.width = Math.min(this.columnWidth, COLUMN_WIDTH);
        } else panel.width = panel.authoredWidth;
      }
      // A headline wraps to the column in portrait (it would widen the view otherwise).
      if (data.kind === 'text' && !data.parent && object instanceof Text) {
        const own = object.userData.maxWidth;
        const width = rows ? Math.min(own ?? Infinity, this.columnWidth) : (own ?? Infinity);
        object.userData.columnWidth = rows ? width : null;
        if (object.maxWidth !== width) object.maxWidth = width;
      }
    }
    for (const text of this.allTexts()) {
      const base = text.userData.baseSize ?? text.fontSize;
      text.userData.baseSize = base;
      const role = text.userData.role;
      // Titles stay larger than bodies, prices larger than the rest: scale by role.
      const factor = role === 'title' ? 1.35 : role === 'price' ? 1.25 : role === 'more' ? 1 : 1;
      // Larger text (the page's setting): every text grows, and so does the minimum.
      const size = Math.max(base * this.textScale, fontMin * factor);
      if (text.fontSize !== size) text.fontSize = size;
      const panel = text.parent?.userData.panel;
      if (panel && role !== 'more') {
        const width = panel.width - 2 * panel.pad;
        if (text.maxWidth !== width) text.maxWidth = width;
      }
      if (text.userData.maxWidth) {
        const grow = size / base; // a label keeps its number of words per line as it grows
        let width = text.userData.maxWidth * grow;
        if (text.userData.columnWidth) width = Math.min(width, this.columnWidth);
        if (text.maxWidth !== width) text.maxWidth = width;
      }
      if (text.clipRect) text.clipRect = null;
      if (text.userData.role === 'more') text.visible = false;
    }
  }

  // Panels: title at the top, body below it by the title's measured height; the plane
  // grows to fit (up to the line budget), a longer body is clipped with "more".
  layoutPanels(lineBudget) {
    let clipped = 0;
    for (const { object } of this.entriesOf('panel')) {
      const panel = object.userData.panel;
      if (!panel) continue;
      const { title, body, more, plane, pad } = panel;
      const left = -panel.width / 2 + pad;
      const titleRect = textRect(title);
      const titleH = titleRect ? titleRect[3] - titleRect[1] : 0;
      const lineH = body.fontSize * BODY_LINE_HEIGHT;
      const bodyRect = textRect(body);
      const bodyH = bodyRect ? bodyRect[3] - bodyRect[1] : 0;
      const lines = Math.round(bodyH / lineH);
      const authoredLines = Math.max(1, Math.floor((panel.authoredHeight - 2 * pad - titleH) / lineH));
      const maxLines = Math.max(1, Math.min(lineBudget, Math.max(authoredLines, 3)));
      const shown = Math.min(lines, maxLines);
      const cut = lines > shown;
      const moreH = cut ? more.fontSize * 1.5 + lineH * 0.3 : 0;
      const gap = titleH && bodyH ? lineH * 0.4 : 0;
      const height = pad + titleH + gap + shown * lineH + moreH + pad;
      const top = height / 2;
      title.position.set(left, top - pad, 0.002);
      body.position.set(left, top - pad - titleH - gap, 0.002);
      if (cut) {
        body.clipRect = [-1e3, -shown * lineH, 1e3, 1e3];
        more.visible = true;
        more.position.set(panel.width / 2 - pad, -height / 2 + pad, 0.002);
        clipped += 1;
      }
      plane.scale.set(panel.width, height, 1);
      panel.height = height;
      panel.clipped = cut;
    }
    return clipped;
  }

  // Labels (texts in the same group as a model) stack above the model's bounds, in front
  // of its centre, in their authored order from the top: never inside the model.
  placeLabels() {
    const groups = new Map();
    for (const { object, data } of this.display.entries.values()) {
      if (data.kind !== 'model' || !data.parent) continue;
      const parent = this.display.entries.get(data.parent);
      if (!parent || parent.data.kind !== 'group') continue;
      if (!groups.has(data.parent)) groups.set(data.parent, []);
      groups.get(data.parent).push(object);
    }
    for (const [groupId, models] of groups) {
      const labels = [...this.display.entries.values()]
        .filter((e) => e.data.parent === groupId && e.data.kind === 'text' && e.object.visible)
        .sort((a, b) => (b.data.order ?? 0) - (a.data.order ?? 0)); // lowest label first
      if (!labels.length) continue;
      const box = new THREE.Box3();
      for (const m of models) box.union(meshBox(m));
      if (box.isEmpty()) continue;
      let bottom = box.max.y + LABEL_GAP;
      const centre = box.getCenter(new THREE.Vector3());
      for (const { object } of labels) {
        const tb = textBox(object);
        if (tb.isEmpty()) continue;
        const pos = object.getWorldPosition(new THREE.Vector3());
        // Offset of the text's box from its origin, kept as troika anchored it.
        const target = new THREE.Vector3(centre.x + (pos.x - (tb.min.x + tb.max.x) / 2),
          bottom + (pos.y - tb.min.y), box.max.z);
        shiftWorld(object, target.sub(pos));
        bottom += tb.max.y - tb.min.y + LABEL_GAP * 0.4;
      }
    }
  }

  // Blocks that move as one: a panel, a model's label stack (its texts), a free text.
  // Models and images are obstacles that text moves away from; they never move.
  blocks() {
    const out = [];
    const stacks = new Map();
    for (const { object, data } of this.display.entries.values()) {
      if (!visibleInTree(object)) continue;
      const base = { id: object.name, order: data.order ?? 0 };
      if (data.kind === 'panel') {
        out.push({ ...base, movers: [object], box: meshBox(object), text: true });
      } else if (data.kind === 'text') {
        const box = textBox(object);
        if (!this.isLabel(data)) out.push({ ...base, movers: [object], box, text: true });
        else if (!stacks.has(data.parent)) {
          const stack = { ...base, movers: [object], box, text: true, group: data.parent };
          stacks.set(data.parent, stack);
          out.push(stack);
        } else {
          const stack = stacks.get(data.parent);
          stack.movers.push(object);
          stack.box.union(box);
          stack.order = Math.min(stack.order, base.order);
        }
      } else if (data.kind === 'model' || data.kind === 'image') {
        out.push({ ...base, movers: [], box: meshBox(object), text: false,
          parent: data.parent });
      }
    }
    return out.filter((b) => !b.box.isEmpty());
  }

  // No two text blocks overlap, nor text and a model, as the camera sees them (blocks at
  // different depths can meet on screen): the later block moves vertically (labels up,
  // others the shorter way) until it clears. Needs the camera framed first.
  separate() {
    let moved = 0;
    const camera = this.camera;
    const tanHalf = Math.tan((camera.fov * Math.PI) / 360);
    const screen = (box) => {
      const out = new THREE.Box3();
      for (const x of [box.min.x, box.max.x]) {
        for (const y of [box.min.y, box.max.y]) {
          for (const z of [box.min.z, box.max.z]) {
            const p = new THREE.Vector3(x, y, z).project(camera);
            out.expandByPoint(new THREE.Vector3(p.x * camera.aspect, p.y, 0));
          }
        }
      }
      return out;
    };
    camera.updateMatrixWorld(true);
    // Measured once: a moved block's box moves with it (models never move here).
    const blocks = this.blocks().map((b) => ({ ...b, screen: screen(b.box) }));
    let changed = true;
    for (let pass = 0; pass < PASSES && changed; pass += 1) {
      changed = false;
      for (let i = 0; i < blocks.length && !changed; i += 1) {
        for (let j = 0; j < blocks.length && !changed; j += 1) {
          const a = blocks[i];
          const b = blocks[j];
          if (i === j || !b.text) continue;
          if (a.text && (a.order < b.order || (a.order === b.order && i < j)) === false) continue;
          if (!a.text && b.group && a.parent === b.group) continue; // its own model: placed above
          if (!overlap2(a.screen, b.screen, 0.008)) continue;
          const up = b.group ? true
            : (b.screen.min.y + b.screen.max.y) >= (a.screen.min.y + a.screen.max.y);
          const dNdc = up ? a.screen.max.y + 0.012 - b.screen.min.y
            : a.screen.min.y - 0.012 - b.screen.max.y;
          // From screen to metres at the block's depth.
          const centre = b.box.getCenter(new THREE.Vector3()).applyMatrix4(camera.matrixWorldInverse);
          const dy = dNdc * Math.max(0.05, -centre.z) * tanHalf;
          const delta = new THREE.Vector3(0, dy, 0);
          for (const m of b.movers) shiftWorld(m, delta);
          b.box.translate(delta);
          b.screen = screen(b.box);
          moved += 1;
          changed = true;
        }
      }
    }
    this.unresolved = changed;
    return moved;
  }

  // Top-level goods as units for the portrait rows: items (groups with labels) first, in
  // their authored order left to right, then what carries no label (a crate, a table, a
  // logo). On a phone, goods come out of their crate into rows, where labels have room.
  goodsUnits() {
    const top = [...this.display.entries.values()].filter((e) => !e.data.parent
      && !['light', 'text', 'panel'].includes(e.data.kind) && visibleInTree(e.object));
    const labelled = new Set();
    for (const { data } of this.display.entries.values()) {
      if (data.kind === 'text' && this.isLabel(data)) labelled.add(data.parent);
    }
    const units = [];
    for (const e of top) {
      const box = meshBox(e.object);
      if (!box.isEmpty()) {
        units.push({ members: [e], box, x: e.data.position?.[0] ?? 0,
          rank: labelled.has(e.object.name) ? 0 : 1, order: e.data.order ?? 0 });
      }
    }
    // Same x (a grid of goods): file order.
    return units.sort((u, v) => u.rank - v.rank || u.x - v.x || u.order - v.order);
  }

  // Portrait: the goods in rows of cells across the column, going down from y = 0.
  arrangeGoods() {
    const units = this.goodsUnits();
    const cell = this.portraitCell(units);
    const perRow = Math.max(1, Math.round((this.columnWidth + GAP * 2) / (cell + GAP * 2)));
    // Goods larger than a cell (or taller than a row may be) shrink to fit it: on a phone the
    // text must stay readable, a crate need not be life-size.
    for (const u of units) {
      const size = u.box.getSize(new THREE.Vector3());
      const wide = size.x > cell * 1.5 ? this.columnWidth : cell;
      const s = Math.min(1, wide / Math.max(size.x, 1e-3), ROW_HEIGHT / Math.max(size.y, 1e-3));
      if (s < 0.999) {
        this.scaleUnit(u, s);
        u.box = new THREE.Box3();
        for (const m of u.members) u.box.union(meshBox(m.object));
      }
    }
    // One plane for the rows: the front-most unit's centre (a grid of goods laid out in
    // depth would otherwise read smaller, and higher up the screen, row by row).
    const plane = Math.max(...units.map((u) => (u.box.min.z + u.box.max.z) / 2));
    let y = 0;
    let i = 0;
    this.cellWidth = cell;
    while (i < units.length) {
      // A unit wider than a cell (a crate of goods) takes a row of its own.
      const row = [];
      // (A unit shrunk to a cell measures a hair over it: 1 mm of tolerance.)
      if (units[i].box.max.x - units[i].box.min.x > cell + 1e-3) row.push(units[i++]);
      else {
        while (i < units.length && row.length < perRow
          && units[i].box.max.x - units[i].box.min.x <= cell + 1e-3) row.push(units[i++]);
      }
      const slots = row.length === 1 && row[0].box.max.x - row[0].box.min.x > cell + 1e-3 ? 1 : row.length;
      const width = slots === 1 && row.length === 1 ? row[0].box.max.x - row[0].box.min.x : cell;
      const total = width * row.length + GAP * 2 * (row.length - 1);
      const height = Math.max(...row.map((u) => u.box.max.y - u.box.min.y));
      row.forEach((u, k) => {
        const cx = -total / 2 + width / 2 + k * (width + GAP * 2);
        const delta = new THREE.Vector3(cx - (u.box.min.x + u.box.max.x) / 2, y - u.box.max.y,
          plane - (u.box.min.z + u.box.max.z) / 2);
        for (const m of u.members) shiftWorld(m.object, delta);
      });
      // Room for the labels that will sit above the next row's goods.
      y -= height + GAP * 2 + this.labelRoom();
    }
    this.goodsTop = 0;
  }

  // The width of one cell of the goods rows: up to three items side by side in a phone's
  // column, as many as fit cells of CELL metres in a wider one.
  portraitCell(units = this.goodsUnits()) {
    const items = units.filter((u) => u.rank === 0).length || units.length;
    const width = this.columnWidth;
    const perRow = width > COLUMN_WIDTH
      ? Math.max(1, Math.min(items, Math.floor(width / CELL)))
      : items >= 5 ? 3 : Math.max(1, Math.min(2, items));
    return (width - GAP * 2 * (perRow - 1)) / perRow;
  }

  // Scale a unit's models about the bottom centre of its box; labels keep their size (they
  // are placed above the models afterwards).
  scaleUnit(unit, s) {
    const pivot = new THREE.Vector3((unit.box.min.x + unit.box.max.x) / 2, unit.box.min.y,
      (unit.box.min.z + unit.box.max.z) / 2);
    for (const { object, data } of unit.members) {
      const p = object.position;
      p.copy(pivot).addScaledVector(p.clone().sub(pivot), s);
      if (data.kind === 'group') {
        for (const child of object.children) {
          if (child instanceof Text || child.userData.kind === 'text') continue;
          child.position.multiplyScalar(s);
          child.scale.multiplyScalar(s);
        }
      } else object.scale.multiplyScalar(s);
      object.updateWorldMatrix(false, true);
    }
  }

  labelRoom() {
    let room = 0;
    const stacks = new Map();
    for (const { object, data } of this.display.entries.values()) {
      if (data.kind !== 'text' || !this.isLabel(data) || !visibleInTree(object)) continue;
      const info = object.textRenderInfo;
      if (!info) continue;
      const h = info.blockBounds[3] - info.blockBounds[1];
      stacks.set(data.parent, (stacks.get(data.parent) ?? 0) + h + LABEL_GAP);
    }
    for (const h of stacks.values()) room = Math.max(room, h);
    return room;
  }

  isLabel(data) {
    if (this.labelCache?.has(data)) return this.labelCache.get(data);
    const parent = this.display.entries.get(data.parent);
    const label = Boolean(parent && parent.data.kind === 'group'
      && [...this.display.entries.values()].some((e) => e.data.parent === data.parent
        && e.data.kind === 'model'));
    this.labelCache?.set(data, label);
    return label;
  }

  // A label wraps to the room beside its neighbours (in portrait, its cell): labels of goods
  // side by side never reach over each other.
  fitLabelWidths(rows) {
    const groups = new Map();
    for (const { object, data } of this.display.entries.values()) {
      if (data.kind === 'text' && this.isLabel(data) && visibleInTree(object)) {
        if (!groups.has(data.parent)) groups.set(data.parent, []);
        groups.get(data.parent).push(object);
      }
    }
    const centres = new Map();
    for (const id of groups.keys()) {
      const box = meshBox(this.display.entries.get(id).object);
      centres.set(id, box.isEmpty() ? this.display.entries.get(id).object.getWorldPosition(new THREE.Vector3())
        : box.getCenter(new THREE.Vector3()));
    }
    const cell = rows ? this.portraitCell() : Infinity;
    for (const [id, labels] of groups) {
      const c = centres.get(id);
      let room = cell;
      for (const [other, o] of centres) {
        if (rows) break; // the rows give each label its cell
        if (other !== id && Math.abs(o.y - c.y) < 0.3 && Math.abs(o.z - c.z) < 0.3) {
          room = Math.min(room, Math.abs(o.x - c.x) - GAP);
        }
      }
      for (const text of labels) {
        const own = text.maxWidth;
        // Never narrower than a short word or two (in portrait: than its cell).
        const floor = Math.min(text.fontSize * 7, cell);
        const width = Number.isFinite(room) ? Math.max(floor, Math.min(own ?? Infinity, room)) : own;
        if (width !== undefined && Number.isFinite(width) && text.maxWidth !== width) text.maxWidth = width;
      }
    }
  }

  // Portrait: headline texts above the goods, panels below them, all facing the viewer.
  arrangeAround() {
    const top = [...this.display.entries.values()].filter((e) => !e.data.parent
      && e.data.kind !== 'light' && visibleInTree(e.object));
    const headlines = top.filter((e) => e.data.kind === 'text')
      .sort((a, b) => (a.data.position?.[1] ?? 0) - (b.data.position?.[1] ?? 0));
    const panels = top.filter((e) => e.data.kind === 'panel')
      .sort((a, b) => (a.data.order ?? 0) - (b.data.order ?? 0));
    const goods = new THREE.Box3();
    for (const e of top) {
      if (e.data.kind === 'text' || e.data.kind === 'panel') continue;
      goods.union(meshBox(e.object));
      e.object.traverse((o) => {
        if (o instanceof Text && visibleInTree(o)) goods.union(textBox(o));
      });
    }
    const cx = goods.isEmpty() ? 0 : (goods.min.x + goods.max.x) / 2;
    // One plane for the column: headlines and panels at the front of the goods (further
    // back they would read smaller than the labels).
    const front = goods.isEmpty() ? null : goods.max.z;
    const dz = (box) => (front === null ? 0 : front - box.max.z);
    let above = goods.isEmpty() ? 0 : goods.max.y + GAP * 2;
    for (const e of headlines) {
      const box = textBox(e.object);
      if (box.isEmpty()) continue;
      shiftWorld(e.object, new THREE.Vector3(cx - (box.min.x + box.max.x) / 2, above - box.min.y, dz(box)));
      above += box.max.y - box.min.y + GAP;
    }
    let below = goods.isEmpty() ? 0 : goods.min.y - GAP * 2;
    for (const e of panels) {
      const box = meshBox(e.object);
      if (box.isEmpty()) continue;
      shiftWorld(e.object, new THREE.Vector3(cx - (box.min.x + box.max.x) / 2, below - box.max.y, dz(box)));
      below -= box.max.y - box.min.y + GAP * 2;
    }
  }

  // Everything drawn (models, images, panels, text): what the camera frames.
  drawnBox() {
    const box = new THREE.Box3();
    for (const b of this.blocks()) box.union(b.box);
    this.display.root.traverse((o) => {
      if (o instanceof Text && visibleInTree(o)) box.union(textBox(o));
    });
    return box;
  }

  smallestFont() {
    let min = Infinity;
    for (const t of this.allTexts()) {
      if (visibleInTree(t) && t.text) min = Math.min(min, t.userData.baseSize ?? t.fontSize);
    }
    return Number.isFinite(min) ? min : 0;
  }

  // The smallest text on screen, in CSS px (the font size projected at the text's depth).
  minTextPx() {
    let min = null;
    for (const t of this.allTexts()) {
      if (!visibleInTree(t) || !t.text) continue;
      const px = textPx(t, this.camera, this.viewHeight());
      if (min === null || px < min) min = px;
    }
    return min;
  }

  viewHeight() {
    return this.display.viewHeight?.() ?? 600;
  }
}

// A text's font size on screen in CSS px: its em box projected at its position.
export function textPx(text, camera, viewHeightPx) {
  const world = new THREE.Vector3();
  text.getWorldPosition(world);
  const scale = new THREE.Vector3();
  text.getWorldScale(scale);
  const dist = world.clone().applyMatrix4(camera.matrixWorldInverse).z;
  const depth = Math.max(1e-4, -dist);
  const perPx = (2 * depth * Math.tan((camera.fov * Math.PI) / 360)) / viewHeightPx;
  return (text.fontSize * scale.y) / perPx;
}

// Put the camera where the whole box is in view (with a margin on every side), looking
// at it slightly from above, for the camera's aspect.
export function frameBox(camera, box, elevation = 0.18) {
  if (box.isEmpty()) box = new THREE.Box3(new THREE.Vector3(-0.3, 0, -0.3), new THREE.Vector3(0.3, 0.4, 0.3));
  const centre = box.getCenter(new THREE.Vector3());
  const dir = new THREE.Vector3(0, elevation, 1).normalize();
  const corners = [];
  for (const x of [box.min.x, box.max.x]) {
    for (const y of [box.min.y, box.max.y]) {
      for (const z of [box.min.z, box.max.z]) corners.push(new THREE.Vector3(x, y, z));
    }
  }
  const limit = 1 - 2 * MARGIN;
  const fits = (d) => {
    camera.position.copy(centre).addScaledVector(dir, d);
    camera.lookAt(centre);
    camera.updateMatrixWorld(true);
    return corners.every((c) => {
      const p = c.clone().project(camera);
      return p.z < 1 && Math.abs(p.x) <= limit && Math.abs(p.y) <= limit;
    });
  };
  let lo = 0.05;
  let hi = 2;
  while (!fits(hi) && hi < 100) hi *= 2;
  for (let i = 0; i < 30; i += 1) {
    const mid = (lo + hi) / 2;
    if (fits(mid)) hi = mid;
    else lo = mid;
  }
  fits(hi);
  return { centre, distance: hi };
}
