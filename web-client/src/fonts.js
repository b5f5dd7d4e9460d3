// The fonts troika-three-text draws with, all served by our build (never a CDN at run
// time): Noto Sans latin first, and for characters it lacks (Cyrillic, Greek, Arabic, CJK,
// emoji...) the fallback fonts vite.config.js writes from @fontsource packages
// (unicode-fonts.js), found by troika's unicode-font-resolver under `unicodeFontsURL`.
import { configureTextBuilder } from 'troika-three-text';
import fontUrl from '@fontsource/noto-sans/files/noto-sans-latin-400-normal.woff?url';
import { shapeArabic } from './arabic.js';

/* global __UNICODE_FONTS_DIR__ */
configureTextBuilder({
  defaultFontURL: new URL(fontUrl, location.href).href,
  // Absolute: troika resolves fonts in a web worker.
  unicodeFontsURL: new URL(`${import.meta.env.BASE_URL}${__UNICODE_FONTS_DIR__}`, location.href).href,
});

export { fontUrl };

// Codepoints outside the planes the fallback index covers (unicode-fonts.js PLANES: 0-3
// and 14) are unassigned or private use: drawn as U+FFFD, so the resolver is never sent
// looking for them (it would retry on its CDN). Arabic letters are given their joined
// forms (arabic.js: troika does not join them with our Arabic font).
const OUTSIDE = /[\u{40000}-\u{DFFFF}\u{F0000}-\u{10FFFF}]/gu;
export function drawable(text) {
  return shapeArabic(text.replace(OUTSIDE, '\uFFFD'));
}
