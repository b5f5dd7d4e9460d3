'use strict';
// Load generator of bench/reconcile.py --drill: N WebSocket clients speaking the Holobazaar
// v1 protocol, each on one display channel (round robin over --channels), that
//   - apply every patch (RFC 6902) to the state they hold, and check every state the
//     server makes them hold against the truth the driver sends (per SKU, the item facts
//     the authority had at some point of the run): a state with any other price, notice,
//     stock or status, or an item under another SKU, is a WRONG STATE DELIVERED;
//   - send a heartbeat every `heartbeat_interval_ms` (from the welcome; random phase)
//     with the offset and the RFC 8785 SHA-256 hash of the state they render;
//   - on "drift", --drift of them start rendering something else at a random moment
//     (a wrong price in their own copy: a fault after the hub, which no server-side
//     guard can see) and measure the time until the server's resync snapshot puts them
//     back on the truth ("drift correction").
// Clients holding the same state share it (and its hash and verdict), so 10,000 clients
// cost about one state per display.
//
// Control: JSON lines on stdin, results as JSON lines on stdout.
//   -> {"event":"ready", ...}                      every client holds its snapshot
//   --truth FILE: {sku: [facts...]}, the facts allowed per SKU, "price|notice|status|stock"
//   <- {"cmd":"truth","items":{sku:[facts...]}}    more allowed facts (a change is coming)
//   <- {"cmd":"drift","window_s":S}                --drift clients drift within S seconds
//   <- {"cmd":"finish","drain_s":S}                -> {"event":"result", ...}
//   <- {"cmd":"exit"}
const crypto = require('crypto');
const fs = require('fs');
const WebSocket = require('ws');
const { parseOptions } = require('./cli');
const { now, emit, shuttingDown, connectAll, percentile, freshSnapshots, commandLoop, run } =
  require('./harness');
const { applyOps, canonical } = require('./jsonstate');

const values = parseOptions(process.argv, {
  url: { type: 'string' }, channels: { type: 'string' }, truth: { type: 'string' },
  clients: { type: 'string', default: '100' }, drift: { type: 'string', default: '0' },
  batch: { type: 'string', default: '250' }, seed: { type: 'string', default: '1' },
  'connect-timeout': { type: 'string', default: '300' },
}, ['url', 'channels', 'truth']);
const opts = {
  url: values.url, channels: JSON.parse(fs.readFileSync(values.channels, 'utf8')),
  clients: Number(values.clients), drift: Number(values.drift), batch: Number(values.batch),
  connectTimeout: Number(values['connect-timeout']), seed: Number(values.seed),
};
if (!(opts.clients > 0) || !(opts.drift >= 0) || opts.drift > opts.clients ||
    !(opts.batch > 0) || !opts.channels.length) {
  throw new Error('--clients > 0, 0 <= --drift <= --clients, --batch > 0, channels needed');
}

