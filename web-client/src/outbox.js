// Reactions on their way to the server (docs/pulse.md, "Offline: queued reactions"). Every
// tap gets an id of its own and stays in localStorage until the server's `ack` names it,
// so a tap made offline (or sent just before the connection dropped) goes out when the
// stream is back, once: the server counts an id once. Queued taps leave one a second (the
// reaction limit); a rate-limited queued tap is tried again later.
const KEY = 'holobazaar.outbox';
const MAX_ITEMS = 20;
const MAX_AGE_MS = 60 * 60 * 1000; // an hour-old "wow" is no longer news
const PACE_MS = 1100; // the server's reaction rate: 1 a second (docs/protocol.md)...
const BURST = 3; // ...with bursts of 5: queued taps use 3, leaving room for new ones
const ACK_WAIT_MS = 5000; // no ack by then on this connection: sent again
const MAX_TRIES = 4;

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function reactionId() {
  return base64url(crypto.getRandomValues(new Uint8Array(12)));
}

export class Outbox {
  /**
   * @param {object} o
   * @param {(msg) => boolean} o.send sends over the stream; false while disconnected
   * @param {{market: string, display: string}} o.scope this page flushes only its display's
   *   taps (another tab's display is not joined here)
   * @param {Storage} [o.storage]
   */
  constructor({ send, scope, storage = globalThis.localStorage, now = () => Date.now() }) {
    this.sendFrame = send;
    this.scope = scope;
    this.storage = storage;
    this.now = now;
    this.ready = false; // connected and this display's channel joined
    this.connection = 0; // which connection a tap was sent on
    this.timer = null;
    this.lastSent = 0;
    this.tokens = BURST; // a token bucket like the server's, a little below its limits
    this.memory = [];
    this.stats = { queued: 0, flushed: 0, acked: 0, dropped: 0 };
  }

  read() {
    try {
      const items = JSON.parse(this.storage.getItem(KEY) || '[]');
      return Array.isArray(items) ? items.filter((i) => i && i.msg && typeof i.msg.id === 'string') : [];
    } catch {
      return this.memory; // storage blocked (private mode): this page's memory only
    }
  }

  write(items) {
    const now = this.now();
    const kept = items.filter((i) => now - i.at < MAX_AGE_MS).slice(-MAX_ITEMS);
    this.stats.dropped += items.length - kept.length;
    this.memory = kept;
    try {
      this.storage.setItem(KEY, JSON.stringify(kept));
    } catch {
      // no storage: kept in memory for this page
    }
  }

  mine(item) {
    return item.msg.market === this.scope.market && item.msg.display === this.scope.display;
  }

  /** How many of this display's taps wait to be sent or acknowledged. */
  pending() {
    return this.read().filter((i) => this.mine(i)).length;
  }

  /** A new tap. Returns true when it went out now, false when it waits for the network. */
  add(msg) {
    const item = { msg: { ...msg, id: reactionId() }, at: this.now(), queued: false, tries: 0,
      sentOn: null, sentAt: 0 };
    const live = this.ready && this.sendItem(item);
    if (!live) {
      item.queued = true;
      this.stats.queued += 1;
    }
    this.write([...this.read(), item]);
    if (!live) this.schedule();
    return live;
  }

  refill() {
    const now = this.now();
    this.tokens = Math.min(BURST, this.tokens + (now - (this.stamp ?? now)) / PACE_MS);
    this.stamp = now;
    return now;
  }

  sendItem(item) {
    if (!this.sendFrame(item.msg)) return false;
    this.refill();
    this.tokens = Math.max(0, this.tokens - 1);
    item.sentOn = this.connection;
    item.sentAt = this.now();
    item.tries += 1;
    this.lastSent = this.now();
    return true;
  }

  /** The stream is back and this display's channel joined (again). */
  online() {
    this.connection += 1;
    this.ready = true;
    this.schedule(0);
  }

  offline() {
    this.ready = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(delay = null) {
    if (!this.ready || this.timer) return;
    this.refill();
    const wait = delay ?? (this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * PACE_MS));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  // One tap that is due: never sent on this connection, or sent without an ack for a while.
  flush() {
    if (!this.ready) return;
    const items = this.read();
    const now = this.now();
    const due = items.find((i) => this.mine(i) && (i.sentOn !== this.connection
      || now - i.sentAt > ACK_WAIT_MS));
    if (!due) {
      if (items.some((i) => this.mine(i))) this.schedule(ACK_WAIT_MS);
      return;
    }
    this.refill();
    if (this.tokens < 1) {
      this.schedule();
      return;
    }
    if (this.sendItem(due)) {
      this.stats.flushed += due.queued ? 1 : 0;
      this.write(items);
    }
    this.schedule();
  }

  forget(id) {
    const items = this.read();
    const left = items.filter((i) => i.msg.id !== id);
    if (left.length !== items.length) this.write(left);
    return items.find((i) => i.msg.id === id) || null;
  }

  /** The server counted it (or had, for a resend). */
  acked(id) {
    if (this.forget(id)) this.stats.acked += 1;
  }

  /** The server refused a tap (its error named the id). Returns the tap when it is dropped
   * for good, null when it will be sent again. */
  refused(id, code) {
    const items = this.read();
    const item = items.find((i) => i.msg.id === id);
    if (!item) return null;
    // A queued tap over the rate is tried again (it was made while offline, at a calm pace);
    // a live tap over the rate is a keen visitor: dropped, as the server said.
    if (code === 'rate_limited' && item.queued && item.tries < MAX_TRIES) {
      item.sentOn = null;
      this.write(items);
      this.schedule();
      return null;
    }
    this.forget(id);
    return item;
  }
}
