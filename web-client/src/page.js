// The HTML side of the display page: the accessible fallback (kept live), loading
// progress, the AR button and the dom-overlay UI. Text is only ever set with textContent:
// state text is plain text (docs/protocol.md) and is never parsed as HTML.
import { plainText } from './text.js';
import { formatMoney, formatNumber, setLanguage, t } from './i18n.js';

const STOCK = { in_stock: 'In stock', low: 'Low stock', sold_out: 'Sold out' };
const PRICE_AT_STALL = 'price at the stall';
const UNVERIFIED_HINT = "The stall's stock system has not reported for a while: please check at the stall";
// Said once per change by the price list's live region (screen readers, politely).
const ANNOUNCE = {
  price: (name, price, unit) => (unit ? t('%(name)s: now %(price)s %(unit)s', { name, price, unit })
    : t('%(name)s: now %(price)s', { name, price })),
  stock: (name, stock) => t('%(name)s: %(stock)s', { name, stock }),
};
const LIVE = () => t('Live');
// Model downloads smaller than this finish before a progress bar would help.
const PROGRESS_MIN_BYTES = 200 * 1024;

const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

// The page's language's way (web/i18n.py price_text, which rendered the fallback, does the
// same with Babel): "€ 6,50" in Dutch. Prices travel as decimal strings ("6.50").
export function money(price, currency) {
  return formatMoney(price, currency);
}

// templates.price_label: the money, or the notice that replaces a held (or missing) price.
export function priceText(item) {
  if (typeof item.price === 'string' && item.price !== '') return money(item.price, item.currency);
  const notice = typeof item.notice === 'string' && item.notice ? item.notice : PRICE_AT_STALL;
  return capitalised(t(notice));
}

const EACH_UNITS = new Set(['each', 'piece', 'pc', 'pcs', 'item', 'unit', 'ea']);

// pages.unit_text: "per bunch", "each" (never "per each"); nothing without a price.
export function unitText(item) {
  const priced = typeof item.price === 'string' && item.price !== '';
  const unit = typeof item.unit === 'string' ? item.unit.trim() : '';
  if (!priced || !unit) return '';
  if (EACH_UNITS.has(unit.toLowerCase())) return t('each');
  return unit.toLowerCase().startsWith('per ') ? unit : t('per %(unit)s', { unit });
}

// templates.stock_text
export function stockText(item) {
  const status = typeof item.status === 'string' ? item.status : '';
  const label = STOCK[status] ? t(STOCK[status]) : capitalised(status.replaceAll('_', ' '));
  return Number.isInteger(item.stock) && status !== 'sold_out'
    ? `${label} (${formatNumber(item.stock)})` : label;
}

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

export class Page {
  constructor(boot) {
    this.boot = boot;
    setLanguage(boot.i18n); // the page's language: t() and the price formats follow it
    this.products = document.getElementById('products');
    this.progressEl = document.getElementById('progress');
    this.button = document.getElementById('enter-ar');
    this.overlay = document.getElementById('xr-overlay');
    this.status = document.getElementById('live-status');
    this.announcer = document.getElementById('price-announcer');
    this.heard = null; // sku -> {price, stock}: what the live region last had to say
    this.announced = []; // for tests: every announcement made
  }

  // Keep the fallback list equal to the state's items (it is what screen readers read).
  render(state) {
    const title = plainText(state.display?.title);
    if (title) document.title = `${title} · Holobazaar`;
    const heading = document.getElementById('display-title');
    if (heading && title && heading.textContent !== title) heading.textContent = title;
    const about = document.getElementById('display-description');
    const description = plainText(state.display?.description);
    if (about && about.textContent !== description) {
      about.textContent = description;
      about.hidden = !description;
    }
    const xrTitle = document.getElementById('xr-title');
    if (xrTitle) xrTitle.textContent = title;
    if (this.products) this.renderItems(state.items || {});
    this.renderStory(state);
  }