let seed = opts.seed >>> 0;
const random = () => { // mulberry32: runs repeat with --seed
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// ---- the truth and verdicts ---------------------------------------------------------

const allowed = new Map(); // sku -> Set of "price|notice|status|stock"
let truthVersion = 0;
function addTruth(items) {
  for (const [sku, facts] of Object.entries(items)) {
    const known = allowed.get(sku) || new Set();
    for (const f of facts) known.add(f);
    allowed.set(sku, known);
  }
  truthVersion += 1;
}
addTruth(JSON.parse(fs.readFileSync(values.truth, 'utf8')));
const factsOf = (item) => [item.price, item.notice === undefined ? null : item.notice,
  item.status, item.stock].map((v) => (v === null || v === undefined ? 'null' : String(v)))
  .join('|');

class Held {
  constructor(state) {
    this.state = state;
    this.next = new Map(); // raw frame text -> {epoch, offset, held} after it
    this.digest = null;
    this.verdictAt = -1;
    this.wrongWhy = null;
  }
  hash() {
    if (this.digest === null) {
      this.digest = crypto.createHash('sha256').update(canonical(this.state)).digest('hex');
    }
    return this.digest;
  }
  wrong() { // null when right; else why (checked once per truth version)
    if (this.verdictAt !== truthVersion) {
      this.verdictAt = truthVersion;
      this.wrongWhy = null;
      const items = (this.state && this.state.items) || {};
      for (const sku of Object.keys(items)) {
        const item = items[sku];
        const known = allowed.get(sku);
        if (!item || item.sku !== sku) { this.wrongWhy = `${sku}: another item`; break; }
        if (known && !known.has(factsOf(item))) {
          this.wrongWhy = `${sku}: ${factsOf(item)}`;
          break;
        }
      }
    }
    return this.wrongWhy;
  }
}
const snapshots = new Map(); // raw snapshot text -> {held, epoch, offset, hash}

// ---- clients -------------------------------------------------------------------------

const stats = {
  snapshot_frames: 0, patch_frames: 0, heartbeats: 0, resyncs: 0, apply_failures: 0,
  errors: 0, closes: 0, connect_failures: 0, snapshot_hash_mismatches: 0,
  wrong_delivered: 0, drifted: 0,
};
const errorCodes = {};
const wrongExamples = [];
const driftTimes = [];

class Client {
  constructor(index) {
    this.index = index;
    this.channel = opts.channels[index % opts.channels.length];
    this.ws = null;
    this.held = null;
    this.epoch = null;
    this.offset = -1;
    this.ready = false;
    this.attempts = 0;
    this.driftAt = NaN; // when it started rendering something else
    this.timer = null;
  }

  connect(onReady) {
    this.attempts += 1;
    this.onReady = onReady;
    const ws = new WebSocket(opts.url, { perMessageDeflate: false,
      handshakeTimeout: opts.connectTimeout * 1000, maxPayload: 64 * 1024 * 1024 });
    this.ws = ws;
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => this.closed());
  }

  closed() {
    clearInterval(this.timer);
    this.timer = null;
    if (shuttingDown()) return;
    if (!this.ready) {
      stats.connect_failures += 1;
      if (this.attempts >= 5) return;
    } else {
      stats.closes += 1;
    }
    setTimeout(() => this.connect(this.onReady), 100 + random() * 400);
  }

  beat(intervalMs) {
    // Out of phase: the first heartbeat at a random point of the interval.
    setTimeout(() => {
      if (this.ws === null) return;
      this.heartbeat();
      this.timer = setInterval(() => this.heartbeat(), intervalMs);
    }, random() * intervalMs);
  }

  heartbeat() {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN || this.held === null) return;
    stats.heartbeats += 1;
    this.ws.send(JSON.stringify({ type: 'heartbeat', channel: this.channel,
      offset: this.offset, state_hash: this.held.hash() }));
  }

  receive(data, isBinary) {
    const t = now();
    if (isBinary) { stats.errors += 1; return; }
    const raw = data.toString();
    const cached = this.held !== null ? this.held.next.get(raw) : undefined;
    if (cached !== undefined && cached.epoch === this.epoch) {
      stats.patch_frames += 1;
      if (cached.offset <= this.offset) return;
      this.offset = cached.offset;
      this.hold(cached.held, t, false);
      return;
    }
    let known = snapshots.get(raw);
    let msg = null;
    if (known === undefined) {
      try { msg = JSON.parse(raw); } catch (e) { stats.errors += 1; return; }
      if (msg.type === 'snapshot') {
        const held = new Held(msg.state);
        if (held.hash() !== msg.state_hash) stats.snapshot_hash_mismatches += 1;
        known = { held, epoch: msg.epoch, offset: msg.offset };
        snapshots.set(raw, known);
      }
    }
    if (known !== undefined) {
      stats.snapshot_frames += 1;
      this.epoch = known.epoch;
      this.offset = known.offset;
      this.hold(known.held, t, true);
      return;
    }
    switch (msg.type) {
      case 'welcome': {
        if (this.timer === null) this.beat(msg.limits.heartbeat_interval_ms);
        this.ws.send(JSON.stringify({ type: 'hello', protocol: 1,
          subscribe: [{ channel: this.channel }] }));
        break;
      }
      case 'patch': {
        stats.patch_frames += 1;
        if (this.held === null || msg.epoch !== this.epoch) { this.resubscribe(); return; }
        if (msg.offset <= this.offset) return;
        let next;
        try {
          next = new Held(applyOps(this.held.state, msg.ops));
        } catch (e) {
          stats.apply_failures += 1;
          this.resubscribe();
          return;
        }
        this.held.next.set(raw, { epoch: msg.epoch, offset: msg.offset, held: next });
        this.offset = msg.offset;
        this.hold(next, t, false);
        break;
      }
      case 'error':
        stats.errors += 1;
        errorCodes[msg.code] = (errorCodes[msg.code] || 0) + 1;
        break;
      default:
        break;
    }
  }

  hold(held, t, snapshot) {
    const drifting = !Number.isNaN(this.driftAt);
    if (drifting && snapshot) {
      // The server's resync: back on the state the hub holds.
      stats.resyncs += 1;
      driftTimes.push(t - this.driftAt);
      this.driftAt = NaN;
    } else if (drifting && !snapshot) {
      // A patch applied to what it renders: still something else until resynced.
      held = new Held(scrambled(held.state));
    }
    this.held = held;
    if (Number.isNaN(this.driftAt)) {
      const why = held.wrong();
      if (why !== null) {
        stats.wrong_delivered += 1;
        if (wrongExamples.length < 5) wrongExamples.push({ channel: this.channel, why });
      }
    }
    if (!this.ready) {
      this.ready = true;
      this.onReady(this);
    }
  }

  drift() {
    if (this.held === null || !Number.isNaN(this.driftAt)) return;
    stats.drifted += 1;
    this.driftAt = now();
    this.held = new Held(scrambled(this.held.state));
  }

  resubscribe() {
    this.epoch = null;
    this.offset = -1;
    this.ws.send(JSON.stringify({ type: 'hello', protocol: 1,
      subscribe: [{ channel: this.channel }] }));
  }
}

