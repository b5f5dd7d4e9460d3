'use strict';
// Load generator of bench/fanout.py: N WebSocket clients speaking the Holobazaar v1
// protocol (welcome, hello + subscribe, snapshot, patch/cue) on one channel.
//
// Each client applies every patch (RFC 6902, generically) to the state it holds and reads
// the change number from the state (the price of --sku is `base + k/100`), so it knows,
// per change k, the first instant it held a state at least as new as k ("staleness").
// A patch that advances the offset by more than one (a coalescing server) is applied and
// counted, never treated as an error: the final-state check is the truth.
//
// Clients holding the same state share it (structural sharing, and a per-state cache of
// the frames already applied to it), so 10,000 clients cost about one state's memory.
//
// Control: JSON lines on stdin, results as JSON lines on stdout.
//   -> {"event":"ready", ...}                      when every client holds its snapshot
//   <- {"cmd":"finish","sent":[ms...],"drain_s":S}  change k was sent at sent[k]
//                                                   (CLOCK_MONOTONIC ms, like Python's
//                                                   time.monotonic_ns() / 1e6)
//   -> {"event":"result", ...}
//   <- {"cmd":"exit"}
const WebSocket = require('ws');
const { parseOptions } = require('./cli');
const { now, emit, shuttingDown, connectAll, percentile, freshSnapshots, commandLoop, run } =
  require('./harness');
const { applyOps, canonical } = require('./jsonstate');

function parseArgs(argv) {
  const values = parseOptions(argv, {
    url: { type: 'string' }, channel: { type: 'string' }, sku: { type: 'string' },
    clients: { type: 'string', default: '100' }, base: { type: 'string', default: '1000' },
    changes: { type: 'string', default: '100' }, batch: { type: 'string', default: '250' },
    'connect-timeout': { type: 'string', default: '180' },
    deflate: { type: 'boolean', default: false }, burst: { type: 'boolean', default: false },
  }, ['url', 'channel', 'sku']);
  const opts = {
    url: values.url, channel: values.channel, sku: values.sku, deflate: values.deflate,
    burst: values.burst, clients: Number(values.clients), base: Number(values.base),
    changes: Number(values.changes), batch: Number(values.batch),
    connectTimeout: Number(values['connect-timeout']),
  };
  if (!(opts.clients > 0) || !(opts.changes >= 0) || !(opts.batch > 0) ||
      !Number.isFinite(opts.base) || !(opts.connectTimeout > 0)) {
    throw new Error('--clients, --batch, --connect-timeout must be > 0, --changes >= 0');
  }
  return opts;
}

const opts = parseArgs(process.argv);

// ---- held states, shared between clients ------------------------------------------

const scale = 100;
function seqOf(state) {
  const item = state && state.items && state.items[opts.sku];
  const price = item && item.price;
  if (typeof price !== 'string') return -1;
  const k = Math.round(parseFloat(price) * scale - opts.base * scale);
  return k >= 0 && k < opts.changes ? k : -1;
}

class Held {
  constructor(state) {
    this.state = state;
    this.seq = seqOf(state);
    this.next = new Map(); // raw frame text -> {type, epoch, offset, held} after it
    this.text = null;
  }
  canonical() {
    if (this.text === null) this.text = canonical(this.state);
    return this.text;
  }
}
// raw snapshot text -> {held, epoch, offset}: 10,000 clients connecting at once get the
// same 9 KB snapshot; parsing it once per client cost the generator ~0.7 s of its core.
const snapshots = new Map();

// ---- clients ----------------------------------------------------------------------

const arrivals = new Float64Array(opts.clients * Math.max(1, opts.changes)).fill(NaN);
const stats = {
  patch_frames: 0, patch_bytes: 0, cue_frames: 0, snapshot_frames: 0, offset_jumps: 0,
  duplicates: 0, epoch_changes: 0, errors: 0, apply_failures: 0, reconnects: 0,
  connect_failures: 0, closes: 0,
};
const errorCodes = {};

class Client {
  constructor(index) {
    this.index = index;
    this.ws = null;
    this.held = null;
    this.epoch = null;
    this.offset = -1;
    this.seq = -1;
    this.readyAt = NaN;
    this.attempts = 0;
  }

