// Test hook (window.__holo.layoutProbe): where everything drawn lands on screen, from the
// live three.js scene. tests/browser/test_display_layout.py asserts on it.
import * as THREE from 'three';
import { Text } from 'troika-three-text';
import { meshBox, textBox, textPx, textRect } from './layout.js';

function visibleInTree(object) {
  for (let o = object; o; o = o.parent) if (!o.visible) return false;
  return true;
}

function screenRect(box, camera, w, h) {
  if (box.isEmpty()) return null;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const x of [box.min.x, box.max.x]) {
    for (const y of [box.min.y, box.max.y]) {
      for (const z of [box.min.z, box.max.z]) {
        const p = new THREE.Vector3(x, y, z).project(camera);
        const sx = ((p.x + 1) / 2) * w;
        const sy = ((1 - p.y) / 2) * h;
        x0 = Math.min(x0, sx);
        y0 = Math.min(y0, sy);
        x1 = Math.max(x1, sx);
        y1 = Math.max(y1, sy);
      }
    }
  }
  return [x0, y0, x1, y1].map((v) => Math.round(v * 10) / 10);
}

// The quad a text covers on screen: its drawn rectangle's 4 corners, projected (a turned
// panel's text is no rectangle on screen, so overlap is tested on these quads).
function textQuad(text, camera, w, h) {
  const r = textRect(text);
  if (!r) return null;
  return [[r[0], r[1]], [r[2], r[1]], [r[2], r[3]], [r[0], r[3]]].map(([x, y]) => {
    const p = new THREE.Vector3(x, y, 0).applyMatrix4(text.matrixWorld).project(camera);
    return [Math.round(((p.x + 1) / 2) * w * 10) / 10, Math.round(((1 - p.y) / 2) * h * 10) / 10];
  });
}

function planeQuad(plane, camera, w, h) {
  return [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]].map(([x, y]) => {
    const p = new THREE.Vector3(x, y, 0).applyMatrix4(plane.matrixWorld).project(camera);
    return [Math.round(((p.x + 1) / 2) * w * 10) / 10, Math.round(((1 - p.y) / 2) * h * 10) / 10];
  });
}

// Share of sample points on a text that a model hides (ray from the camera hits a model
// first).
function occlusion(text, models, camera, samples) {
  const info = text.textRenderInfo;
  if (!info) return 0;
  const [x0, y0, x1, y1] = info.blockBounds;
  const raycaster = new THREE.Raycaster();
  let hidden = 0;
  let total = 0;
  for (let i = 0; i < samples; i += 1) {
    for (let j = 0; j < samples; j += 1) {
      const local = new THREE.Vector3(x0 + ((i + 0.5) / samples) * (x1 - x0),
        y0 + ((j + 0.5) / samples) * (y1 - y0), 0);
      const world = local.applyMatrix4(text.matrixWorld);
      const origin = camera.getWorldPosition(new THREE.Vector3());
      const dir = world.clone().sub(origin);
      const dist = dir.length();
      raycaster.set(origin, dir.normalize());
      raycaster.far = dist - 1e-3;
      total += 1;
      if (raycaster.intersectObjects(models, true).some((hit) => !(hit.object instanceof Text))) hidden += 1;
    }
  }
  return total ? hidden / total : 0;
}

export function layoutProbe({ display, camera, container, samples = 4 }) {
  const w = container.clientWidth;
  const h = container.clientHeight;
  display.root.updateMatrixWorld(true);
  camera.updateMatrixWorld(true);
  const models = [];
  const out = { view: [w, h], texts: [], panels: [], models: [], camera: camera.position.toArray() };
  for (const [id, { object, data }] of display.entries) {
    if (!visibleInTree(object)) continue;
    if (data.kind === 'model') {
      models.push(object);
      const rect = screenRect(meshBox(object), camera, w, h);
      if (rect) out.models.push({ id, rect, failed: Boolean(object.userData.failed) });
    } else if (data.kind === 'panel') {
      const panel = object.userData.panel;
      out.panels.push({ id, rect: screenRect(meshBox(object), camera, w, h),
        quad: panel ? planeQuad(panel.plane, camera, w, h) : null, clipped: Boolean(panel?.clipped) });
    }
  }
  display.root.traverse((o) => {
    if (!(o instanceof Text) || !visibleInTree(o) || !o.text) return;
    // Which node the text belongs to: itself, or the panel/model it is part of.
    let owner = o;
    while (owner && !owner.userData.holoId) owner = owner.parent;
    const ownerKind = owner?.userData.kind;
    const rect = screenRect(textBox(o), camera, w, h);
    if (!rect) return;
    out.texts.push({
      id: owner?.userData.holoId ?? null,
      part: o.userData.role ?? 'text',
      panel: ownerKind === 'panel' ? owner.userData.holoId : null,
      label: ownerKind === 'model', // a failed model's own placeholder label
      rect,
      quad: textQuad(o, camera, w, h),
      px: Math.round(textPx(o, camera, h) * 100) / 100,
      text: o.text.slice(0, 60),
      // An item's price and its other lines (stock, name): never under a model.
      occluded: ['price', 'line'].includes(o.userData.role)
        ? occlusion(o, models, camera, samples) : 0,
    });
  });
  return out;
}