  renderItems(items) {
    const seen = new Set();
    for (const [sku, item] of Object.entries(items)) {
      seen.add(sku);
      let li = [...this.products.children].find((c) => c.dataset.sku === sku);
      if (!li) {
        li = el('li', { 'data-sku': sku });
        li.append(el('span', { class: 'name' }), ' ', el('span', { class: 'price' }), ' ',
          el('span', { class: 'unit' }), ' ', el('span', { class: 'stock' }));
        this.products.append(li);
      }
      // Item names and units come straight from the inventory (not escaped): textContent.
      const set = (cls, text) => {
        const span = li.querySelector(`.${cls}`);
        if (span && span.textContent !== text) span.textContent = text;
      };
      // Every state renders (display.html does the same): a held price reads "Price at the
      // stall" and no unit, a stale feed adds "Unverified".
      const priced = typeof item.price === 'string' && item.price !== '';
      li.classList.toggle('no-price', !priced);
      if (li.dataset.status !== String(item.status ?? '')) li.dataset.status = String(item.status ?? '');
      set('name', typeof item.name === 'string' && item.name ? item.name : sku);
      set('price', priceText(item));
      set('unit', unitText(item));
      set('stock', stockText(item));
      let flag = li.querySelector('.unverified');
      if (item.verified === false && !flag) {
        flag = el('span', { class: 'unverified', title: t(UNVERIFIED_HINT) }, t('Unverified'));
        li.append(flag);
      } else if (item.verified !== false && flag) {
        flag.remove();
      }
    }
    for (const li of [...this.products.children]) {
      if (li.dataset.sku && !seen.has(li.dataset.sku)) li.remove();
    }
    this.announce(items);
    const note = document.getElementById('unverified-note');
    if (note) note.hidden = !Object.values(items).some((item) => item.verified === false);
  }

  // Price and stock changes, said once each by the live region (the list itself is not
  // live: a re-render of the same prices, a resync, says nothing).
  announce(items) {
    const now = new Map();
    for (const [sku, item] of Object.entries(items)) {
      now.set(sku, { name: typeof item.name === 'string' && item.name ? item.name : sku,
        price: priceText(item), unit: unitText(item), stock: stockText(item) });
    }
    const before = this.heard;
    this.heard = now;
    if (!before || !this.announcer) return; // the first render is the page, not news
    const lines = [];
    for (const [sku, n] of now) {
      const was = before.get(sku);
      if (!was) continue;
      if (was.price !== n.price) lines.push(ANNOUNCE.price(n.name, n.price, n.unit));
      else if (was.stock !== n.stock) lines.push(ANNOUNCE.stock(n.name, n.stock));
    }
    if (!lines.length) return;
    const text = lines.join('. ');
    this.announced.push(text);
    this.announcer.textContent = text;
  }

  // The AR overlay's story: the grower's published story (bindings.stories, plain text),
  // else the first panel, else the farm description.
  renderStory(state) {
    const panels = Object.values(state.nodes || {})
      .filter((n) => n.kind === 'panel' && n.visible !== false)
      .sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    const heading = document.getElementById('xr-story-title');
    const body = document.getElementById('xr-story-body');
    if (!heading || !body) return;
    const told = state.bindings?.stories?.story;
    if (told) {
      heading.textContent = told.title;
      body.textContent = told.excerpt;
      return;
    }
    const first = panels[0];
    heading.textContent = first ? plainText(first.title) : (state.farm?.name ?? '');
    body.textContent = first ? plainText(first.body) : (state.farm?.description ?? '');
  }

