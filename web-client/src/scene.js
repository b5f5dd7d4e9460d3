// Turns a display state's flat `nodes` map into three.js objects, and keeps them in step
// with patches by rebuilding only the nodes a patch touched.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { MeshoptDecoder } from 'three/addons/libs/meshopt_decoder.module.js';
import { KTX2Loader } from 'three/addons/loaders/KTX2Loader.js';
import { Text } from 'troika-three-text';
import { drawable, fontUrl } from './fonts.js';
import { plainText } from './text.js';
import { deviceClass, pickModelSrc, supportsWebp } from './device.js';
import { BODY_LINE_HEIGHT } from './layout.js';

const DEG = Math.PI / 180;

const PLACEHOLDER_SIZE = 0.12;
const PRICE = /[€$£¥]\s?\d|\d[.,]\d\d/;
// Fields that only move a node: changing them never needs a rebuild.
const TRANSFORM_FIELDS = new Set(['position', 'rotation', 'scale', 'visible', 'order']);

function finite3(v, fallback) {
  return Array.isArray(v) && v.length === 3 && v.every(Number.isFinite) ? v : fallback;
}

function color(value, fallback) {
  return typeof value === 'string' && /^#[0-9a-fA-F]{6}$/.test(value) ? value : fallback;
}

function num(value, fallback, min = 0, max = 100) {
  return Number.isFinite(value) && value > min && value <= max ? value : fallback;
}

// Bidi: a label mixing scripts (an untranslated English name with an Arabic-formatted
// price, "\u200f6.50 €") is laid out in the page's direction, each amount isolated
// (FSI ... PDI: troika's bidi-js honours isolates, and draws neither) so its digits,
// separators and currency keep their order whatever surrounds them.
const RTL_TEXT = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF\u200F\u061C]/u;
const LTR_TEXT = /[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]/u;
const DIGIT = '0-9\u0660-\u0669\u06F0-\u06F9';
const AMOUNT = new RegExp(`[\u200E\u200F\u061C]?(?:[€$£¥][\\s\u00A0\u202F]?)?[${DIGIT}]`
  + `(?:[${DIGIT}.,\u066B\u066C]|[\u00A0\u202F ](?=[${DIGIT}]))*`
  + '(?:[\\s\u00A0\u202F]?[€$£¥])?', 'gu');

export function bidiText(text, pageDir) {
  if (!RTL_TEXT.test(text) || !LTR_TEXT.test(text)) {
    return { text, direction: 'auto' };
  }
  return { text: text.replace(AMOUNT, (m) => `\u2068${m}\u2069`),
    direction: pageDir === 'rtl' ? 'rtl' : 'ltr' };
}

function makeText(text, { size = 0.05, colour = '#ffffff', align = 'center', maxWidth } = {}) {
  const t = new Text();
  t.font = fontUrl; // served by us: troika's default font is fetched from a CDN
  const bidi = bidiText(plainText(text), globalThis.document?.documentElement.dir);
  t.text = drawable(bidi.text);
  t.direction = bidi.direction;
  t.fontSize = size;
  t.color = colour;
  t.anchorX = align;
  t.textAlign = align;
  t.anchorY = 'middle';
  t.overflowWrap = 'break-word'; // a line with no spaces (Chinese, a long URL) wraps too
  if (maxWidth) t.maxWidth = maxWidth;
  t.sync();
  return t;
}

function disposeTree(object) {
  // Loaded models share geometry and materials with the cached template: never free them.
  if (object.userData.sharedAsset) return;
  if (object instanceof Text) object.dispose(); // troika frees its own geometry
  else if (object.isMesh) {
    object.geometry?.dispose();
    const mats = Array.isArray(object.material) ? object.material : [object.material];
    for (const m of mats) {
      m?.map?.dispose?.();
      m?.dispose?.();
    }
  }
  for (const child of object.children) {
    if (!child.userData.holoId) disposeTree(child);
  }
}

