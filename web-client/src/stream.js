// The v1 stream client (docs/protocol.md): hello with resume positions, snapshot + patches
// in offset order, clock offset from ping/pong, heartbeats carrying the rendered state's hash.
import { applyPatch } from 'fast-json-patch';
import { deviceClass } from './device.js';
import { hashAvailable, stateHash } from './hash.js';

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10000;
const PING_EVERY_MS = 15000;
const CLOCK_SAMPLES = 8;
const CLOCK_BURST_MS = [0, 300, 600, 900, 1300, 1800, 2500];
// Then a ping a second for the first half minute, so a busy start (models loading, a
// congested network) is followed by quieter samples with shorter round trips.
const CLOCK_SETTLE_MS = 30000;
const CLOCK_SETTLE_EVERY_MS = 1000;
// A heartbeat goes out shortly after every change too, so drift is caught in well under
// the periodic interval; the delay batches bursts of patches into one heartbeat.
const HEARTBEAT_AFTER_CHANGE_MS = 300;

export class MalformedFrame extends Error {}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isOffset(v) {
  return Number.isInteger(v) && v >= 0;
}

// Validates the server frames this client acts on; anything else is malformed.
export function parseFrame(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    throw new MalformedFrame(`not JSON: ${err.message}`);
  }
  if (!isObject(msg) || typeof msg.type !== 'string') throw new MalformedFrame('no type');
  const need = (ok, what) => {
    if (!ok) throw new MalformedFrame(`${msg.type}: bad or missing ${what}`);
  };
  switch (msg.type) {
    case 'welcome':
      need(isObject(msg.limits), 'limits');
      need(Number.isFinite(msg.server_time), 'server_time');
      break;
    case 'snapshot':
      need(typeof msg.channel === 'string', 'channel');
      need(typeof msg.epoch === 'string', 'epoch');
      need(isOffset(msg.offset), 'offset');
      need(isObject(msg.state), 'state');
      break;
    case 'patch':
      need(typeof msg.channel === 'string', 'channel');
      need(typeof msg.epoch === 'string', 'epoch');
      need(isOffset(msg.offset), 'offset');
      // `from`: the base offset of a coalesced patch (several changes merged into one).
      need(msg.from === undefined || (isOffset(msg.from) && msg.from < msg.offset), 'from');
      need(Array.isArray(msg.ops) && msg.ops.every(isObject), 'ops');
      break;
    case 'cue':
      need(typeof msg.channel === 'string', 'channel');
      need(typeof msg.epoch === 'string', 'epoch');
      need(isOffset(msg.offset), 'offset');
      need(isObject(msg.cue) && typeof msg.cue.id === 'string'
        && typeof msg.cue.event === 'string' && Number.isFinite(msg.cue.start_time), 'cue');
      need(msg.cue.actions === undefined || Array.isArray(msg.cue.actions), 'cue.actions');
      break;
    case 'pong':
      need(Number.isFinite(msg.t0) && Number.isFinite(msg.server_time), 't0/server_time');
      break;
    case 'error':
      need(typeof msg.code === 'string', 'code');
      break;
    default:
      break; // future types: ignored by this client
  }
  return msg;
}

export class StreamClient {
  /**
   * @param {object} o
   * @param {string} o.url ws:// or wss:// URL of /ws
   * @param {Array<{channel, epoch?, offset?, state?}>} o.channels what to follow; an entry
   *   with a state (embedded in the page) resumes from its position
   * @param {(channel, ch, ops|null) => void} o.onChange ops null: a snapshot replaced it
   * @param {(event) => void} [o.onEvent] status reports for the page and the test hook
   * @param {(channel, cue) => void} [o.onCue] a show cue (docs/protocol.md, `cue`)
   */
  // `token`: a pass for private channels (a curator's preview link), sent in every hello.
  constructor({ url, channels, onChange, onEvent = () => {}, onCue = () => {}, token = null }) {
    this.url = url;
    this.token = typeof token === 'string' && token ? token : null;
    this.onChange = onChange;
    this.onCue = onCue;
    this.cueReports = new Map(); // channel -> {id, executed_at}: the last cue this device ran
    this.onEvent = onEvent;
    this.channels = new Map();
    for (const c of channels) {
      this.channels.set(c.channel, {
        epoch: c.epoch ?? null, offset: c.offset ?? null, state: c.state ?? null,
        hash: null, hashOffset: null,
      });
    }
    this.ws = null;
    this.attempt = 0;
    this.timers = new Set();
    this.heartbeatMs = 5000;
    this.clockSamples = [];
    this.clockOffset = null;
    this.stopped = false;
    this.stats = { connects: 0, snapshots: 0, patches: 0, resyncs: 0, malformed: 0,
      heartbeats: 0, pongs: 0 };
    this.lastHeartbeat = null;
  }

