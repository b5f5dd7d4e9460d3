'use strict';
// Load generator of many channels (bench/fanout.py --scenarios market, bench/reconcile.py):
// N WebSocket clients, each subscribed to its own list of channels (a display, its zone,
// the pulse channel, several displays...), applying every patch and cue of each.
//
// It measures staleness per channel without knowing the server's offsets in advance:
// the first client to hold a new offset of a channel records what that offset holds
// ("marks", once per offset, shared by every client) and every client logs when it came
// to hold each offset. After the run the driver sends the changes it made, each with the
// instant of its 2xx; a change's offset on a channel is the first whose state shows it,
// and a client's staleness is when it held that offset (or a later one) minus that instant.
//   - items: the price of `items.<sku>` encodes the change (`base + seq/100`), so a state
//     shows change (sku, seq) when that price is at least it (changes to one SKU are
//     serialized by the driver);
//   - cues (zone channels): a cue frame's fire instant is `start_time - lead` on the
//     server's clock (ms since the Unix epoch: this machine's wall clock);
//   - --first-arrival channels (the pulse channel): no instant is known outside the
//     server, so each new offset's reference is the first client's receipt of it.
// Clients holding the same state share it (per channel, frames already applied to a state
// are cached with their result), so 10,000 clients cost about one state per channel.
//
// Control: JSON lines on stdin, results as JSON lines on stdout.
//   -> {"event":"ready", ...}
//   <- {"cmd":"react","rate":R}     reactions per second from clients with a display
//   <- {"cmd":"finish","changes":[{sku,seq,t,tag}],"drain_s":S}   t: CLOCK_MONOTONIC ms
//   -> {"event":"result", ...}
//   <- {"cmd":"exit"}
const fs = require('fs');
const WebSocket = require('ws');
const { parseOptions } = require('./cli');
const { now, emit, shuttingDown, connectAll, percentile, freshSnapshots, commandLoop, run } =
  require('./harness');
const { applyOps, canonical } = require('./jsonstate');

const values = parseOptions(process.argv, {
  url: { type: 'string' }, spec: { type: 'string' },
  base: { type: 'string', default: '1000' }, 'lead-ms': { type: 'string', default: '150' },
  batch: { type: 'string', default: '250' }, 'connect-timeout': { type: 'string', default: '180' },
}, ['url', 'spec']);
const opts = {
  url: values.url, base: Number(values.base), leadMs: Number(values['lead-ms']),
  batch: Number(values.batch), connectTimeout: Number(values['connect-timeout']),
};
// spec: {"groups": [{"channels": [...], "count": N, "market"?: m, "display"?: d}],
//        "first_arrival": [channel...]}
const spec = JSON.parse(fs.readFileSync(values.spec, 'utf8'));
// Wall clock (ms since the epoch) minus the monotonic clock: converts a cue's fire instant.
const wallMinusMono = performance.timeOrigin + performance.now() - now();

// ---- channels: what each offset holds, found once ----------------------------------

class Held {
  constructor(state) { this.state = state; this.next = new Map(); this.text = null; }
  canonical() {
    if (this.text === null) this.text = canonical(this.state);
    return this.text;
  }
}

function seqOf(price) {
  if (typeof price !== 'string' && typeof price !== 'number') return -1;
  return Math.round(parseFloat(price) * 100 - opts.base * 100);
}

class Channel {
  constructor(name) {
    this.name = name;
    this.firstArrival = (spec.first_arrival || []).includes(name);
    this.snapshots = new Map(); // raw snapshot text -> {held, epoch, offset}
    this.epoch = null;
    this.top = -1; // highest offset marked
    this.tFirst = new Map(); // offset -> first receipt (ms)
    this.skuSeq = new Map(); // sku -> highest seq marked
    this.skuMarks = new Map(); // sku -> [[seq, offset], ...] ascending
    this.cues = []; // [{id, offset, fire}] fire: monotonic ms
    this.members = []; // [client, slot]
    this.epochs = 0;
  }