  connect(onReady) {
    this.attempts += 1;
    const ws = new WebSocket(opts.url, {
      perMessageDeflate: opts.deflate, handshakeTimeout: opts.connectTimeout * 1000,
      maxPayload: 64 * 1024 * 1024,
    });
    this.ws = ws;
    this.onReady = onReady;
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => this.closed());
  }

  hold(snapshot, t) {
    stats.snapshot_frames += 1;
    this.epoch = snapshot.epoch;
    this.offset = snapshot.offset;
    this.advance(snapshot.held, t);
    if (Number.isNaN(this.readyAt)) {
      this.readyAt = t;
      this.onReady(this);
    }
  }

  closed() {
    if (shuttingDown()) return;
    this.ws = null;
    if (Number.isNaN(this.readyAt)) {
      stats.connect_failures += 1;
      if (this.attempts >= 5) return; // given up: counted as not ready
    } else {
      stats.closes += 1;
      stats.reconnects += 1;
    }
    // A real client comes back with back-off and jitter and resumes from its position.
    setTimeout(() => this.connect(this.onReady), 100 + Math.random() * 400);
  }

  receive(data, isBinary) {
    const t = now();
    if (isBinary) { stats.errors += 1; return; }
    const raw = data.toString();
    // Fast path: a frame this client's state has already seen applied (by another client
    // holding the same state) needs no parsing: same bytes, same offset, same result.
    const cached = this.held !== null ? this.held.next.get(raw) : undefined;
    if (cached !== undefined && cached.epoch === this.epoch) {
      this.count(cached.type, data.length);
      if (cached.offset <= this.offset) { stats.duplicates += 1; return; }
      if (cached.offset > this.offset + 1) stats.offset_jumps += 1;
      this.offset = cached.offset;
      this.advance(cached.held, t);
      return;
    }
    const snapshot = snapshots.get(raw);
    if (snapshot !== undefined) { this.hold(snapshot, t); return; }
    let msg;
    try { msg = JSON.parse(raw); } catch (e) { stats.errors += 1; return; }
    switch (msg.type) {
      case 'welcome': {
        const sub = { channel: opts.channel };
        if (this.epoch !== null) { sub.epoch = this.epoch; sub.offset = this.offset; }
        this.ws.send(JSON.stringify({ type: 'hello', protocol: 1, subscribe: [sub] }));
        break;
      }
      case 'snapshot': {
        const known = { held: new Held(msg.state), epoch: msg.epoch, offset: msg.offset };
        snapshots.set(raw, known);
        this.hold(known, t);
        break;
      }
      case 'patch':
      case 'cue': {
        this.count(msg.type, data.length);
        if (this.held === null) { stats.errors += 1; return; }
        if (msg.epoch !== this.epoch) { stats.epoch_changes += 1; this.resubscribe(); return; }
        if (msg.offset <= this.offset) { stats.duplicates += 1; return; }
        if (msg.offset > this.offset + 1) stats.offset_jumps += 1;
        let next = this.held;
        if (msg.type === 'patch') {
          try {
            next = new Held(applyOps(this.held.state, msg.ops));
          } catch (e) {
            stats.apply_failures += 1;
            this.resubscribe();
            return;
          }
        }
        this.held.next.set(raw, { type: msg.type, epoch: msg.epoch, offset: msg.offset, held: next });
        this.offset = msg.offset;
        this.advance(next, t);
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

  count(type, bytes) {
    if (type === 'patch') {
      stats.patch_frames += 1;
      stats.patch_bytes += bytes;
    } else {
      stats.cue_frames += 1;
    }
  }

  advance(held, t) {
    this.held = held;
    if (held.seq > this.seq) {
      const row = this.index * opts.changes;
      for (let k = this.seq + 1; k <= held.seq; k++) arrivals[row + k] = t;
      this.seq = held.seq;
    }
  }

  resubscribe() {
    this.epoch = null;
    this.offset = -1;
    this.ws.send(JSON.stringify({ type: 'hello', protocol: 1,
      subscribe: [{ channel: opts.channel }] }));
  }
}

const clients = [];
for (let i = 0; i < opts.clients; i++) clients.push(new Client(i));

async function fetchServerState() {
  // A fresh connection's snapshot is the server's current state for the channel.
  return (await freshSnapshots(opts.url, [opts.channel]))[opts.channel] || null;
}

async function finish(cmd, cpuStart, readyInfo) {
  const sent = cmd.sent;
  const last = sent.length - 1;
  const finishAt = now();
  const deadline = finishAt + cmd.drain_s * 1000;
  const allCaughtUp = () => clients.every((c) => c.seq >= last);
  while (now() < deadline && !(last < 0 || allCaughtUp())) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const cpu = process.cpuUsage(cpuStart);
  const mem = process.memoryUsage();
  const latencies = new Float64Array(opts.clients * (last + 1));
  let n = 0;
  let lastArrival = -Infinity;
  const perChange = new Float64Array(last + 1).fill(-Infinity); // latest arrival per change
  for (let c = 0; c < opts.clients; c++) {
    const row = c * opts.changes;
    for (let k = 0; k <= last; k++) {
      const t = arrivals[row + k];
      if (!Number.isNaN(t)) {
        latencies[n++] = t - sent[k];
        if (t > lastArrival) lastArrival = t;
        if (t > perChange[k]) perChange[k] = t;
      }
    }
  }
  const lat = latencies.subarray(0, n).sort();
  const server = await fetchServerState();
  let finalEqual = 0;
  let finalOffsetEqual = 0;
  let finalSeqEqual = 0;
  if (server) {
    const truth = canonical(server.state);
    for (const c of clients) {
      if (c.held && c.held.canonical() === truth) finalEqual += 1;
      if (c.epoch === server.epoch && c.offset === server.offset) finalOffsetEqual += 1;
      if (c.seq === last) finalSeqEqual += 1;
    }
  }
  const span = n > 0 ? (lastArrival - sent[0]) / 1000 : null;
  const round = (x, d = 2) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  emit({
    event: 'result',
    clients: opts.clients,
    ready: readyInfo.ready,
    changes: last + 1,
    expected: opts.clients * (last + 1),
    delivered: n,
    missing: opts.clients * (last + 1) - n,
    delivered_per_s: span ? round(n / span, 1) : null,
    frames_per_s: span ? round(stats.patch_frames / span, 1) : null,
    span_s: round(span, 3),
    p50_ms: round(percentile(lat, 50)),
    p90_ms: round(percentile(lat, 90)),
    p99_ms: round(percentile(lat, 99)),
    max_ms: round(n ? lat[n - 1] : null),
    last_change_held_by_all_s: last >= 0 && Number.isFinite(perChange[last])
      ? round((perChange[last] - sent[last]) / 1000, 3) : null,
    final_state_equal: server ? finalEqual : null,
    final_offset_equal: server ? finalOffsetEqual : null,
    final_version_equal: finalSeqEqual,
    server_offset: server ? server.offset : null,
    loadgen_cpu_s: round((cpu.user + cpu.system) / 1e6, 3),
    loadgen_rss_mb: round(mem.rss / 1048576, 1),
    patch_frame_bytes: stats.patch_frames ? round(stats.patch_bytes / stats.patch_frames, 1)
      : null,
    stats,
    error_codes: errorCodes,
  });
}

async function main() {
  const readyInfo = await connectAll(clients, opts.burst ? opts.clients : opts.batch,
    opts.connectTimeout);
  const times = clients.filter((c) => !Number.isNaN(c.readyAt))
    .map((c) => c.readyAt - readyInfo.start).sort((a, b) => a - b);
  emit({
    event: 'ready', clients: opts.clients, ready: readyInfo.ready, timed_out: readyInfo.timedOut,
    connect_s: times.length ? times[times.length - 1] / 1000 : null,
    connect_p50_s: times.length ? percentile(times, 50) / 1000 : null,
    connect_failures: stats.connect_failures,
    loadgen_rss_mb: Math.round(process.memoryUsage().rss / 104857.6) / 10,
  });
  const cpuStart = process.cpuUsage();
  commandLoop({
    finish: (cmd) => {
      finish(cmd, cpuStart, readyInfo).catch((e) => emit({ event: 'failed', error: String(e) }));
    },
  });
}

run(main);
