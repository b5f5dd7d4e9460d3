'use strict';
// The Node `ws` peer of bench/fanout.py: the minimal broadcast server people would write
// instead of Holobazaar. It speaks just enough of the v1 protocol for the same load
// generator (welcome, hello -> snapshot, patch frames with offsets) and serves the same
// display state (--state: the Holobazaar snapshot the bench fetched), so snapshots and
// patch frames have the same bytes.
//
//   POST /change {"price": "1000.05"}  -> replaces the --sku item's price, encodes the patch
//                                          frame once and ws.send()s it to every subscriber
//   GET /healthz                       -> 200
//
// No overload policy, like every peer in issue #10: a slow client's frames queue without
// bound in its socket buffer.
const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { parseOptions } = require('./cli');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
  const values = parseOptions(argv, {
    host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' },
    state: { type: 'string' }, channel: { type: 'string' }, sku: { type: 'string' },
    deflate: { type: 'boolean', default: false },
    // TLS (issue #26): the same certificate and key Holobazaar serves with.
    cert: { type: 'string' }, key: { type: 'string' },
  }, ['state', 'channel', 'sku']);
  return { ...values, port: Number(values.port) };
}

const opts = parseArgs(process.argv);
const snapshot = JSON.parse(fs.readFileSync(opts.state, 'utf8'));
if (!snapshot.state || !snapshot.state.items || !snapshot.state.items[opts.sku]) {
  throw new Error(`${opts.state}: no state.items[${opts.sku}]`);
}
const state = snapshot.state;
const epoch = crypto.randomBytes(6).toString('hex');
let offset = 0;
let snapshotFrame = null; // encoded once per offset
const subscribers = new Set();

function encodeSnapshot() {
  if (snapshotFrame === null) {
    snapshotFrame = Buffer.from(JSON.stringify({
      type: 'snapshot', channel: opts.channel, epoch, offset, state,
      state_hash: snapshot.state_hash || '',
    }));
  }
  return snapshotFrame;
}

function change(price) {
  state.items[opts.sku].price = price;
  offset += 1;
  snapshotFrame = null;
  const frame = Buffer.from(JSON.stringify({
    type: 'patch', channel: opts.channel, epoch, offset,
    ops: [{ op: 'replace', path: `/items/${opts.sku}/price`, value: price }],
  }));
  for (const ws of subscribers) ws.send(frame, { binary: false });
  return frame.length;
}

function handler(req, res) {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.end('ok');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/change') {
    res.statusCode = 404;
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString()); } catch (e) { body = null; }
    if (!body || typeof body.price !== 'string') {
      res.statusCode = 422;
      res.end('{"error":"body must be {\\"price\\": \\"<decimal string>\\"}"}');
      return;
    }
    const bytes = change(body.price);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ offset, frame_bytes: bytes, subscribers: subscribers.size }));
  });
}

const server = opts.cert
  ? https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) },
    handler)
  : http.createServer(handler);

const wss = new WebSocketServer({
  server, path: '/ws', maxPayload: 64 * 1024, perMessageDeflate: opts.deflate,
});
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'welcome', protocol: 1, session: crypto.randomBytes(8).toString('hex'),
    server_time: Date.now(), limits: {} }));
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data.toString()); } catch (e) { return; }
    if (msg.type === 'hello' && Array.isArray(msg.subscribe) &&
        msg.subscribe.some((s) => s.channel === opts.channel)) {
      subscribers.add(ws);
      ws.send(encodeSnapshot(), { binary: false });
    }
  });
  ws.on('close', () => subscribers.delete(ws));
  ws.on('error', () => subscribers.delete(ws));
});

server.listen(opts.port, opts.host, 2048, () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