  mark(epoch, offset, held, cue, t) {
    if (this.epoch !== epoch) { this.epoch = epoch; this.epochs += 1; this.top = -1; }
    if (offset <= this.top) return;
    this.top = offset;
    this.tFirst.set(offset, t);
    if (cue) this.cues.push({ id: cue.id, offset, fire: cue.start_time - opts.leadMs - wallMinusMono });
    const items = held.state && held.state.items;
    if (items && typeof items === 'object') {
      for (const sku of Object.keys(items)) {
        const seq = seqOf(items[sku] && items[sku].price);
        const known = this.skuSeq.get(sku);
        if (known === undefined || seq > known) {
          this.skuSeq.set(sku, seq);
          if (!this.skuMarks.has(sku)) this.skuMarks.set(sku, []);
          this.skuMarks.get(sku).push([seq, offset]);
        }
      }
    }
  }

  // First offset whose state shows (sku, seq); undefined: never shown, null: not here.
  offsetOf(sku, seq) {
    const marks = this.skuMarks.get(sku);
    if (marks === undefined) return null;
    for (const [s, offset] of marks) if (s >= seq) return offset;
    return undefined;
  }
}

const channels = new Map();
const channelOf = (name) => {
  if (!channels.has(name)) channels.set(name, new Channel(name));
  return channels.get(name);
};

// ---- clients ------------------------------------------------------------------------

const stats = {
  patch_frames: 0, cue_frames: 0, snapshot_frames: 0, offset_jumps: 0, duplicates: 0,
  epoch_changes: 0, errors: 0, apply_failures: 0, reconnects: 0, connect_failures: 0,
  closes: 0, reactions: 0,
};
const errorCodes = {};

class Slot { // one client's position on one channel
  constructor(channel) {
    this.channel = channel;
    this.held = null; this.epoch = null; this.offset = -1;
    this.logOffset = []; this.logTime = []; // every offset it came to hold, and when
  }
}

class Client {
  constructor(index, group) {
    this.index = index;
    this.group = group;
    this.slots = new Map(group.channels.map((name) => [name, new Slot(channelOf(name))]));
    for (const slot of this.slots.values()) slot.channel.members.push([this, slot]);
    this.device = `crowd-${String(index).padStart(10, '0')}`;
    this.ws = null; this.readyAt = NaN; this.attempts = 0; this.waiting = this.slots.size;
  }

  connect(onReady) {
    this.attempts += 1;
    const ws = new WebSocket(opts.url, { perMessageDeflate: false,
      handshakeTimeout: opts.connectTimeout * 1000, maxPayload: 64 * 1024 * 1024 });
    this.ws = ws;
    this.onReady = onReady;
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => this.closed());
  }

  closed() {
    if (shuttingDown()) return;
    this.ws = null;
    if (Number.isNaN(this.readyAt)) {
      stats.connect_failures += 1;
      if (this.attempts >= 5) return;
    } else {
      stats.closes += 1; stats.reconnects += 1;
    }
    setTimeout(() => this.connect(this.onReady), 100 + Math.random() * 400);
  }

  subscribe(slots) {
    this.ws.send(JSON.stringify({ type: 'hello', protocol: 1, subscribe: slots.map((s) => {
      const sub = { channel: s.channel.name };
      if (s.epoch !== null) { sub.epoch = s.epoch; sub.offset = s.offset; }
      return sub;
    }) }));
  }

  advance(slot, held, epoch, offset, t) {
    slot.held = held; slot.epoch = epoch; slot.offset = offset;
    slot.logOffset.push(offset); slot.logTime.push(t);
  }

  receive(data, isBinary) {
    const t = now();
    if (isBinary) { stats.errors += 1; return; }
    const raw = data.toString();
    let msg;
    try { msg = JSON.parse(raw); } catch (e) { stats.errors += 1; return; }
    if (msg.type === 'welcome') { this.subscribe([...this.slots.values()]); return; }
    if (msg.type === 'error') {
      stats.errors += 1; errorCodes[msg.code] = (errorCodes[msg.code] || 0) + 1; return;
    }
    const slot = this.slots.get(msg.channel);
    if (slot === undefined) return;
    const channel = slot.channel;
    if (msg.type === 'snapshot') {
      stats.snapshot_frames += 1;
      let known = channel.snapshots.get(raw);
      if (known === undefined) {
        known = { held: new Held(msg.state), epoch: msg.epoch, offset: msg.offset };
        channel.snapshots.set(raw, known);
        channel.mark(msg.epoch, msg.offset, known.held, null, t);
      }
      this.advance(slot, known.held, known.epoch, known.offset, t);
      if (Number.isNaN(this.readyAt) && --this.waiting === 0) {
        this.readyAt = t; this.onReady(this);
      }
      return;
    }
    if (msg.type !== 'patch' && msg.type !== 'cue') return;
    if (msg.type === 'patch') stats.patch_frames += 1; else stats.cue_frames += 1;
    if (slot.held === null) { stats.errors += 1; return; }
    if (msg.epoch !== slot.epoch) { stats.epoch_changes += 1; this.resubscribe(slot); return; }
    if (msg.offset <= slot.offset) { stats.duplicates += 1; return; }
    const base = msg.from !== undefined ? msg.from : msg.offset - 1;
    if (base !== slot.offset) { stats.offset_jumps += 1; this.resubscribe(slot); return; }
    let cached = slot.held.next.get(raw);
    if (cached === undefined) {
      let next = slot.held;
      if (msg.type === 'patch') {
        try { next = new Held(applyOps(slot.held.state, msg.ops)); } catch (e) {
          stats.apply_failures += 1; this.resubscribe(slot); return;
        }
      }
      cached = next;
      slot.held.next.set(raw, next);
      channel.mark(msg.epoch, msg.offset, next, msg.type === 'cue' ? msg.cue : null, t);
    }
    this.advance(slot, cached, msg.epoch, msg.offset, t);
  }

  resubscribe(slot) {
    slot.epoch = null; slot.offset = -1; slot.held = null;
    this.subscribe([slot]);
  }

  react() {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN || !this.group.display) return;
    const kinds = ['love', 'wow', 'hungry', 'learn'];
    this.ws.send(JSON.stringify({ type: 'reaction', market: this.group.market,
      display: this.group.display, kind: kinds[(Math.random() * 4) | 0], device: this.device }));
    stats.reactions += 1;
  }
}