  start() {
    this.stopped = false;
    this.connect();
    // The device says the network is back: try now, not at the end of a long back-off.
    if (!this.onOnline && typeof window !== 'undefined') {
      this.onOnline = () => {
        if (this.stopped || this.ws) return;
        this.attempt = 0;
        clearTimeout(this.retryTimer);
        this.connect();
      };
      window.addEventListener('online', this.onOnline);
    }
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) this.ws.close(1000, 'bye');
  }

  // ---- connection ------------------------------------------------------------------

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      this.onEvent({ type: 'closed', code: ev.code });
      if (!this.stopped) this.reconnectLater();
    };
    // An error is always followed by close, which does the reconnecting.
    ws.onerror = () => {};
  }

  reconnectLater() {
    // Exponential back-off with "full jitter" so a restarted server is not hit by every
    // phone at the same instant.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.attempt += 1;
    this.onEvent({ type: 'reconnecting', delay, attempt: this.attempt });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped && !this.ws) this.connect();
    }, delay);
  }

  clearTimers() {
    for (const t of this.timers) clearTimeout(t), clearInterval(t);
    this.timers.clear();
    this.pendingHeartbeat = null;
  }

  // Returns whether the message went out (false while disconnected).
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  hello(only = null) {
    const subscribe = [];
    for (const [channel, ch] of this.channels) {
      if (only && channel !== only) continue;
      const sub = { channel };
      if (ch.epoch !== null && ch.offset !== null && ch.state !== null) {
        sub.epoch = ch.epoch;
        sub.offset = ch.offset;
      }
      subscribe.push(sub);
    }
    const hello = { type: 'hello', protocol: 1, subscribe, client: { kind: 'webxr-client', device: deviceClass() } };
    if (this.token) hello.token = this.token;
    this.send(hello);
  }

  // Follow `next` instead of `old` (the page switched language): leave the one, join the
  // other; its snapshot comes through onChange like any.
  follow(old, next) {
    if (old === next) return;
    this.channels.delete(old);
    this.cueReports.delete(old);
    this.send({ type: 'leave', channel: old });
    this.channels.set(next, { epoch: null, offset: null, state: null, hash: null, hashOffset: null });
    this.hello(next);
  }

  // Drop what we hold and ask for a fresh snapshot (after a gap or a malformed frame).
  resync(channel = null) {
    this.stats.resyncs += 1;
    for (const [name, ch] of this.channels) {
      if (channel && name !== channel) continue;
      ch.epoch = ch.offset = null;
      ch.awaitingSnapshot = true;
    }
    this.hello(channel);
  }

  // ---- receiving ---------------------------------------------------------------------

  receive(text) {
    let msg;
    try {
      msg = parseFrame(text);
    } catch (err) {
      this.malformed(err, null);
      return;
    }
    // The last moment the server was heard from, on its clock: what an offline page's
    // state is "as of" (offline.js).
    if (msg.type === 'welcome') this.lastHeard = msg.server_time;
    else this.lastHeard = this.serverNow();
    switch (msg.type) {
      case 'welcome': return this.welcome(msg);
      case 'snapshot': return this.snapshot(msg);
      case 'patch': return this.patch(msg);
      case 'cue': return this.cue(msg);
      case 'pong': return this.pong(msg);
      case 'ack':
        if (typeof msg.reaction === 'string') this.onEvent({ type: 'ack', reaction: msg.reaction });
        return undefined;
      case 'error':
        this.onEvent({ type: 'server-error', code: msg.code, message: msg.message,
          channel: msg.channel, reaction: msg.reaction });
        return undefined;
      default: return undefined;
    }
  }

  malformed(err, channel) {
    this.stats.malformed += 1;
    this.onEvent({ type: 'malformed', message: String(err.message || err), channel });
    this.resync(channel);
  }

  welcome(msg) {
    this.attempt = 0;
    this.stats.connects += 1;
    const interval = Number(msg.limits.heartbeat_interval_ms);
    if (Number.isFinite(interval) && interval >= 500) this.heartbeatMs = interval;
    // A first, rough clock offset from the welcome (the pings refine it): the server's
    // clock is the one "as of" times are told in, whatever this device's clock says.
    if (this.clockOffset === null) this.clockOffset = msg.server_time - Date.now();
    this.onEvent({ type: 'connected', session: msg.session });
    this.hello();
    // Frames after the hello are handled after it: the channels are joined for them.
    this.onEvent({ type: 'joined' });
    // A burst of pings gives a good clock estimate quickly, then one now and then. Show
    // cues are scheduled by it, and a page busy loading models delays some pongs: of
    // several samples the one with the shortest round trip is kept (NTP's rule).
    for (const delay of CLOCK_BURST_MS) this.timers.add(setTimeout(() => this.ping(), delay));
    for (let t = 3000; t <= CLOCK_SETTLE_MS; t += CLOCK_SETTLE_EVERY_MS) {
      this.timers.add(setTimeout(() => this.ping(), t));
    }
    this.timers.add(setInterval(() => this.ping(), PING_EVERY_MS));
    this.timers.add(setInterval(() => this.heartbeatAll(), this.heartbeatMs));
  }

  snapshot(msg) {
    const ch = this.channels.get(msg.channel);
    if (!ch) return;
    Object.assign(ch, { epoch: msg.epoch, offset: msg.offset, state: msg.state, hash: null,
      awaitingSnapshot: false });
    this.stats.snapshots += 1;
    this.onChange(msg.channel, ch, null);
    this.heartbeatSoon();
  }

  patch(msg) {
    const ch = this.channels.get(msg.channel);
    // Patches still in flight from before a resync request are superseded by the snapshot.
    if (!ch || ch.awaitingSnapshot) return;
    // A patch applies to the state at `from` (a merged patch) or else at `offset - 1`.
    const base = msg.from === undefined ? msg.offset - 1 : msg.from;
    if (ch.state === null || msg.epoch !== ch.epoch || base !== ch.offset) {
      this.malformed(new Error(`patch ${msg.epoch}/${msg.offset} does not follow `
        + `${ch.epoch}/${ch.offset}`), msg.channel);
      return;
    }
    let next;
    try {
      // validate=true rejects ops that do not fit the document; mutate=false keeps the
      // held state intact if the patch fails half-way.
      next = applyPatch(ch.state, msg.ops, true, false).newDocument;
    } catch (err) {
      this.malformed(err, msg.channel);
      return;
    }
    Object.assign(ch, { offset: msg.offset, state: next, hash: null });
    this.stats.patches += 1;
    this.onChange(msg.channel, ch, msg.ops);
    this.heartbeatSoon();
  }

  // A cue takes the next offset in the channel's log but leaves its state unchanged.
  cue(msg) {
    const ch = this.channels.get(msg.channel);
    if (!ch || ch.awaitingSnapshot) return;
    if (ch.state === null || msg.epoch !== ch.epoch || msg.offset !== ch.offset + 1) {
      this.malformed(new Error(`cue ${msg.epoch}/${msg.offset} does not follow `
        + `${ch.epoch}/${ch.offset}`), msg.channel);
      return;
    }
    ch.offset = msg.offset;
    this.stats.cues = (this.stats.cues || 0) + 1;
    this.onCue(msg.channel, msg.cue);
  }

  // The show player ran a cue: the next heartbeat on that channel says when (server time).
  reportCue(channel, id, executedAt) {
    this.cueReports.set(channel, { id, executed_at: executedAt });
    this.heartbeatSoon();
  }

  // ---- clock -------------------------------------------------------------------------

  ping() {
    this.send({ type: 'ping', t0: Date.now() });
  }

  pong(msg) {
    const t1 = Date.now();
    const rtt = t1 - msg.t0;
    if (rtt < 0) return;
    this.stats.pongs += 1;
    this.clockSamples.push({ rtt, offset: msg.server_time + rtt / 2 - t1 });
    if (this.clockSamples.length > CLOCK_SAMPLES) this.clockSamples.shift();
    // NTP's rule: the shortest round trip has the least asymmetry.
    const best = this.clockSamples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.clockOffset = best.offset;
    this.clockRtt = best.rtt;
    this.onEvent({ type: 'clock', offset: best.offset, rtt: best.rtt });
  }

  serverNow() {
    return Date.now() + (this.clockOffset ?? 0);
  }

  // ---- heartbeats --------------------------------------------------------------------

  heartbeatSoon() {
    if (this.pendingHeartbeat) return;
    this.pendingHeartbeat = setTimeout(() => {
      this.timers.delete(this.pendingHeartbeat);
      this.pendingHeartbeat = null;
      this.heartbeatAll();
    }, HEARTBEAT_AFTER_CHANGE_MS);
    this.timers.add(this.pendingHeartbeat);
  }

  async heartbeatAll() {
    if (!hashAvailable()) return; // crypto.subtle needs a secure context (https/localhost)
    for (const [channel, ch] of this.channels) {
      if (ch.state === null || ch.offset === null) continue;
      const offset = ch.offset;
      if (ch.hashOffset !== offset || ch.hash === null) {
        const digest = await stateHash(ch.state);
        if (ch.offset !== offset) continue; // changed meanwhile: the next beat covers it
        ch.hash = digest;
        ch.hashOffset = offset;
      }
      const beat = { type: 'heartbeat', channel, offset, state_hash: ch.hash };
      if (this.cueReports.has(channel)) beat.cue = this.cueReports.get(channel);
      this.send(beat);
      this.stats.heartbeats += 1;
      this.lastHeartbeat = { channel, offset, state_hash: ch.hash };
      this.onEvent({ type: 'heartbeat', ...this.lastHeartbeat });
    }
  }
}