export class DisplayRenderer {
  /**
   * @param {object} hooks
   * @param {(e) => void} hooks.onProgress model loading progress {loading, loaded, bytes, total}
   * @param {(msg) => void} hooks.onWarning a problem worth logging (failed model, bad node)
   */
  constructor({ onProgress = () => {}, onWarning = () => {}, renderer = null,
    onChange = () => {} } = {}) {
    this.onChange = onChange; // something drawn changed size or place: lay out again
    this.root = new THREE.Group();
    this.root.name = 'display';
    this.entries = new Map(); // node id -> {object, data}
    this.renders = {}; // node id -> how many times it was (re)built: the test hook reads it
    this.onProgress = onProgress;
    this.onWarning = onWarning;
    this.loader = new GLTFLoader();
    // Processed assets carry EXT_meshopt_compression geometry (the asset pipeline).
    this.loader.setMeshoptDecoder(MeshoptDecoder);
    // KTX2 (Basis Universal) textures. With no transcoder path set, KTX2Loader loads its
    // transcoder through `new URL(..., import.meta.url)`, which vite emits into our build
    // (hashed, immutable): never from a CDN.
    if (renderer) this.loader.setKTX2Loader(new KTX2Loader().detectSupport(renderer));
    this.device = deviceClass();
    this.textureLoader = new THREE.TextureLoader();
    this.models = new Map(); // src -> Promise<THREE.Object3D template>
    this.progress = new Map(); // src -> {loaded, total, done}
  }

  get count() {
    return this.entries.size;
  }

  // ---- whole state ---------------------------------------------------------------------

  setState(state) {
    const nodes = state && typeof state.nodes === 'object' && state.nodes ? state.nodes : {};
    for (const id of [...this.entries.keys()]) if (!(id in nodes)) this.remove(id);
    for (const [id, data] of Object.entries(nodes)) {
      const old = this.entries.get(id);
      if (!old || JSON.stringify(old.data) !== JSON.stringify(data)) this.upsert(id, data);
    }
    this.relink(nodes);
    this.onChange();
  }

  // Apply the nodes a patch touched: `ops` paths look like /nodes/<id>/... (ids need no
  // JSON Pointer escaping, see the protocol).
  applyOps(state, ops) {
    const touched = new Set();
    let all = false;
    for (const op of ops) {
      const parts = String(op.path).split('/');
      if (parts[1] === 'nodes' && parts.length >= 3) touched.add(parts[2]);
      else if (parts[1] === 'nodes' || op.path === '' || op.path === '/') all = true;
    }
    if (all) return this.setState(state);
    const nodes = state.nodes || {};
    for (const id of touched) {
      if (!(id in nodes)) this.remove(id);
      else this.upsert(id, nodes[id]);
    }
    this.relink(nodes);
    this.onChange();
    return touched;
  }

  // ---- one node ------------------------------------------------------------------------

  upsert(id, data) {
    const old = this.entries.get(id);
    if (old && this.onlyMoved(old.data, data)) {
      old.data = data;
      this.applyTransform(old.object, data);
      return;
    }
    let object;
    try {
      object = this.build(id, data);
    } catch (err) {
      this.onWarning(`node ${id}: ${err.message}`);
      object = new THREE.Group();
    }
    object.name = id;
    object.userData.holoId = id;
    object.userData.kind = data.kind;
    this.applyTransform(object, data);
    if (old) {
      // Keep the children of a rebuilt group where they are.
      for (const child of [...old.object.children]) {
        if (child.userData.holoId) object.add(child);
      }
      old.object.parent?.remove(old.object);
      disposeTree(old.object);
    }
    this.entries.set(id, { object, data });
    this.renders[id] = (this.renders[id] || 0) + 1;
  }

  remove(id) {
    const old = this.entries.get(id);
    if (!old) return;
    old.object.parent?.remove(old.object);
    disposeTree(old.object);
    this.entries.delete(id);
  }