const clients = [];
for (const group of spec.groups) {
  for (let i = 0; i < group.count; i++) clients.push(new Client(clients.length, group));
}

// ---- reactions ------------------------------------------------------------------------

let reactTimer = null;
function react(rate) {
  if (reactTimer !== null) clearInterval(reactTimer);
  reactTimer = null;
  const reacting = clients.filter((c) => c.group.display);
  if (!(rate > 0) || reacting.length === 0) return;
  const tick = 50; // ms
  let owed = 0;
  let next = 0; // round robin: each device well within its reaction rate
  reactTimer = setInterval(() => {
    owed += (rate * tick) / 1000;
    for (; owed >= 1; owed -= 1) reacting[next++ % reacting.length].react();
  }, tick);
}

// ---- results ----------------------------------------------------------------------------

// When slot first held `offset` or later (NaN: never), or null if it held it from before
// the change (its first snapshot came at that offset or later: it never saw it happen).
function heldAt(slot, offset) {
  const offs = slot.logOffset;
  if (offs.length === 0 || offs[0] >= offset) return null;
  let lo = 0; let hi = offs.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (offs[mid] >= offset) hi = mid; else lo = mid + 1; }
  return lo < offs.length ? slot.logTime[lo] : NaN;
}

function summary(latencies, missing) {
  const sorted = Float64Array.from(latencies).sort();
  const r = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
  return { samples: sorted.length, missing, p50_ms: r(percentile(sorted, 50)),
    p90_ms: r(percentile(sorted, 90)), p99_ms: r(percentile(sorted, 99)),
    max_ms: r(sorted.length ? sorted[sorted.length - 1] : null) };
}

async function finalStates() {
  // Each client's state of each channel against a fresh snapshot at the same offset; a
  // channel that moved on meanwhile (the pulse channel publishes each second) is read again.
  let equal = 0; let compared = 0;
  let pending = [...channels.values()];
  for (let attempt = 0; attempt < 5 && pending.length; attempt++) {
    const snaps = await freshSnapshots(opts.url, pending.map((c) => c.name));
    const again = [];
    for (const channel of pending) {
      const snap = snaps[channel.name];
      if (!snap) { again.push(channel); continue; }
      const until = now() + 3000;
      while (now() < until && channel.members.some(([, s]) => s.epoch === snap.epoch && s.offset < snap.offset)) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (attempt < 4 && channel.members.some(([, s]) => s.offset !== snap.offset)) { again.push(channel); continue; }
      const truth = canonical(snap.state);
      for (const [, slot] of channel.members) {
        compared += 1;
        if (slot.held && slot.offset === snap.offset && slot.held.canonical() === truth) equal += 1;
      }
    }
    pending = again;
  }
  for (const channel of pending) compared += channel.members.length;
  return { equal, compared };
}