  progress({ models, done, bytes, total }) {
    if (!this.progressEl) return;
    // Only for downloads that take a while (over ~200 KB, or of unknown size past it).
    const busy = done < models && Math.max(total, bytes) > PROGRESS_MIN_BYTES;
    this.progressEl.hidden = !busy;
    if (!busy) return;
    const pct = total > 0 ? Math.round((100 * bytes) / total) : null;
    const bar = this.progressEl.querySelector('progress');
    if (bar) {
      if (pct === null) bar.removeAttribute('value');
      else bar.value = pct;
    }
    const label = this.progressEl.querySelector('span');
    if (label) {
      label.textContent = t('Loading models %(done)s/%(total)s', { done, total: models })
        + (pct === null ? '' : ` (${formatNumber(pct)}%)`);
    }
  }

  connection(kind) {
    // Disconnected: the offline banner says so, with the time (offline.js), not this.
    if (this.status) this.status.textContent = kind === 'connected' ? LIVE() : '';
  }

  showArButton(onClick) {
    if (!this.button) return;
    this.button.hidden = false;
    this.button.addEventListener('click', onClick);
  }

  overlayRoot() {
    return this.overlay;
  }

  // The AR overlay is one line by default (hint or title, Move, Reset, More, Close); "More"
  // opens the story and the reaction buttons.
  enterAr({ onExit, onTap, onMove, onReset }) {
    this.overlay.hidden = false;
    document.body.classList.add('in-ar');
    this.setDetails(false);
    this.placing();
    // Taps on overlay buttons must not also place the display (dom-overlay sends them as
    // XR select events unless beforexrselect is cancelled).
    for (const b of this.overlay.querySelectorAll('button, a, article, input')) {
      b.addEventListener('beforexrselect', (ev) => ev.preventDefault());
    }
    this.cleanup?.();
    const onClick = (ev) => {
      if (ev.target.closest('button, a, article, input, .bar, #xr-details')) return;
      onTap();
    };
    const buttons = {
      'exit-ar': onExit,
      'xr-move': onMove,
      'xr-reset': onReset,
      'xr-more': () => this.setDetails(document.getElementById('xr-details')?.hidden ?? false),
    };
    const bound = [];
    for (const [id, fn] of Object.entries(buttons)) {
      const button = document.getElementById(id);
      if (!button || !fn) continue;
      const handler = () => fn();
      button.addEventListener('click', handler);
      bound.push([button, handler]);
    }
    this.overlay.addEventListener('click', onClick);
    this.cleanup = () => {
      this.overlay.removeEventListener('click', onClick);
      for (const [button, handler] of bound) button.removeEventListener('click', handler);
    };
  }

  setDetails(open) {
    const details = document.getElementById('xr-details');
    const more = document.getElementById('xr-more');
    if (!details || !more) return;
    details.hidden = !open;
    more.setAttribute('aria-expanded', String(open));
    more.textContent = open ? t('Less') : t('More');
  }

  xrText(text) {
    const hint = document.getElementById('xr-hint');
    if (hint && hint.textContent !== text) hint.textContent = text;
  }

  // Looking for a counter: the hint says what the reticle sees.
  placing() {
    this.aimState = null;
    this.aiming('none');
    for (const id of ['xr-move', 'xr-reset']) {
      const b = document.getElementById(id);
      if (b) b.hidden = true;
    }
  }

  aiming(state) {
    if (state === 'refused-tap') {
      this.xrText(t('Not a counter'));
      this.refusedUntil = performance.now() + 1500;
      return;
    }
    if (this.refusedUntil && performance.now() < this.refusedUntil) return;
    if (state === this.aimState) return;
    this.aimState = state;
    // Short: the line also holds the buttons on a 390 px phone.
    this.xrText(state === 'ok' ? t('Tap to place')
      : state === 'refused' ? t('Aim at a table top') : t('Point at the counter'));
  }

  placed() {
    this.xrText(t('Placed'));
    for (const id of ['xr-move', 'xr-reset']) {
      const b = document.getElementById(id);
      if (b) b.hidden = false;
    }
  }

  exitAr() {
    this.cleanup?.();
    this.cleanup = null;
    this.overlay.hidden = true;
    document.body.classList.remove('in-ar');
  }
}
