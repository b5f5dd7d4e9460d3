// Device class (sent in hello, docs/protocol.md) and the choice of a model's level of detail
// (docs/assets.md). No three.js here: the stream client imports it too.

/** The device class this browser reports in `hello` and picks model levels of detail by:
 * phone (touch, small screen), headset (immersive-ar/vr capable without touch) or desktop. */
export function deviceClass(nav = globalThis.navigator, win = globalThis) {
  const ua = nav?.userAgent || '';
  if (/OculusBrowser|Quest|Pico|Vision/i.test(ua)) return 'headset';
  const coarse = win?.matchMedia?.('(pointer: coarse)')?.matches;
  if (coarse || /Android|iPhone|iPad|Mobile/i.test(ua)) return 'phone';
  return 'desktop';
}

let webpSupport = null;
export function supportsWebp() {
  if (webpSupport === null) {
    try {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 1;
      webpSupport = canvas.toDataURL('image/webp').startsWith('data:image/webp');
    } catch {
      webpSupport = true;
    }
  }
  return webpSupport;
}

/** Which file of a model node to load (docs/assets.md): a processed asset lists its levels
 * of detail, most detailed first; phones take the second level (about a quarter of the
 * triangles) when there is one, headsets and desktops the first. Without WebP decoding,
 * the `fallback` file (PNG/JPEG textures). Plain files have only `src`. */
export function pickModelSrc(data, device = 'desktop', webp = true, net = slowNetwork()) {
  const lods = Array.isArray(data.lods) ? data.lods.filter((l) => typeof l?.src === 'string') : [];
  if (!webp && typeof data.fallback === 'string') return data.fallback;
  if (!lods.length) return data.src;
  // A slow connection or Data Saver: the lightest level, whatever the device.
  if (net) return lods[lods.length - 1].src;
  const index = device === 'phone' ? Math.min(1, lods.length - 1) : 0;
  return lods[index].src;
}

/** Whether the connection asks for the lightest models: the Network Information API's
 * `saveData` (Data Saver), or an `effectiveType` of 2g or slower (where the browser has the
 * API). Not 3g: Chrome's estimate says 3g for a busy desktop on a good line too, and a
 * phone already takes the lighter level. */
export function slowNetwork(nav = globalThis.navigator) {
  const c = nav?.connection;
  if (!c) return false;
  return c.saveData === true || ['slow-2g', '2g'].includes(c.effectiveType);
}
