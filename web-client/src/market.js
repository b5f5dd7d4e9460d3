// Entry of the market page /m/<market>: the live pulse heatmap of the zones. Zones are
// server-rendered SVG rectangles; this colours them from the `market/<m>/pulse` channel
// (docs/pulse.md). Text is set with textContent only.
import { StreamClient } from './stream.js';

const hook = { updates: 0, zones: {}, connected: false };
window.__pulseMap = hook;

function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

// Quiet zones stay dark green; the busiest glows amber.
function heat(t) {
  const from = [47, 58, 45];
  const to = [255, 170, 40];
  const c = from.map((f, i) => Math.round(f + (to[i] - f) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

export function paint(state, window = '15m') {
  const zones = state?.windows?.[window]?.zones || {};
  const max = Math.max(1, ...Object.values(zones).map((z) => z.reactions + z.dwell_reports));
  for (const rect of document.querySelectorAll('#pulse-map [data-zone]')) {
    const zone = rect.dataset.zone;
    const figures = zones[zone];
    const label = document.querySelector(`#pulse-map [data-zone-label="${zone}"]`);
    if (!figures) {
      rect.setAttribute('fill', heat(0));
      if (label) label.textContent = 'quiet';
      hook.zones[zone] = null;
      continue;
    }
    const activity = (figures.reactions + figures.dwell_reports) / max;
    rect.setAttribute('fill', heat(activity));
    if (label) label.textContent = `${figures.reactions} reactions · mood ${figures.mood}`;
    hook.zones[zone] = { activity, reactions: figures.reactions, mood: figures.mood };
  }
  const mood = state?.windows?.[window]?.market?.mood;
  const moodEl = document.getElementById('pulse-mood');
  if (moodEl) moodEl.textContent = Number.isInteger(mood) ? `Market mood now: ${mood}` : '';
  hook.updates += 1;
}

function start() {
  const el = document.getElementById('pulse-boot');
  if (!el) return;
  const boot = JSON.parse(el.textContent);
  paint(boot.state);
  const stream = new StreamClient({
    url: wsUrl(boot.ws || '/ws'),
    channels: [{ channel: boot.channel, epoch: boot.epoch, offset: boot.offset, state: boot.state }],
    onChange: (_channel, ch) => paint(ch.state),
    onEvent: (ev) => {
      if (ev.type === 'connected') hook.connected = true;
      else if (ev.type === 'closed') hook.connected = false;
    },
  });
  stream.start();
}

start();
