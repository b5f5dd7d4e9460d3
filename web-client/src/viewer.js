// How the inline 3D view shares the page with everything else, after model-viewer: the page
// keeps its scroll (a one-finger vertical swipe and the mouse wheel scroll it; turning the
// display takes a sideways drag or two fingers, the wheel zooms only once the view has
// focus), the keyboard can turn it (arrow keys, +/- zoom, Home resets), a reset button puts
// the camera back, a hint says so on first load, and reduced motion switches off easing.
import { TOUCH } from 'three';
import { t } from './i18n.js';

const KEY_STEP = Math.PI / 24; // 7.5° per arrow key press
const HINT_MS = 6000;
const HINT_SEEN = 'holobazaar:viewer-hint-seen';

export function reducedMotion(win = globalThis) {
  return Boolean(win.matchMedia?.('(prefers-reduced-motion: reduce)')?.matches);
}

/**
 * @param {object} o
 * @param {HTMLCanvasElement} o.canvas the renderer's canvas
 * @param {import('three/addons/controls/OrbitControls.js').OrbitControls} o.controls
 * @param {() => void} o.reset puts the camera at its initial framing
 * @param {string} o.label what the view shows (its accessible name)
 * @param {object} o.hook the test hook (window.__holo): `viewer` reports what happened
 */
export function attachViewer({ canvas, controls, reset, label, hook, settings = null }) {
  const state = { wheelZooms: 0, keyTurns: 0, resets: 0, hint: false, reducedMotion: false };
  hook.viewer = state;
  // For tests: where the camera is (position then orbit target).
  hook.cameraPose = () => [...controls.object.position.toArray(), ...controls.target.toArray()];
  const container = canvas.parentElement;

  // Vertical pans belong to the page: the browser scrolls and cancels our pointer, and only
  // sideways drags (or two fingers: turn and pinch) reach the controls.
  canvas.style.touchAction = 'pan-y';
  controls.touches = { ONE: TOUCH.ROTATE, TWO: TOUCH.DOLLY_ROTATE };
  controls.enablePan = false; // panning moves the display out of its frame; nothing to gain

  // The browser only takes a swipe over after a few pixels of movement: until a single
  // finger has shown its direction, its moves are kept from the controls, and a vertical one
  // never reaches them (so a scroll does not also tilt the view).
  const touches = new Map(); // pointerId -> {x, y, mode: null | 'turn' | 'scroll'}
  container.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType === 'touch') touches.set(ev.pointerId, { x: ev.clientX, y: ev.clientY, mode: null });
  }, { capture: true });
  container.addEventListener('pointermove', (ev) => {
    const t = touches.get(ev.pointerId);
    if (!t || touches.size > 1) return; // two fingers: turn and pinch
    if (t.mode === null) {
      const dx = Math.abs(ev.clientX - t.x);
      const dy = Math.abs(ev.clientY - t.y);
      if (Math.max(dx, dy) >= 8) t.mode = dx > dy ? 'turn' : 'scroll';
    }
    if (t.mode !== 'turn') ev.stopPropagation();
  }, { capture: true });
  const release = (ev) => touches.delete(ev.pointerId);
  for (const type of ['pointerup', 'pointercancel']) {
    container.addEventListener(type, release, { capture: true });
  }

  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-roledescription', '3D view');
  setLabel(label);

  // The wheel scrolls the page until the view has focus (a click or Tab); stopping the event
  // before it reaches the controls leaves the browser's default scroll in place.
  container.addEventListener('wheel', (ev) => {
    if (document.activeElement !== canvas) ev.stopPropagation();
    else state.wheelZooms += 1;
  }, { capture: true, passive: true });

  canvas.addEventListener('keydown', (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const turns = {
      ArrowLeft: () => controls.rotateLeft(KEY_STEP),
      ArrowRight: () => controls.rotateLeft(-KEY_STEP),
      ArrowUp: () => controls.rotateUp(KEY_STEP),
      ArrowDown: () => controls.rotateUp(-KEY_STEP),
      '+': () => controls.dollyIn?.(1.15),
      '=': () => controls.dollyIn?.(1.15),
      '-': () => controls.dollyOut?.(1.15),
      Home: () => doReset(),
    };
    const turn = turns[ev.key];
    if (!turn) return;
    ev.preventDefault(); // the page must not scroll while the view takes the arrow keys
    turn();
    controls.update();
    state.keyTurns += 1;
    dismissHint();
  });

  const button = document.createElement('button');
  button.type = 'button';
  button.id = 'reset-view';
  button.textContent = t('Reset view');
  button.dataset.i18n = 'Reset view'; // re-labelled by a live language switch
  button.addEventListener('click', () => doReset());
  container.parentElement.append(button);

  function doReset() {
    // Spend the turn still easing out (damping) first, or it carries on after the reset
    // and the view settles beside its initial framing.
    const damping = controls.enableDamping;
    controls.enableDamping = false;
    controls.update();
    controls.enableDamping = damping;
    reset();
    state.resets += 1;
  }

  function setLabel(text) {
    canvas.setAttribute('aria-label', t('%(view)s. Drag sideways or use the arrow keys to turn it; the price list follows below.', { view: text }));
  }

  // Reduced motion (the system's, or the page's switch: access.js): no easing after a drag
  // (the camera stops where the finger stops), never any auto-rotation.
  const applyMotion = () => {
    state.reducedMotion = settings ? settings.reducedMotion : reducedMotion();
    controls.enableDamping = !state.reducedMotion;
    controls.autoRotate = false;
    document.body.classList.toggle('reduced-motion', state.reducedMotion);
  };
  if (settings) settings.onChange(applyMotion);
  else {
    applyMotion();
    globalThis.matchMedia?.('(prefers-reduced-motion: reduce)')?.addEventListener?.('change', applyMotion);
  }

  // The hint: once per visit, until the first interaction or a few seconds have passed.
  let hint = null;
  let seen = false;
  try {
    seen = sessionStorage.getItem(HINT_SEEN) === '1';
  } catch {
    seen = false;
  }
  if (!seen) {
    hint = document.createElement('p');
    hint.id = 'view-hint';
    hint.setAttribute('aria-hidden', 'true'); // the canvas's label says the same to screen readers
    hint.textContent = matchMedia('(pointer: coarse)').matches
      ? t('Drag sideways to turn · swipe up to read on')
      : t('Drag to turn · click, then scroll to zoom');
    container.parentElement.append(hint);
    state.hint = true;
    canvas.addEventListener('pointerdown', dismissHint, { once: true });
    try {
      sessionStorage.setItem(HINT_SEEN, '1');
    } catch {
      // Private mode: the hint shows on every load, which is harmless.
    }
  }
  function dismissHint() {
    if (!hint) return;
    hint.remove();
    hint = null;
    state.hint = false;
  }

  // The hint's few seconds count from when the view has settled (models in, laid out),
  // not from page start: a slow phone would otherwise hide it before anything is shown.
  const startHintClock = () => {
    if (hint) setTimeout(dismissHint, HINT_MS);
  };
  return { setLabel, dismissHint, startHintClock };
}
