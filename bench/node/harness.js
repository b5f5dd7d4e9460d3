'use strict';
// What the bench's Node load generators share: the clock, JSON-lines output, connecting N
// clients a batch at a time, percentiles, fresh snapshots of channels (the server's truth)
// and the JSON-lines command loop on stdin.
const readline = require('readline');
const WebSocket = require('ws');

const now = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, ms
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

let exiting = false;
// True once the driver said exit: connections closing then are not failures.
const shuttingDown = () => exiting;

// Connects every client (each has connect(onReady)), at most `limit` handshakes at once.
function connectAll(clients, limit, timeoutS) {
  return new Promise((resolve) => {
    const start = now();
    let ready = 0;
    let next = 0;
    let inFlight = 0;
    const timer = setTimeout(() => resolve({ start, ready, timedOut: true }), timeoutS * 1000);
    const onReady = () => {
      ready += 1;
      inFlight -= 1;
      if (ready === clients.length) { clearTimeout(timer); resolve({ start, ready, timedOut: false }); }
      else launch();
    };
    const launch = () => {
      while (next < clients.length && inFlight < limit) {
        inFlight += 1;
        clients[next++].connect(onReady);
      }
    };
    launch();
  });
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((q / 100) * sorted.length))];
}

// The snapshot message of each channel from fresh connections (32 channels each): what a
// new client would get, so the server's current state. A channel that does not answer in
// 30 s is left out.
function freshSnapshots(url, channels) {
  const groups = [];
  for (let i = 0; i < channels.length; i += 32) groups.push(channels.slice(i, i + 32));
  return Promise.all(groups.map((group) => new Promise((resolve) => {
    const got = {};
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    const timer = setTimeout(() => { ws.terminate(); resolve(got); }, 30000);
    ws.on('error', () => { clearTimeout(timer); resolve(got); });
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.type === 'welcome') {
        ws.send(JSON.stringify({ type: 'hello', protocol: 1,
          subscribe: group.map((channel) => ({ channel })) }));
      } else if (msg.type === 'snapshot') {
        got[msg.channel] = msg;
        if (Object.keys(got).length === group.length) {
          clearTimeout(timer);
          ws.terminate();
          resolve(got);
        }
      }
    });
  }))).then((parts) => Object.assign({}, ...parts));
}

// Reads the driver's commands ({"cmd": name, ...} lines) and calls handlers[name]; "exit"
// and the end of stdin end the process. A line that is not JSON is ignored.
function commandLoop(handlers) {
  const rl = readline.createInterface({ input: process.stdin });
  const exit = () => { exiting = true; process.exit(0); };
  rl.on('line', (line) => {
    let cmd;
    try { cmd = JSON.parse(line); } catch (e) { return; }
    if (cmd.cmd === 'exit') exit();
    else if (handlers[cmd.cmd]) handlers[cmd.cmd](cmd);
  });
  rl.on('close', exit);
}

function run(main) {
  main().catch((e) => { emit({ event: 'failed', error: String(e && e.stack || e) }); process.exit(1); });
}

module.exports = { now, emit, shuttingDown, connectAll, percentile, freshSnapshots, commandLoop, run };
