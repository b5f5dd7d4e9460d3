// The editor's 3D view: the visitor pages' renderer (../scene.js DisplayRenderer) drawing
// the draft as the preview channel carries it (composed by the server exactly as visitors
// will see it), followed with the visitor pages' stream client (../stream.js). Nodes are
// shown where the file puts them (no phone layout), so the gizmo moves what is written.
// three.js TransformControls move / rotate / scale the selected node, with snapping.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { TransformControls } from 'three/addons/controls/TransformControls.js';
import { DisplayRenderer } from '../scene.js';
import { StreamClient } from '../stream.js';

const DEG = 180 / Math.PI;
const IDLE_FRAME_MS = 250;
const SNAP = { translate: 0.05, rotate: 15 / DEG, scale: 0.1 };

function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

export class Viewport {
  constructor({ container, boot, onSelect, onTransform, onState, onStream, onWarning }) {
    this.container = container;
    this.onSelect = onSelect;
    this.onTransform = onTransform;
    this.onState = onState;
    this.selected = null;
    this.dragging = false;
    this.pendingState = null; // a state that arrived mid-drag: applied when it ends

    const renderer = new THREE.WebGLRenderer({ antialias: true, alpha: false });
    renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    renderer.setSize(container.clientWidth, container.clientHeight);
    container.appendChild(renderer.domElement);
    renderer.domElement.setAttribute('aria-hidden', 'true');
    this.renderer = renderer;

    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color('#20281f');
    this.scene.add(new THREE.HemisphereLight('#ffffff', '#445544', 1.2));
    const grid = new THREE.GridHelper(2, 40, '#5b6b58', '#34402f');
    grid.material.transparent = true;
    grid.material.opacity = 0.6;
    this.scene.add(grid);

    this.camera = new THREE.PerspectiveCamera(50, this.aspect(), 0.01, 50);
    this.camera.position.set(0, 0.6, 1.4);
    this.orbit = new OrbitControls(this.camera, renderer.domElement);
    this.orbit.target.set(0, 0.2, 0);
    this.orbit.enableDamping = true;

    // In its first seconds (models loading, text measured) the view frames the display
    // again, unless the curator has turned it; after that the camera stays put.
    this.turned = false;
    this.autoFrameUntil = performance.now() + 4000;
    this.orbit.addEventListener('start', () => {
      this.turned = true;
    });
    this.display = new DisplayRenderer({ renderer, onWarning: onWarning || (() => {}),
      onChange: () => {
        this.invalidate();
        if (this.autoFraming()) requestAnimationFrame(() => this.frame());
      } });
    this.scene.add(this.display.root);

    const gizmo = new TransformControls(this.camera, renderer.domElement);
    gizmo.addEventListener('dragging-changed', (e) => {
      this.orbit.enabled = !e.value;
      this.dragging = e.value;
      if (!e.value) {
        this.emitTransform(true);
        if (this.pendingState) {
          const state = this.pendingState;
          this.pendingState = null;
          this.apply(state, null);
        }
      }
    });
    gizmo.addEventListener('objectChange', () => this.emitTransform(false));
    this.scene.add(gizmo.getHelper());
    this.gizmo = gizmo;
    this.setSnap(true);

    // Click (not a drag) on a node selects it; on nothing, selects nothing.
    let down = null;
    renderer.domElement.addEventListener('pointerdown', (e) => {
      down = { x: e.clientX, y: e.clientY };
    });
    renderer.domElement.addEventListener('pointerup', (e) => {
      if (!down || this.gizmo.dragging) return;
      const moved = Math.hypot(e.clientX - down.x, e.clientY - down.y);
      down = null;
      if (moved < 5) this.onSelect(this.pick(e.clientX, e.clientY));
    });

    this.stream = new StreamClient({
      url: wsUrl(boot.ws || '/ws'),
      channels: [{ channel: boot.channel }],
      token: boot.token,
      onChange: (channel, ch, ops) => {
        this.stats.updates += 1;
        this.stats.lastAt = performance.now();
        if (this.dragging) this.pendingState = ch.state;
        else this.apply(ch.state, ops);
      },
      onEvent: (ev) => onStream?.(ev),
    });
    this.stats = { updates: 0, lastAt: null, frames: 0 };
    this.stream.start();

    // Drawn on demand: every frame for a moment after anything changed (a turn of the view,
    // the gizmo, a new state, a model loaded), 4 frames a second while idle.
    this.renderUntil = 0;
    this.lastRender = 0;
    gizmo.addEventListener('change', () => this.invalidate());
    new ResizeObserver(() => this.resize()).observe(container);
    renderer.setAnimationLoop(() => {
      if (this.orbit.update()) this.invalidate(300);
      // Idle, a few frames a second still: text finishes its layout in a worker, unseen.
      const now = performance.now();
      if (now > this.renderUntil && now - this.lastRender < IDLE_FRAME_MS) return;
      this.lastRender = now;
      renderer.render(this.scene, this.camera);
      this.stats.frames += 1;
    });
  }

