// Visitors' reactions (docs/pulse.md): a reaction bar on the display page (inline and in
// the AR overlay), an optional short note sent with the next tap, and dwell time in coarse
// buckets. The device id is random, kept in localStorage and replaced every (UTC) day: no
// account, no fingerprinting; the server hashes it again with a salt of the day.
import { Outbox } from './outbox.js';
import { t } from './i18n.js';

export const KINDS = ['love', 'wow', 'hungry', 'learn'];
// Every string a visitor reads, in one place (through the page's catalogue, i18n.js).
export const TEXT = {
  thanks: () => t('Thanks!'),
  noteHeld: () => t('Thanks! Your note waits for the market team to read it.'),
  queued: (n) => (n === 1
    ? t('Offline: your reaction is saved and will be sent when the network is back.')
    : t('Offline: %(n)s reactions are saved and will be sent when the network is back.', { n })),
  flushed: () => t('Back online: your saved reactions were sent.'),
  rateLimited: () => t('Easy! One reaction a second is plenty.'),
  refused: () => t('That reaction could not be counted.'),
};
export const DWELL_BUCKETS = [0, 5, 15, 30, 60, 120, 300];
const DEVICE_KEY = 'holobazaar.device';
const MAX_NOTE = 280;

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function deviceId(storage = window.localStorage, now = new Date()) {
  const day = now.toISOString().slice(0, 10);
  try {
    const saved = JSON.parse(storage.getItem(DEVICE_KEY) || 'null');
    if (saved && saved.day === day && /^[A-Za-z0-9_-]{16,64}$/.test(saved.id)) return saved.id;
  } catch {
    // unreadable or blocked storage: a fresh id below
  }
  const id = base64url(crypto.getRandomValues(new Uint8Array(16)));
  try {
    storage.setItem(DEVICE_KEY, JSON.stringify({ id, day }));
  } catch {
    // private mode without storage: the id lives as long as the page
  }
  return id;
}

// The bucket a dwell time falls in: its lower bound, at most 300 s.
export function dwellBucket(seconds) {
  let bucket = 0;
  for (const b of DWELL_BUCKETS) if (seconds >= b) bucket = b;
  return bucket;
}

export class PulseBar {
  /**
   * @param {object} o
   * @param {{market: string, display: string}} o.boot
   * @param {(msg: object) => boolean} o.send sends over the stream; false when offline
   * @param {object} o.hook the page's test hook (window.__holo)
   */
  constructor({ boot, send, hook }) {
    this.boot = boot;
    this.send = send;
    this.hook = hook;
    this.stats = { sent: 0, recipes: 0, refused: 0, lastError: null, dwell: [] };
    hook.pulse = this.stats;
    this.visibleSince = document.visibilityState === 'visible' ? performance.now() : null;
    this.shown = 0;
    // Taps wait here until the server acknowledges them (outbox.js): offline taps are sent
    // when the stream is back, each once.
    this.outbox = new Outbox({ send, scope: { market: boot.market, display: boot.display } });
    hook.outbox = this.outbox.stats;
  }

  // The stream is connected and the display's channel joined: send what waits.
  online() {
    this.hadQueued = this.outbox.pending() > 0;
    this.outbox.online();
  }

  offline() {
    this.outbox.offline();
  }

  acked(id) {
    this.outbox.acked(id);
    if (this.hadQueued && this.outbox.pending() === 0) {
      this.hadQueued = false;
      this.status(TEXT.flushed());
    }
  }

  attach() {
    for (const button of document.querySelectorAll('[data-pulse-kind]')) {
      button.addEventListener('click', () => this.react(button.dataset.pulseKind));
    }
    // A heart next to each recipe card: a love for that recipe, counted for this display
    // too. Hidden without JavaScript (nothing would send it).
    for (const button of document.querySelectorAll('[data-pulse-recipe]')) {
      button.addEventListener('click', () => this.react('love', button.dataset.pulseRecipe));
      button.hidden = false;
    }
    for (const bar of document.querySelectorAll('.pulse-bar')) bar.hidden = false;
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.visibleSince = performance.now();
      else this.reportDwell();
    });
    window.addEventListener('pagehide', () => this.reportDwell());
  }

  status(text) {
    for (const el of document.querySelectorAll('.pulse-status')) el.textContent = text;
  }

  react(kind, recipe = null) {
    if (!KINDS.includes(kind)) return;
    const msg = { type: 'reaction', market: this.boot.market, display: this.boot.display, kind,
      device: deviceId() };
    if (recipe) msg.recipe = recipe;
    // The note box belongs to the reaction bar: a recipe heart does not take its text.
    const note = recipe ? null : document.getElementById('pulse-note');
    const text = note ? note.value.trim().slice(0, MAX_NOTE) : '';
    if (text) msg.text = text;
    const live = this.outbox.add(msg);
    if (note) note.value = '';
    if (!live) {
      this.hadQueued = true;
      this.status(TEXT.queued(this.outbox.pending()));
      return;
    }
    this.stats.sent += 1;
    if (recipe) this.stats.recipes += 1;
    this.status(text ? TEXT.noteHeld() : TEXT.thanks());
  }

  // The time the page was in view since the last report, as a coarse bucket.
  reportDwell() {
    if (this.visibleSince === null) return;
    const seconds = (performance.now() - this.visibleSince) / 1000;
    this.visibleSince = null;
    const bucket = dwellBucket(seconds);
    if (bucket < 5) return; // a glance is not worth a message
    this.stats.dwell.push(bucket);
    this.send({ type: 'dwell', market: this.boot.market, display: this.boot.display,
      seconds: bucket, device: deviceId() });
  }

  // Errors from the server about reactions (docs/protocol.md): rate_limited is expected
  // from a keen visitor and only slows them down.
  serverError(ev) {
    // A refused tap that will be sent again (a queued one over the rate) says nothing.
    if (typeof ev.reaction === 'string' && !this.outbox.refused(ev.reaction, ev.code)) return;
    if (!['rate_limited', 'unknown_kind', 'not_subscribed', 'unknown_display',
      'unknown_recipe'].includes(ev.code)
      || (ev.channel && !ev.channel.endsWith(`/display/${this.boot.display}`))) return;
    this.stats.refused += 1;
    this.stats.lastError = ev.code;
    this.status(ev.code === 'rate_limited' ? TEXT.rateLimited() : TEXT.refused());
  }
}
