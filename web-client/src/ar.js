// The immersive-ar session: hit-test reticle, tap to place, an anchor so the placement
// holds, dom-overlay for the text UI. The placement is remembered per display in
// sessionStorage, so re-entering AR in the same visit puts the display back.
// Only a counter can carry the display: a hit must face up (its pose's Y axis is the
// surface normal) at a height a table or counter has; walls, ceilings and the floor are
// refused. Once placed the reticle goes away; "Move" and "Reset" are explicit.
import * as THREE from 'three';

const STORE_PREFIX = 'holobazaar:placement:';
const DOM_TAP_DEDUP_MS = 400;
// cos(25°): a surface tilted more than 25° from level is not a counter.
const MIN_UP = Math.cos((25 * Math.PI) / 180);
// Plausible counter heights above the floor, metres (a low crate to a high bar).
export const COUNTER_HEIGHT = [0.3, 1.4];
// Without local-floor, y = 0 is the viewer's eyes: assume a standing adult's eye height.
const EYE_HEIGHT = 1.6;

/** Whether a hit pose (a column-major 4x4 array, WebXR) is a counter top: the surface
 * faces up and sits at a counter's height above the floor (`floorY`: the floor's y in the
 * reference space). Returns {ok, up, height, why}. */
export function counterHit(matrix, floorY = 0) {
  const up = matrix[5]; // the pose's Y axis, in world terms, dotted with world up
  const height = matrix[13] - floorY;
  let why = null;
  if (!(up >= MIN_UP)) why = 'not level';
  else if (height < COUNTER_HEIGHT[0] || height > COUNTER_HEIGHT[1]) why = 'not at counter height';
  return { ok: why === null, up, height, why };
}

export class ArSession {
  constructor({ renderer, scene, placer, page, hook, key, onEnd }) {
    Object.assign(this, { renderer, scene, placer, page, hook, key, onEnd });
    this.session = null;
    this.hitSource = null;
    this.lastHit = null;
    this.anchor = null;
    this.anchorOffset = new THREE.Matrix4(); // display pose relative to the anchor
    this.lastSelect = 0;
    this.placing = true; // the reticle looks for a counter until the display is placed
    this.floorY = 0;
    this.reticle = new THREE.Mesh(
      new THREE.RingGeometry(0.06, 0.08, 32).rotateX(-Math.PI / 2),
      new THREE.MeshBasicMaterial({ color: '#ffd23f' }),
    );
    this.reticle.matrixAutoUpdate = false;
    this.reticle.visible = false;
    scene.add(this.reticle);
  }

  async supported() {
    try {
      return Boolean(navigator.xr && await navigator.xr.isSessionSupported('immersive-ar'));
    } catch {
      return false;
    }
  }

  async enter() {
    if (this.session) return;
    this.hook.phase = 'ar-starting';
    const overlay = this.page.overlayRoot();
    const session = await navigator.xr.requestSession('immersive-ar', {
      requiredFeatures: ['hit-test'],
      optionalFeatures: ['local-floor', 'anchors', 'dom-overlay'],
      domOverlay: { root: overlay },
    });
    this.session = session;
    const features = session.enabledFeatures;
    // Without the list (older browsers) assume local-floor, which AR browsers provide.
    const floor = !features || features.includes('local-floor');
    this.renderer.xr.setReferenceSpaceType(floor ? 'local-floor' : 'local');
    this.floorY = floor ? 0 : -EYE_HEIGHT;
    this.hook.enabledFeatures = features ? [...features] : null;
    await this.renderer.xr.setSession(session);
    const viewer = await session.requestReferenceSpace('viewer');
    this.hitSource = await session.requestHitTestSource({ space: viewer });
    this.scene.background = null; // camera passthrough shows through
    session.addEventListener('select', () => this.place('select'));
    session.addEventListener('end', () => this.ended());
    this.page.enterAr({
      onExit: () => this.exit(),
      onTap: () => this.place('tap'),
      onMove: () => this.move(),
      onReset: () => this.reset(),
    });
    this.placer.matrixAutoUpdate = false;
    this.placer.visible = false;
    this.placing = true;
    this.hook.placed = false;
    this.hook.phase = 'ar';
    this.restore();
  }

  exit() {
    this.session?.end();
  }

  ended() {
    this.hitSource?.cancel?.();
    this.anchor?.delete?.();
    Object.assign(this, { session: null, hitSource: null, lastHit: null, anchor: null,
      pendingPlace: null });
    this.reticle.visible = false;
    this.placer.visible = true;
    this.placing = true;
    this.hook.placed = false;
    this.page.exitAr();
    this.onEnd();
  }

