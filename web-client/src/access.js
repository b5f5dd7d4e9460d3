// The visitor's view settings (docs/client.md, "Accessibility"): reduced motion (the
// system's `prefers-reduced-motion`, or the page's switch) and larger text (page text and
// the 3D view's text). Remembered in localStorage; the switches are in display.html.
const KEY = 'holobazaar.view-settings';
export const LARGE_TEXT_SCALE = 1.4;

function load(storage) {
  try {
    const saved = JSON.parse(storage.getItem(KEY) || '{}');
    return { reducedMotion: saved.reducedMotion === true, largeText: saved.largeText === true };
  } catch {
    return { reducedMotion: false, largeText: false };
  }
}

export class ViewSettings {
  constructor({ storage = globalThis.localStorage, win = globalThis } = {}) {
    this.storage = storage;
    this.chosen = load(storage);
    this.media = win.matchMedia?.('(prefers-reduced-motion: reduce)') ?? null;
    this.listeners = new Set();
    this.media?.addEventListener?.('change', () => this.changed());
  }

  /** Reduced motion: the system asks for it, or the visitor switched it on here. */
  get reducedMotion() {
    return this.chosen.reducedMotion || Boolean(this.media?.matches);
  }

  get largeText() {
    return this.chosen.largeText;
  }

  get textScale() {
    return this.largeText ? LARGE_TEXT_SCALE : 1;
  }

  set(name, value) {
    this.chosen = { ...this.chosen, [name]: Boolean(value) };
    try {
      this.storage.setItem(KEY, JSON.stringify(this.chosen));
    } catch {
      // private mode: the setting lasts as long as the page
    }
    this.changed();
  }

  onChange(fn) {
    this.listeners.add(fn);
    fn(this);
  }

  changed() {
    document.documentElement.classList.toggle('reduced-motion', this.reducedMotion);
    document.documentElement.classList.toggle('large-text', this.largeText);
    for (const fn of this.listeners) fn(this);
  }

  /** Wires the page's switches (checkboxes #setting-reduced-motion, #setting-large-text). */
  attach(doc = document) {
    const boxes = { reducedMotion: doc.getElementById('setting-reduced-motion'),
      largeText: doc.getElementById('setting-large-text') };
    for (const [name, box] of Object.entries(boxes)) {
      if (!box) continue;
      box.checked = name === 'reducedMotion' ? this.reducedMotion : this.largeText;
      box.addEventListener('change', () => this.set(name, box.checked));
    }
    // The system's reduced motion cannot be switched off here: the box shows it, locked.
    this.onChange(() => {
      const box = boxes.reducedMotion;
      if (!box) return;
      box.checked = this.reducedMotion;
      box.disabled = Boolean(this.media?.matches);
    });
    doc.getElementById('view-settings')?.removeAttribute('hidden');
  }
}