async function finish(cmd, cpuStart, readyInfo) {
  react(0);
  const readyEnd = readyInfo.end;
  // Drain: until every client holds what a fresh snapshot holds now, or drain_s.
  const snaps = await freshSnapshots(opts.url, [...channels.keys()]);
  const deadline = now() + cmd.drain_s * 1000;
  const behind = () => [...channels.values()].some((ch) => snaps[ch.name] && ch.members.some(
    ([, s]) => s.offset < snaps[ch.name].offset));
  while (now() < deadline && behind()) await new Promise((r) => setTimeout(r, 20));

  const perChannel = {}; const perTag = {};
  const add = (channel, tag, value) => {
    const c = perChannel[channel.name] || (perChannel[channel.name] = { lat: [], missing: 0, events: 0 });
    const g = perTag[tag] || (perTag[tag] = { lat: [], missing: 0, events: 0 });
    if (Number.isNaN(value)) { c.missing += 1; g.missing += 1; } else { c.lat.push(value); g.lat.push(value); }
  };
  const event = (channel, tag) => {
    (perChannel[channel.name] || (perChannel[channel.name] = { lat: [], missing: 0, events: 0 })).events += 1;
    (perTag[tag] || (perTag[tag] = { lat: [], missing: 0, events: 0 })).events += 1;
  };
  const measure = (channel, tag, offset, ref) => {
    event(channel, tag);
    for (const [, slot] of channel.members) {
      const t = offset === undefined ? NaN : heldAt(slot, offset);
      if (t !== null) add(channel, tag, Number.isNaN(t) ? NaN : t - ref);
    }
  };
  let unseen = 0; // changes on no display channel (not bound anywhere)
  for (const change of cmd.changes) {
    let shown = 0;
    for (const channel of channels.values()) {
      const offset = channel.offsetOf(change.sku, change.seq);
      if (offset === null) continue; // the SKU is not on this channel
      shown += 1;
      measure(channel, change.tag || 'change', offset, change.t);
    }
    if (shown === 0) unseen += 1;
  }
  for (const channel of channels.values()) {
    for (const cue of channel.cues) {
      if (cue.fire >= readyEnd) measure(channel, 'cue', cue.offset, cue.fire);
    }
    if (channel.firstArrival) {
      for (const [offset, t] of channel.tFirst) if (t > readyEnd) measure(channel, 'first-arrival', offset, t);
    }
  }
  const finals = await finalStates();
  const cpu = process.cpuUsage(cpuStart);
  const channelRows = [...channels.values()].map((ch) => {
    const c = perChannel[ch.name] || { lat: [], missing: 0, events: 0 };
    return { channel: ch.name, clients: ch.members.length, events: c.events, epochs: ch.epochs,
      cues: ch.cues.length, ...summary(c.lat, c.missing) };
  });
  const tags = {};
  for (const [tag, g] of Object.entries(perTag)) tags[tag] = { events: g.events, ...summary(g.lat, g.missing) };
  const all = Object.values(perTag).flatMap((g) => g.lat);
  emit({
    event: 'result', clients: clients.length, ready: readyInfo.ready,
    changes: cmd.changes.length, changes_on_no_channel: unseen,
    channels: channelRows, tags, all: summary(all, Object.values(perTag).reduce((a, g) => a + g.missing, 0)),
    final_state_equal: finals.equal, final_state_compared: finals.compared,
    loadgen_cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    loadgen_rss_mb: Math.round(process.memoryUsage().rss / 104857.6) / 10,
    stats, error_codes: errorCodes,
  });
}

async function main() {
  const readyInfo = await connectAll(clients, opts.batch, opts.connectTimeout);
  readyInfo.end = now();
  const times = clients.filter((c) => !Number.isNaN(c.readyAt)).map((c) => c.readyAt - readyInfo.start);
  emit({ event: 'ready', clients: clients.length, ready: readyInfo.ready,
    timed_out: readyInfo.timedOut, connect_s: times.length ? Math.max(...times) / 1000 : null,
    connect_failures: stats.connect_failures,
    subscriptions: clients.reduce((n, c) => n + c.slots.size, 0) });
  const cpuStart = process.cpuUsage();
  commandLoop({
    react: (cmd) => react(cmd.rate),
    finish: (cmd) => { finish(cmd, cpuStart, readyInfo).catch((e) => emit({ event: 'failed', error: String(e && e.stack || e) })); },
  });
}

run(main);