  onFrame(frame) {
    const refSpace = this.renderer.xr.getReferenceSpace();
    if (!refSpace || !this.hitSource) return;
    const hits = frame.getHitTestResults(this.hitSource);
    // The nearest hit only: one further along the ray is hidden behind it.
    const pose = hits.length ? hits[0].getPose(refSpace) : null;
    this.lastHit = null;
    if (pose) {
      const matrix = new THREE.Matrix4().fromArray(pose.transform.matrix);
      const check = counterHit(matrix.elements, this.floorY);
      this.hook.hitFrames += 1;
      const p = pose.transform.position;
      this.hook.lastHit = p ? [p.x, p.y, p.z] : null;
      this.hook.lastHitCheck = check;
      if (check.ok) {
        this.lastHit = { result: hits[0], matrix };
        this.hook.acceptedHits = (this.hook.acceptedHits || 0) + 1;
      } else {
        this.hook.refusedHits = (this.hook.refusedHits || 0) + 1;
      }
      this.reticle.matrix.copy(matrix);
    }
    // Drawn only while looking for a place, and only where the display could go.
    this.reticle.visible = this.placing && this.lastHit !== null;
    this.hook.reticleVisible = this.reticle.visible;
    if (this.placing) this.page.aiming(pose ? (this.lastHit ? 'ok' : 'refused') : 'none');
    if (this.pendingPlace) {
      // A tap where the display cannot go is refused now, not carried to a later surface.
      if (this.lastHit) this.placeNow(this.pendingPlace);
      else {
        this.hook.refusedTaps = (this.hook.refusedTaps || 0) + 1;
        this.page.aiming('refused-tap');
      }
      this.pendingPlace = null;
    }
    if (this.anchor && frame.trackedAnchors?.has(this.anchor)) {
      const pose = frame.getPose(this.anchor.anchorSpace, refSpace);
      if (pose) {
        this.placer.matrix.fromArray(pose.transform.matrix).multiply(this.anchorOffset);
        this.placer.matrixWorldNeedsUpdate = true;
      }
    }
  }

  // A tap asks for a placement; it happens in the next XR frame, because anchors can only
  // be created from a hit result while its frame is active (a DOM click has no frame).
  place(source) {
    const now = performance.now();
    // On real devices one tap can arrive both as an XR select and as a DOM click.
    if (source === 'tap' && now - this.lastSelect < DOM_TAP_DEDUP_MS) return;
    if (source === 'select') this.lastSelect = now;
    // Once placed, taps are for the display (and the overlay); "Move" starts placing again.
    if (this.session && this.placing) this.pendingPlace = source;
  }

  move() {
    if (!this.session) return;
    this.placing = true;
    this.hook.phase = 'moving';
    this.page.placing();
  }

  // Forget the placement: the display goes away until it is placed again.
  reset() {
    if (!this.session) return;
    this.anchor?.delete?.();
    this.anchor = null;
    this.hook.anchored = false;
    try {
      sessionStorage.removeItem(STORE_PREFIX + this.key);
    } catch {
      // nothing stored
    }
    this.placer.visible = false;
    this.placing = true;
    this.hook.placed = false;
    this.hook.phase = 'ar';
    this.page.placing();
  }

  // Put the display on the surface under the reticle, turned to face the viewer.
  placeNow(source) {
    if (!this.session || !this.lastHit) return;
    const hitMatrix = this.lastHit.matrix;
    const position = new THREE.Vector3().setFromMatrixPosition(hitMatrix);
    const camera = this.renderer.xr.getCamera();
    const eye = new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld);
    const yaw = Math.atan2(eye.x - position.x, eye.z - position.z);
    // Scale 1: scene units are metres, so the display stands at its real size.
    const placed = new THREE.Matrix4().compose(position,
      new THREE.Quaternion().setFromAxisAngle(new THREE.Vector3(0, 1, 0), yaw),
      new THREE.Vector3(1, 1, 1));
    this.setPlacement(placed);
    this.hook.placedBy = source;
    try {
      sessionStorage.setItem(STORE_PREFIX + this.key, JSON.stringify(placed.toArray()));
    } catch {
      // Storage can be unavailable (private mode); placement then lasts for this session.
    }
    this.anchorAt(this.lastHit.result, hitMatrix, placed);
  }

  setPlacement(matrix) {
    this.placer.matrix.copy(matrix);
    this.placer.matrixWorldNeedsUpdate = true;
    this.placer.visible = true;
    this.placing = false;
    this.reticle.visible = false;
    this.hook.placed = true;
    this.hook.phase = 'placed';
    this.hook.placedScale = new THREE.Vector3().setFromMatrixScale(matrix).toArray();
    this.page.placed();
  }

  anchorAt(hitResult, hitMatrix, placed) {
    if (typeof hitResult.createAnchor !== 'function') return;
    this.anchor?.delete?.();
    this.anchor = null;
    hitResult.createAnchor().then((anchor) => {
      if (!this.session) {
        anchor.delete?.();
        return;
      }
      this.anchor = anchor;
      // The anchor sits at the hit pose; keep the display's offset (its yaw) relative to it.
      this.anchorOffset.copy(hitMatrix).invert().multiply(placed);
      this.hook.anchored = true;
    }, (err) => {
      this.hook.warnings.push(`anchor failed: ${err?.message || err}`);
    });
  }

  restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORE_PREFIX + this.key) || 'null');
    } catch {
      saved = null;
    }
    if (Array.isArray(saved) && saved.length === 16 && saved.every(Number.isFinite)) {
      this.setPlacement(new THREE.Matrix4().fromArray(saved));
      this.hook.restored = true;
    }
  }
}