function scrambled(state) {
  // What a faulty renderer shows: the first item's price off by a cent (or a number
  // where the display says "price at the stall").
  const items = Object.assign({}, state.items);
  const sku = Object.keys(items).sort()[0];
  if (sku === undefined) return Object.assign({}, state, { title_glitch: true });
  const item = Object.assign({}, items[sku]);
  const cents = item.price === null ? 100 : Math.round(parseFloat(item.price) * 100) + 1;
  item.price = (cents / 100).toFixed(2);
  delete item.notice;
  items[sku] = item;
  return Object.assign({}, state, { items });
}

const clients = [];
for (let i = 0; i < opts.clients; i++) clients.push(new Client(i));

async function serverHashes() {
  const snaps = await freshSnapshots(opts.url, opts.channels);
  return Object.fromEntries(Object.entries(snaps).map(([channel, msg]) => [channel, msg.state_hash]));
}

async function finish(cmd, cpuStart, readyInfo) {
  const deadline = now() + cmd.drain_s * 1000;
  while (now() < deadline && clients.some((c) => !Number.isNaN(c.driftAt))) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const cpu = process.cpuUsage(cpuStart);
  const hashes = await serverHashes();
  let finalEqual = 0;
  for (const c of clients) {
    if (c.held !== null && hashes[c.channel] === c.held.hash()) finalEqual += 1;
  }
  const times = driftTimes.slice().sort((a, b) => a - b);
  const round = (x, d = 1) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  emit({
    event: 'result',
    clients: opts.clients,
    ready: readyInfo.ready,
    channels: opts.channels.length,
    wrong_delivered: stats.wrong_delivered,
    wrong_examples: wrongExamples,
    drift: {
      clients: stats.drifted,
      corrected: times.length,
      uncorrected: clients.filter((c) => !Number.isNaN(c.driftAt)).length,
      p50_ms: round(percentile(times, 50)),
      p90_ms: round(percentile(times, 90)),
      p99_ms: round(percentile(times, 99)),
      max_ms: round(times.length ? times[times.length - 1] : null),
    },
    final_state_equal: finalEqual,
    loadgen_cpu_s: round((cpu.user + cpu.system) / 1e6, 2),
    loadgen_rss_mb: round(process.memoryUsage().rss / 1048576),
    stats,
    error_codes: errorCodes,
  });
}

async function main() {
  const readyInfo = await connectAll(clients, opts.batch, opts.connectTimeout);
  emit({ event: 'ready', clients: opts.clients, ready: readyInfo.ready,
    timed_out: readyInfo.timedOut, connect_s: Math.round(now() - readyInfo.start) / 1000,
    connect_failures: stats.connect_failures });
  const cpuStart = process.cpuUsage();
  commandLoop({
    truth: (cmd) => {
      addTruth(cmd.items);
      emit({ event: 'truth', skus: allowed.size });
    },
    drift: (cmd) => {
      // The first --drift clients, each at a random moment of the window.
      for (let i = 0; i < opts.drift; i++) {
        setTimeout(() => clients[i].drift(), random() * cmd.window_s * 1000);
      }
      emit({ event: 'drifting', clients: opts.drift });
    },
    finish: (cmd) => {
      finish(cmd, cpuStart, readyInfo).catch((e) => emit({ event: 'failed', error: String(e) }));
    },
  });
}

run(main);
