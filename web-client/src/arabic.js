// Arabic letters in their joined forms, for troika-three-text. Troika picks a letter's
// contextual form through the font's GSUB init/medi/fina lookups, but its bundled Typr
// does not apply multiple substitutions (lookup type 2), which is how Noto Sans Arabic
// writes them (a dotted letter's form is a dotless form plus its dots): every letter was
// drawn isolated, a word as a row of loose letters that reads as if reversed. Instead the
// text troika draws carries the forms themselves, as Arabic Presentation Forms-B
// (U+FE70-FEFC, in the font's subset), chosen by the Unicode joining rules. Troika's
// bidi still orders the line right to left (presentation forms are Arabic letters too).
// Letters outside the basic Arabic block (Persian, Urdu...) are left as they are.

// U+0621-064A: how many presentation forms each letter has (isolated, final, initial,
// medial, in that order, from U+FE80 on): 1 non-joining, 2 right-joining, 4 dual-joining.
const COUNTS = {
  0x621: 1, 0x622: 2, 0x623: 2, 0x624: 2, 0x625: 2, 0x626: 4, 0x627: 2, 0x628: 4, 0x629: 2,
  0x62a: 4, 0x62b: 4, 0x62c: 4, 0x62d: 4, 0x62e: 4, 0x62f: 2, 0x630: 2, 0x631: 2, 0x632: 2,
  0x633: 4, 0x634: 4, 0x635: 4, 0x636: 4, 0x637: 4, 0x638: 4, 0x639: 4, 0x63a: 4,
  0x641: 4, 0x642: 4, 0x643: 4, 0x644: 4, 0x645: 4, 0x646: 4, 0x647: 4, 0x648: 2, 0x649: 2,
  0x64a: 4,
};
const FIRST = new Map(); // letter -> its isolated form
let next = 0xfe80;
for (const [cp, n] of Object.entries(COUNTS)) {
  FIRST.set(Number(cp), next);
  next += n;
}
const TATWEEL = 0x640;
const LAM = 0x644;
// Lam with a following alef is one ligature (isolated, final): alef with madda, with hamza
// above, with hamza below, plain.
const LAM_ALEF = { 0x622: 0xfef5, 0x623: 0xfef7, 0x625: 0xfef9, 0x627: 0xfefb };
const ARABIC = /[\u0621-\u064a]/;

// Harakat and other marks: they sit on a letter and do not break its joining.
function transparent(cp) {
  return (cp >= 0x610 && cp <= 0x61a) || (cp >= 0x64b && cp <= 0x65f) || cp === 0x670
    || (cp >= 0x6d6 && cp <= 0x6ed);
}
const joinsForward = (cp) => COUNTS[cp] === 4 || cp === TATWEEL;
const joinsBackward = (cp) => COUNTS[cp] >= 2 || cp === TATWEEL;

export function shapeArabic(text) {
  if (!ARABIC.test(text)) return text;
  const cps = Array.from(text, (c) => c.codePointAt(0));
  // The nearest letter before / after index i, skipping marks (null at a word's edge).
  const neighbour = (i, step) => {
    for (let j = i + step; j >= 0 && j < cps.length; j += step) {
      if (!transparent(cps[j])) return j;
    }
    return null;
  };
  const out = [];
  for (let i = 0; i < cps.length; i += 1) {
    const cp = cps[i];
    if (!FIRST.has(cp)) {
      out.push(cp);
      continue;
    }
    const p = neighbour(i, -1);
    const joinsPrev = p !== null && joinsForward(cps[p]);
    const n = neighbour(i, 1);
    if (cp === LAM && n !== null && LAM_ALEF[cps[n]]) {
      out.push(LAM_ALEF[cps[n]] + (joinsPrev ? 1 : 0));
      for (let j = i + 1; j < n; j += 1) out.push(cps[j]); // marks on the lam
      i = n; // the alef is in the ligature
      continue;
    }
    const joinsNext = COUNTS[cp] === 4 && n !== null && joinsBackward(cps[n]);
    const form = COUNTS[cp] === 1 ? 0 : (joinsPrev ? 1 : 0) + (joinsNext ? 2 : 0);
    // form: 0 isolated, 1 final, 2 initial, 3 medial
    out.push(FIRST.get(cp) + form);
  }
  return String.fromCodePoint(...out);
}
