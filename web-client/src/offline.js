// Offline and poor network (docs/client.md, "Offline"): the last state of each channel kept
// in IndexedDB with its position and the server time it was current at, the "offline —
// prices as of 10:42" banner, and the service worker's registration.
//
// "As of" is always server time (the stream's clock, docs/protocol.md `welcome`/`pong`):
// a phone whose clock is hours off still says when the prices were last confirmed.

import { language, t } from './i18n.js';

// Every string a visitor reads, in one place (through the page's catalogue, i18n.js).
export const TEXT = {
  offlineAsOf: (time) => t('Offline — prices as of %(time)s', { time }),
  offline: () => t('Offline — prices may have changed'),
  bannerHint: () => t('Please check prices at the stall; this page updates when the network is back.'),
};

const DB_NAME = 'holobazaar';
const DB_VERSION = 1;
const STORE = 'snapshots';

function openDb() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error('no IndexedDB'));
      return;
    }
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) {
        req.result.createObjectStore(STORE, { keyPath: 'channel' });
      }
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let dbPromise = null;
function db() {
  dbPromise ||= openDb();
  return dbPromise;
}

function request(mode, fn) {
  return db().then((database) => new Promise((resolve, reject) => {
    const tx = database.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req?.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

function isSnapshot(v) {
  return v && typeof v === 'object' && typeof v.epoch === 'string'
    && Number.isInteger(v.offset) && v.state && typeof v.state === 'object'
    && Number.isFinite(v.asOf);
}

/** The newest of two snapshots of a channel: the same epoch by offset, else by as-of. */
export function newer(a, b) {
  if (!isSnapshot(a)) return isSnapshot(b) ? b : null;
  if (!isSnapshot(b)) return a;
  if (a.epoch === b.epoch && a.offset !== b.offset) return a.offset > b.offset ? a : b;
  return b.asOf > a.asOf ? b : a;
}

export async function loadSnapshot(channel) {
  try {
    const found = await request('readonly', (store) => store.get(channel));
    return isSnapshot(found) ? found : null;
  } catch {
    return null; // private mode or blocked storage: the page's own state is all there is
  }
}

/** Keeps the last state of a channel. Writes are coalesced: at most one in flight, the
 * latest wins. */
export class SnapshotKeeper {
  constructor(channel) {
    this.channel = channel;
    this.pending = null;
    this.writing = null;
    this.saved = 0;
  }

  // `channel`: the channel followed now (the language picker may have switched it).
  save({ channel = this.channel, epoch, offset, state, asOf }) {
    if (typeof epoch !== 'string' || !Number.isInteger(offset) || !state) return;
    this.pending = { channel, epoch, offset, state, asOf };
    if (!this.writing) this.writing = this.flush();
  }

  async flush() {
    while (this.pending) {
      const record = this.pending;
      this.pending = null;
      try {
        await request('readwrite', (store) => store.put(record));
        this.saved += 1;
      } catch {
        return; // no storage: offline reloads show the page's own state
      } finally {
        if (!this.pending) this.writing = null;
      }
    }
    this.writing = null;
  }
}

/** "10:42" in the market's timezone (the visitor stands in the market), in the page's
 * language; a bad timezone falls back to the device's. */
export function clockText(ms, timeZone, locale = language() || undefined) {
  const options = { hour: '2-digit', minute: '2-digit' };
  try {
    return new Intl.DateTimeFormat(locale, { ...options, timeZone }).format(ms);
  } catch {
    return new Intl.DateTimeFormat(locale, options).format(ms);
  }
}

/** The offline banner: unmistakable, at the top of the stage, with the as-of time. */
export class OfflineBanner {
  constructor({ timeZone }) {
    this.timeZone = timeZone;
    this.el = document.getElementById('offline-banner');
    this.shown = false;
    this.asOf = null;
  }

  show(asOf) {
    this.asOf = Number.isFinite(asOf) ? asOf : null;
    this.shown = true;
    document.body.classList.add('offline');
    if (!this.el) return;
    const text = this.asOf === null ? TEXT.offline()
      : TEXT.offlineAsOf(clockText(this.asOf, this.timeZone));
    const strong = this.el.querySelector('strong');
    const hint = this.el.querySelector('span');
    if (strong && strong.textContent !== text) strong.textContent = text;
    if (hint) hint.textContent = TEXT.bannerHint();
    this.el.hidden = false;
  }

  hide() {
    this.shown = false;
    document.body.classList.remove('offline');
    if (this.el) this.el.hidden = true;
  }
}

/** Registers /sw.js once the page has drawn (never before: the first visit's first frame
 * does not wait for it), then asks it to keep a fresh copy of this page. */
export async function registerServiceWorker({ hook, refresh = true } = {}) {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return null;
  // When registering began (ms since navigation): after the first frame, by design.
  if (hook) hook.serviceWorker = { registered: false, since: performance.now() };
  try {
    const { Workbox } = await import('workbox-window');
    const wb = new Workbox('/sw.js', { scope: '/' });
    const registration = await wb.register();
    if (hook) hook.serviceWorker = { ...hook.serviceWorker, registered: true };
    if (refresh) {
      const { active } = await navigator.serviceWorker.ready;
      active?.postMessage({ type: 'refresh-page', url: location.href });
      // What this visit loaded before the worker was there (the first visit): models,
      // images and fonts, copied into its caches (from the HTTP cache, mostly).
      const urls = performance.getEntriesByType('resource').map((e) => e.name)
        .filter((u) => u.startsWith(`${location.origin}/`));
      if (urls.length) active?.postMessage({ type: 'cache-urls', urls });
    }
    return registration;
  } catch (err) {
    if (hook) {
      hook.serviceWorker = { ...hook.serviceWorker, registered: false,
        error: String(err?.message || err) };
    }
    return null;
  }
}
