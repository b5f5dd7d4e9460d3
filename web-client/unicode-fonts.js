// Build step (vite plugin): the fallback fonts troika-three-text uses for characters our
// main font (Noto Sans latin) lacks, served from our own build instead of the CDN troika's
// unicode-font-resolver would fetch them from at run time.
//
// The resolver reads three kinds of files under one base URL (troika's `unicodeFontsURL`):
//   codepoint-index/plane<P>/<start>-<end>.json  which fonts cover each 256-codepoint block
//   font-meta/<id>.json                          a font's ranges and weights
//   font-files/<id>/sans-serif.normal.400.woff   the font itself
// We write them from @fontsource packages (Noto Sans's other subsets, Noto Sans Arabic,
// Noto Sans SC, Noto Emoji): each @font-face of the package's 400.css is one font, covering
// its declared unicode-range. A block nobody covers still gets an (empty) index file: a
// missing file would make the resolver retry on its CDN.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

// In order of preference when two fonts cover a codepoint. Emoji before Arabic and CJK:
// Noto Sans SC declares emoji ranges it draws no colour-free glyphs for, and Noto Sans
// Arabic's `symbols` subset declares most of the emoji blocks with few glyphs (U+1F44D 👍
// came out as an empty box).
const PACKAGES = ['noto-sans', 'noto-emoji', 'noto-sans-arabic', 'noto-sans-sc'];
// Planes with assigned characters the index covers; the client maps others to U+FFFD
// (fonts.js), so the resolver never asks for a block outside these.
export const PLANES = [0, 1, 2, 3, 14];
const SCHEMA = 1;

function parseRanges(text) {
  return text.split(',').map((part) => part.trim().replace(/^U\+/i, '')).filter(Boolean)
    .map((part) => {
      const [a, b] = part.split('-').map((h) => parseInt(h, 16));
      return [a, b ?? a];
    });
}

// The @font-face rules of one package's regular weight: [{id, woff, ranges, rangeText}].
function faces(pkgDir, pkg) {
  const css = readFileSync(join(pkgDir(`@fontsource/${pkg}`), '400.css'), 'utf8');
  const out = [];
  for (const block of css.split('@font-face').slice(1)) {
    const woff = /url\(\.\/files\/([^)]+?-400-normal\.woff)\)/.exec(block);
    const range = /unicode-range:\s*([^;]+);/.exec(block);
    if (!woff || !range) continue;
    const id = woff[1].replace(/-400-normal\.woff$/, '');
    out.push({ id, file: join(pkgDir(`@fontsource/${pkg}`), 'files', woff[1]),
      rangeText: range[1].replace(/\s+/g, ''), ranges: parseRanges(range[1]) });
  }
  return out;
}

// The resolver's bit set of one block: 6 bits a character, offset by 48 ('0').
function blockBits(ranges, start) {
  const bits = new Array(43).fill(0);
  let any = false;
  for (const [a, b] of ranges) {
    for (let cp = Math.max(a, start); cp <= Math.min(b, start + 255); cp += 1) {
      const r = cp - start;
      bits[Math.floor(r / 6)] |= 1 << (r % 6);
      any = true;
    }
  }
  return any ? bits.map((v) => String.fromCharCode(48 + v)).join('') : null;
}

export function unicodeFonts({ pkgDir, version, mainFont }) {
  const all = PACKAGES.flatMap((pkg) => faces(pkgDir, pkg))
    .filter((f) => f.id !== mainFont); // the main font is tried first anyway
  const stamp = createHash('sha256')
    .update(PACKAGES.map((p) => `${p}@${version(`@fontsource/${p}`)}`).join(',')).digest('hex')
    .slice(0, 10);
  const dir = `vendor/unicode-fonts-${stamp}`;
  return {
    dir,
    plugin: {
      name: 'holobazaar-unicode-fonts',
      generateBundle() {
        const emit = (fileName, source) => this.emitFile({ type: 'asset', fileName: `${dir}/${fileName}`, source });
        const meta = (id, rangeText) => JSON.stringify([SCHEMA,
          { id, typeforms: { 'sans-serif': { normal: [400] } }, ranges: rangeText }]);
        for (const f of all) {
          emit(`font-meta/${f.id}.json`, meta(f.id, f.rangeText));
          emit(`font-files/${f.id}/sans-serif.normal.400.woff`, readFileSync(f.file));
        }
        // What the resolver falls back to for a character no font covers ("latin").
        const latin = faces(pkgDir, 'noto-sans').find((f) => f.id === mainFont);
        emit('font-meta/latin.json', meta('latin', latin.rangeText));
        emit('font-files/latin/sans-serif.normal.400.woff', readFileSync(latin.file));
        for (const plane of PLANES) {
          for (let start = plane << 16; start < (plane + 1) << 16; start += 256) {
            const fonts = {};
            for (const f of all) {
              const bits = blockBits(f.ranges, start);
              if (bits) fonts[f.id] = bits;
            }
            const name = `${start.toString(16)}-${(start + 255).toString(16)}`;
            emit(`codepoint-index/plane${plane}/${name}.json`, JSON.stringify([SCHEMA, { '': fonts }]));
          }
        }
      },
    },
  };
}
