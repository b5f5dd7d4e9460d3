// Phone AR without WebXR (docs/phones.md): iOS opens the display's USDZ in AR Quick Look
// through an <a rel="ar"> (with one <img> child, as Quick Look requires), Android without
// WebXR AR opens its GLB in Scene Viewer through an intent URL (as model-viewer does).
// The server renders both links (quicklook/handoff.py) and shows the one its User-Agent
// guess picks; here the browser's own features decide, and each link follows the state
// the stream brings (the file URL names the state hash, so a price change is a new file).
import { stateHash } from './hash.js';

const QUICK_LOOK_TAP = '_apple_ar_quicklook_button_tapped';
const NO_AR_FALLBACK = '#no-ar-fallback';

/** AR Quick Look is there (Safari on iOS/iPadOS): the check model-viewer makes. */
export function quickLookSupported(doc = globalThis.document) {
  const a = doc?.createElement?.('a');
  return Boolean(a?.relList?.supports?.('ar'));
}

/** Android, not a headset browser: Scene Viewer may be there (the Google app has it). */
export function androidPhone(ua = globalThis.navigator?.userAgent || '') {
  return /Android/i.test(ua) && !/OculusBrowser|Quest/i.test(ua);
}

/** Which handoff the page offers: none where WebXR AR runs (the live session is better). */
export function handoffMode({ webxrAr, quickLook, android, sceneViewerFailed = false }) {
  if (webxrAr) return null;
  if (quickLook) return 'quicklook';
  if (android && !sceneViewerFailed) return 'sceneviewer';
  return null;
}

export function attachHandoff({ boot, hook, webxrAr, currentState }) {
  const data = boot.handoff;
  if (!data) return null;
  const links = {
    quicklook: document.getElementById('ar-quicklook'),
    sceneviewer: document.getElementById('ar-sceneviewer'),
  };
  // Scene Viewer missing: the intent's fallback brings the page back with this mark.
  const sceneViewerFailed = location.hash === NO_AR_FALLBACK;
  if (sceneViewerFailed) history.replaceState(null, '', location.pathname + location.search);
  const mode = handoffMode({ webxrAr, quickLook: quickLookSupported(), android: androidPhone(),
    sceneViewerFailed });
  for (const [name, link] of Object.entries(links)) if (link) link.hidden = name !== mode;
  // Quick Look's banner button ("About this stall"): back on the page, at the stall's story.
  links.quicklook?.addEventListener('message', (event) => {
    if (event.data === QUICK_LOOK_TAP) document.getElementById('about')?.scrollIntoView();
  });
  let current = data.state;
  hook.handoff = { mode, state: current };
  // The state the page renders, in its language (each language's state has its own hash;
  // the server finds which of the display's channels holds it).
  let generation = 0;
  const handoff = {
    async update(state) {
      const mine = ++generation;
      const next = await stateHash(state);
      if (mine !== generation || next === current) return;
      for (const link of Object.values(links)) {
        if (link) link.setAttribute('href', link.getAttribute('href').replaceAll(current, next));
      }
      current = next;
      hook.handoff.state = next;
    },
  };
  if (currentState) handoff.update(currentState);
  return handoff;
}