  // Frame everything when the next state arrives (a node was just added).
  frameSoon() {
    this.autoFrameUntil = performance.now() + 1500;
    this.turned = false;
  }

  autoFraming() {
    return !this.turned && !this.dragging && performance.now() < this.autoFrameUntil;
  }

  invalidate(ms = 1000) {
    this.renderUntil = Math.max(this.renderUntil, performance.now() + ms);
  }

  aspect() {
    return this.container.clientWidth / Math.max(1, this.container.clientHeight);
  }

  resize() {
    const w = this.container.clientWidth;
    const h = this.container.clientHeight;
    if (!w || !h) return;
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.renderer.setSize(w, h);
    if (!this.turned && this.display.count) this.frame(); // a phone turned: fit again
    this.invalidate();
  }

  apply(state, ops) {
    if (ops) this.display.applyOps(state, ops);
    else this.display.setState(state);
    this.state = state;
    if (this.autoFraming() && this.display.count) setTimeout(() => this.autoFraming() && this.frame(), 300);
    this.attach();
    this.invalidate();
    this.onState?.(state);
  }

  // Look at every node: the box around the nodes' places (not their meshes: text is
  // measured later, a model may still load), with room around it.
  frame() {
    this.display.root.updateMatrixWorld(true);
    const box = new THREE.Box3();
    for (const { object } of this.display.entries.values()) {
      box.expandByPoint(object.getWorldPosition(new THREE.Vector3()));
    }
    if (box.isEmpty()) return;
    box.expandByScalar(0.25);
    const centre = box.getCenter(new THREE.Vector3());
    const size = box.getSize(new THREE.Vector3());
    const fov = (this.camera.fov * Math.PI) / 180;
    const fit = Math.max(size.y, size.x / Math.max(0.5, this.camera.aspect)) / 2;
    const distance = Math.max(0.8, (fit / Math.tan(fov / 2)) * 1.15 + size.z / 2);
    this.orbit.target.copy(centre);
    this.camera.position.copy(centre).add(new THREE.Vector3(0, 0.35, 1).normalize().multiplyScalar(distance));
    this.camera.updateProjectionMatrix();
    this.orbit.update();
    this.invalidate();
  }

  pick(x, y) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(((x - rect.left) / rect.width) * 2 - 1, -((y - rect.top) / rect.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.setFromCamera(ndc, this.camera);
    for (const hit of ray.intersectObject(this.display.root, true)) {
      let o = hit.object;
      while (o && !o.userData.holoId) o = o.parent;
      if (o) return o.userData.holoId;
    }
    return null;
  }

  object(id) {
    return id ? this.display.entries.get(id)?.object || null : null;
  }

  select(id) {
    this.selected = id;
    this.attach();
    this.invalidate();
  }

  attach() {
    const object = this.object(this.selected);
    if (object && this.gizmo.object !== object) this.gizmo.attach(object);
    else if (!object && this.gizmo.object) this.gizmo.detach();
  }

  setMode(mode) {
    this.gizmo.setMode(mode);
  }

  setSnap(on) {
    this.gizmo.setTranslationSnap(on ? SNAP.translate : null);
    this.gizmo.setRotationSnap(on ? SNAP.rotate : null);
    this.gizmo.setScaleSnap(on ? SNAP.scale : null);
  }

  emitTransform(final) {
    const o = this.gizmo.object;
    if (!o?.userData.holoId) return;
    this.onTransform(o.userData.holoId, {
      position: o.position.toArray(),
      rotation: [o.rotation.x * DEG, o.rotation.y * DEG, o.rotation.z * DEG],
      scale: o.scale.toArray(),
    }, final);
  }

  // Where a node is on screen (CSS px, page coordinates): tests drag its gizmo from there.
  screenOf(id, [dx, dy, dz] = [0, 0, 0]) {
    const o = this.object(id);
    if (!o) return null;
    const v = o.getWorldPosition(new THREE.Vector3()).add(new THREE.Vector3(dx, dy, dz))
      .project(this.camera);
    const rect = this.renderer.domElement.getBoundingClientRect();
    return { x: rect.left + ((v.x + 1) / 2) * rect.width, y: rect.top + ((1 - v.y) / 2) * rect.height };
  }
}