  onlyMoved(a, b) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      if (k === 'parent' || TRANSFORM_FIELDS.has(k)) continue;
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return false;
    }
    return true;
  }

  applyTransform(object, data) {
    const [x, y, z] = finite3(data.position, [0, 0, 0]);
    const [rx, ry, rz] = finite3(data.rotation, [0, 0, 0]);
    const [sx, sy, sz] = finite3(data.scale, [1, 1, 1]);
    object.position.set(x, y, z);
    object.rotation.set(rx * DEG, ry * DEG, rz * DEG, 'XYZ');
    object.scale.set(sx, sy, sz);
    object.visible = data.visible !== false;
  }

  // Parent/order rebuild the tree: attach every node under its parent in order.
  relink(nodes) {
    const byParent = new Map();
    for (const [id, data] of Object.entries(nodes)) {
      const parent = data.parent && this.entries.has(data.parent) ? data.parent : null;
      if (!byParent.has(parent)) byParent.set(parent, []);
      byParent.get(parent).push([data.order ?? 0, id]);
    }
    for (const [parent, list] of byParent) {
      const target = parent === null ? this.root : this.entries.get(parent).object;
      list.sort((a, b) => a[0] - b[0]);
      for (const [, id] of list) {
        const { object } = this.entries.get(id);
        if (object.parent !== target) target.add(object);
      }
    }
  }

  build(id, data) {
    switch (data.kind) {
      case 'group': return new THREE.Group();
      case 'model': return this.buildModel(id, data);
      case 'text': {
        const text = makeText(data.text, {
          size: num(data.size, 0.05, 0, 10), colour: color(data.color, '#ffffff'),
          align: ['left', 'center', 'right'].includes(data.align) ? data.align : 'center',
          maxWidth: num(data.max_width, undefined),
        });
        text.userData.maxWidth = num(data.max_width, undefined);
        // An item's text with a money amount in it is its price: the largest text around;
        // its other texts (its stock line, its name) are 'line's (the layout check wants
        // neither hidden by a model: web-client/src/probe.js).
        text.userData.role = !data.item ? 'text'
          : PRICE.test(plainText(data.text)) ? 'price' : 'line';
        return text;
      }
      case 'image': return this.buildImage(data);
      case 'panel': return this.buildPanel(data);
      case 'light': return this.buildLight(data);
      default:
        this.onWarning(`node ${id}: unknown kind ${JSON.stringify(data.kind)}`);
        return new THREE.Group();
    }
  }

  // A panel is a plane with a title and a body; the layout engine (layout.js) sizes the
  // plane from the measured text and clips a long body with "more".
  buildPanel(data) {
    const width = num(data.width, 0.4);
    const height = num(data.height, 0.25);
    const group = new THREE.Group();
    const opacity = Number.isFinite(data.opacity) ? Math.min(1, Math.max(0, data.opacity)) : 0.85;
    const plane = new THREE.Mesh(
      new THREE.PlaneGeometry(1, 1),
      new THREE.MeshBasicMaterial({ color: color(data.color, '#1e2a1e'), transparent: opacity < 1,
        opacity, side: THREE.DoubleSide, depthWrite: opacity >= 1 }),
    );
    plane.scale.set(width, height, 1);
    group.add(plane);
    const pad = Math.min(width, height) * 0.08;
    const titleSize = Math.max(0.012, Math.min(0.04, height * 0.12));
    const title = makeText(data.title, { size: titleSize, align: 'left', maxWidth: width - 2 * pad });
    title.anchorY = 'top';
    title.fontWeight = 'bold';
    title.userData.role = 'title';
    const body = makeText(data.body, { size: titleSize * 0.75, align: 'left',
      maxWidth: width - 2 * pad });
    body.anchorY = 'top';
    body.lineHeight = BODY_LINE_HEIGHT;
    body.userData.role = 'body';
    const more = makeText('more \u203a', { size: titleSize * 0.75, align: 'right', colour: '#ffd27a' });
    more.anchorY = 'bottom';
    more.visible = false;
    more.userData.role = 'more';
    title.position.set(-width / 2 + pad, height / 2 - pad, 0.002);
    body.position.set(-width / 2 + pad, height / 2 - pad - titleSize * 1.6, 0.002);
    title.sync();
    body.sync();
    group.add(title, body, more);
    group.userData.panel = { plane, title, body, more, pad, width, height, authoredWidth: width,
      authoredHeight: height, fullTitle: plainText(data.title), fullBody: plainText(data.body) };
    return group;
  }

  buildLight(data) {
    const c = color(data.color, '#ffffff');
    const intensity = Number.isFinite(data.intensity) ? data.intensity : 1;
    switch (data.light) {
      case 'ambient': return new THREE.AmbientLight(c, intensity);
      case 'directional': {
        const light = new THREE.DirectionalLight(c, intensity);
        // Aim at the node's own origin region: a directional light shines towards its target.
        light.target.position.set(0, -1, -1);
        light.add(light.target);
        return light;
      }
      case 'spot': {
        const light = new THREE.SpotLight(c, intensity, 0, Math.PI / 5, 0.3, 2);
        light.target.position.set(0, -1, 0);
        light.add(light.target);
        return light;
      }
      default: return new THREE.PointLight(c, intensity, 0, 2);
    }
  }

  buildImage(data) {
    const width = num(data.width, 0.3);
    const material = new THREE.MeshBasicMaterial({ color: '#888888', side: THREE.DoubleSide,
      transparent: true });
    const mesh = new THREE.Mesh(new THREE.PlaneGeometry(1, 1), material);
    mesh.scale.set(width, width * 0.75, 1);
    mesh.userData.alt = plainText(data.alt);
    if (typeof data.src === 'string' && data.src.startsWith('/assets/')) {
      this.textureLoader.load(data.src, (texture) => {
        texture.colorSpace = THREE.SRGBColorSpace;
        material.map = texture;
        material.color.set('#ffffff');
        material.needsUpdate = true;
        const { width: w, height: h } = texture.image;
        if (w > 0 && h > 0) mesh.scale.set(width, (width * h) / w, 1);
      }, undefined, () => this.onWarning(`image ${data.src} failed to load`));
    }
    const holder = new THREE.Group();
    holder.add(mesh);
    return holder;
  }

  // Models load asynchronously; the node shows a placeholder box until then, and keeps a
  // labelled placeholder if the file is missing or broken, so the rest still renders.
  buildModel(id, data) {
    const holder = new THREE.Group();
    const placeholder = this.placeholder(data.label || data.asset || id);
    holder.add(placeholder);
    const src = pickModelSrc(data, this.device, data.lods ? supportsWebp() : true);
    if (typeof src !== 'string' || !src.startsWith('/assets/')) {
      placeholder.userData.failed = true;
      this.onWarning(`model ${id}: no file (asset ${JSON.stringify(data.asset)})`);
      return holder;
    }
    this.loadModel(src).then((template) => {
      if (this.entries.get(id)?.object !== holder) return; // rebuilt or removed meanwhile
      holder.remove(placeholder);
      disposeTree(placeholder);
      const model = template.clone(true);
      model.userData.sharedAsset = true;
      holder.add(model);
      holder.userData.loaded = true;
      this.onChange();
    }, (err) => {
      placeholder.userData.failed = true;
      holder.userData.failed = true;
      this.onChange();
      this.onWarning(`model ${id} (${src}) failed to load: ${err?.message || err}`);
    });
    return holder;
  }

  placeholder(label) {
    const group = new THREE.Group();
    const box = new THREE.Mesh(
      new THREE.BoxGeometry(PLACEHOLDER_SIZE, PLACEHOLDER_SIZE, PLACEHOLDER_SIZE),
      new THREE.MeshBasicMaterial({ color: '#d0a030', wireframe: true }),
    );
    box.position.y = PLACEHOLDER_SIZE / 2;
    const text = makeText(label, { size: 0.025, colour: '#ffe9a8' });
    // On the box's front face: labels placed above the box (layout.js) are in front of it too.
    text.position.set(0, PLACEHOLDER_SIZE + 0.03, PLACEHOLDER_SIZE / 2);
    group.add(box, text);
    group.userData.placeholder = true;
    return group;
  }

  loadModel(src) {
    if (!this.models.has(src)) {
      this.progress.set(src, { loaded: 0, total: 0, done: false });
      const promise = new Promise((resolve, reject) => {
        this.loader.load(src, (gltf) => {
          // Object3D.clone keeps `animations`: show cues play these clips by name.
          gltf.scene.animations = gltf.animations;
          resolve(gltf.scene);
        }, (ev) => {
          const p = this.progress.get(src);
          p.loaded = ev.loaded;
          p.total = ev.lengthComputable ? ev.total : 0;
          this.reportProgress();
        }, reject);
      }).finally(() => {
        this.progress.get(src).done = true;
        this.reportProgress();
      });
      this.models.set(src, promise);
      this.reportProgress();
    }
    return this.models.get(src);
  }

  reportProgress() {
    let loaded = 0;
    let total = 0;
    let done = 0;
    for (const p of this.progress.values()) {
      loaded += p.loaded;
      total += p.total;
      if (p.done) done += 1;
    }
    this.onProgress({ models: this.progress.size, done, bytes: loaded, total });
  }
}
