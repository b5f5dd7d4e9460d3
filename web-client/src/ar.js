// The immersive-ar session: hit-test reticle, tap to place, an anchor so the placement
// holds, dom-overlay for the text UI. The placement is remembered per display in
// sessionStorage, so re-entering AR in the same visit puts the display back.
import * as THREE from 'three';

const STORE_PREFIX = 'holobazaar:placement:';
const DOM_TAP_DEDUP_MS = 400;

export class ArSession {
  constructor({ renderer, scene, placer, page, hook, key, onEnd }) {
    Object.assign(this, { renderer, scene, placer, page, hook, key, onEnd });
    this.session = null;
    this.hitSource = null;
    this.lastHit = null;
    this.anchor = null;
    this.anchorOffset = new THREE.Matrix4(); // display pose relative to the anchor
    this.lastSelect = 0;
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
    });
    this.placer.matrixAutoUpdate = false;
    this.placer.visible = false;
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
    this.hook.placed = false;
    this.page.exitAr();
    this.onEnd();
  }

  onFrame(frame) {
    const refSpace = this.renderer.xr.getReferenceSpace();
    if (!refSpace || !this.hitSource) return;
    const hits = frame.getHitTestResults(this.hitSource);
    if (hits.length) {
      const pose = hits[0].getPose(refSpace);
      if (pose) {
        this.lastHit = { result: hits[0], matrix: new THREE.Matrix4().fromArray(pose.transform.matrix) };
        this.reticle.matrix.copy(this.lastHit.matrix);
        this.reticle.visible = true;
        this.hook.hitFrames += 1;
        this.hook.lastHit = pose.transform.position
          ? [pose.transform.position.x, pose.transform.position.y, pose.transform.position.z]
          : null;
      }
    } else {
      this.reticle.visible = false;
      this.lastHit = null;
    }
    if (this.pendingPlace && this.lastHit) {
      this.placeNow(this.pendingPlace);
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
    if (this.session) this.pendingPlace = source;
  }

  // Put the display on the surface under the reticle, turned to face the viewer.
  placeNow(source) {
    if (!this.session || !this.lastHit) return;
    const hitMatrix = this.lastHit.matrix;
    const position = new THREE.Vector3().setFromMatrixPosition(hitMatrix);
    const camera = this.renderer.xr.getCamera();
    const eye = new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld);
    const yaw = Math.atan2(eye.x - position.x, eye.z - position.z);
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
    this.hook.placed = true;
    this.hook.phase = 'placed';
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
