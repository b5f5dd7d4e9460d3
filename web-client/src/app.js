// The display page: inline 3D view (orbit) for everyone, an AR session where WebXR AR is
// supported, both drawing the same display state, which follows the stream live.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { DisplayRenderer } from './scene.js';
import { StreamClient } from './stream.js';
import { stateHash } from './hash.js';
import { ArSession } from './ar.js';
import { Page } from './page.js';
import { ShowPlayer } from './show.js';
import { PulseBar } from './pulse.js';
import { attachViewer } from './viewer.js';
import { LayoutEngine, frameBox } from './layout.js';
import { layoutProbe } from './probe.js';
import { attachMore } from './more.js';
import { attachPager } from './pager.js';
import { attachLanguagePicker } from './language.js';
import { attachHandoff } from './handoff.js';
import { OfflineBanner, SnapshotKeeper, loadSnapshot, newer, registerServiceWorker } from './offline.js';
import { ViewSettings } from './access.js';

// How often the kept snapshot (offline.js) is written at most, and its "as of" refreshed.
const KEEP_EVERY_MS = 1000;
// A dropped connection shows the offline banner when it is not back within this.
const BANNER_GRACE_MS = 1500;

function readBoot() {
  const el = document.getElementById('holo-boot');
  const boot = JSON.parse(el.textContent);
  if (!boot || typeof boot.channel !== 'string' || typeof boot.state !== 'object') {
    throw new Error('page is missing its boot data');
  }
  return boot;
}

function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

export async function startDisplay(hook) {
  const boot = readBoot();
  // The last state this device saw of the channel (IndexedDB): newer than the page's own
  // when the page came from the offline cache. Read while the view is set up.
  const keptPromise = boot.token ? Promise.resolve(null) : loadSnapshot(boot.channel);
  const page = new Page(boot);
  const settings = new ViewSettings();
  settings.attach();
  hook.settings = () => ({ reducedMotion: settings.reducedMotion, largeText: settings.largeText });
  const warn = (msg) => {
    // Problems the visitor can live with (a broken model, a malformed frame) are logged as
    // warnings; the test hook keeps them for assertions.
    hook.warnings.push(msg);
    console.warn(`[holobazaar] ${msg}`);
  };

  const container = document.getElementById('view');
  const renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setSize(container.clientWidth, container.clientHeight);
  renderer.xr.enabled = true;
  container.appendChild(renderer.domElement);

  const scene = new THREE.Scene();
  const inlineBackground = new THREE.Color('#20281f');
  scene.background = inlineBackground;
  // Soft default lighting so models are visible even when a scene has no light nodes.
  scene.add(new THREE.HemisphereLight('#ffffff', '#445544', 1.2));

  const camera = new THREE.PerspectiveCamera(50, container.clientWidth / container.clientHeight,
    0.01, 50);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = true;

  const display = new DisplayRenderer({
    renderer, // KTX2 textures: the transcoder picks a format this GPU supports
    onWarning: warn,
    onProgress: (p) => page.progress(p),
    onChange: () => layout?.schedule(),
  });
  display.viewHeight = () => container.clientHeight;
  display.viewWidth = () => container.clientWidth;
  // The layout engine lays the content out for this view, then the camera frames it all.
  let layout = null;
  layout = new LayoutEngine({
    display, camera,
    onError: (err) => warn(`layout failed: ${err?.stack || err}`),
    onLayout: () => {
      // Once the visitor has turned the view, a new layout never takes the camera back.
      if (!renderer.xr.isPresenting && !userTurned()) frameInline(camera, controls, layout);
    },
    onPages: (pages) => {
      pager.update(pages);
      hook.pages = pages;
    },
  });
  // A portrait column longer than the view is paged; a new page is framed afresh.
  const pager = attachPager({
    stage: container.parentElement,
    onPage: (n) => {
      turned = false;
      keyTurnsAtReset = hook.viewer?.keyTurns ?? 0;
      layout.showPage(n);
    },
  });
  let turned = false;
  let keyTurnsAtReset = 0;
  const userTurned = () => turned || (hook.viewer?.keyTurns ?? 0) > keyTurnsAtReset;
  controls.addEventListener('start', () => {
    turned = true;
  });
  // `placer` positions the display: at the origin inline, on the tapped surface in AR.
  const placer = new THREE.Group();
  placer.add(display.root);
  scene.add(placer);

  const updateHook = () => {
    hook.nodes = display.count;
    hook.renders = display.renders;
  };
  layout.textScale = settings.textScale;
  display.setState(boot.state);
  page.render(boot.state);
  updateHook();
  frameInline(camera, controls, layout); // as authored, until the models are in and laid out
  layout.schedule();
  // Page-friendly view (viewer.js): scroll, keyboard, reset (back to the initial framing).
  const viewer = attachViewer({
    canvas: renderer.domElement, controls, hook, settings,
    label: plainTitle(boot.state) || 'The stall in 3D',
    reset: () => {
      turned = false;
      keyTurnsAtReset = hook.viewer?.keyTurns ?? 0;
      frameInline(camera, controls, layout);
    },
  });

  // Live shows play in the display's zone: its channel carries cue frames and show state.
  const show = new ShowPlayer({
    display, displayId: boot.display, onWarning: warn,
    reducedMotion: () => settings.reducedMotion,
    serverNow: () => stream.serverNow(),
    onExecuted: (id, executedAt) => {
      if (boot.zone_channel) stream.reportCue(boot.zone_channel, id, executedAt);
    },
  });
  const channels = [{ channel: boot.channel, epoch: boot.epoch, offset: boot.offset,
    state: boot.state }];
  if (boot.zone_channel) channels.push({ channel: boot.zone_channel });
  let pulse = null;
  let handoff = null; // phone AR without WebXR: links that follow the state (handoff.js)
  // Offline (offline.js): the state shown is "as of" the last server time heard; a lost
  // connection shows the banner with that time instead of a quiet "Reconnecting…".
  const banner = new OfflineBanner({ timeZone: boot.timezone });
  const keeper = boot.token ? null : new SnapshotKeeper(boot.channel);
  let asOf = Number.isFinite(boot.server_time) ? boot.server_time : null;
  let keepTimer = null;
  let live = false;
  let bannerTimer = null;
  const keep = () => {
    if (!keeper || keepTimer) return;
    keepTimer = setTimeout(() => {
      keepTimer = null;
      const ch = stream.channels.get(boot.channel);
      if (ch?.state && stream.ws) {
        keeper.save({ ...ch, channel: boot.channel, asOf: stream.lastHeard ?? stream.serverNow() });
      }
    }, KEEP_EVERY_MS);
  };
  hook.offline = () => ({ banner: banner.shown, asOf: banner.asOf, saved: keeper?.saved ?? 0 });
  const stream = new StreamClient({
    url: wsUrl(boot.ws || '/ws'),
    channels,
    token: boot.token, // a curator's draft preview (?preview=1): the pass to its channel
    onCue: (channel, cue) => show.onCue(cue),
    onChange: (channel, ch, ops) => {
      if (channel === boot.zone_channel) {
        show.setShowState(ch.state.show, ops !== null);
        hook.offset[channel] = ch.offset;
        return;
      }
      if (ops) display.applyOps(ch.state, ops);
      else display.setState(ch.state);
      page.render(ch.state);
      handoff?.update(ch.state);
      viewer.setLabel(plainTitle(ch.state) || 'The stall in 3D');
      hook.offset[channel] = ch.offset;
      hook.epoch = ch.epoch;
      updateHook();
      keep();
    },
    onEvent: (ev) => {
      if (ev.type === 'heartbeat') {
        if (ev.channel !== boot.channel) return; // the hook reports the display's own
        hook.lastHeartbeatHash = ev.state_hash;
        hook.lastHeartbeat = { channel: ev.channel, offset: ev.offset, hash: ev.state_hash };
      } else if (ev.type === 'clock') {
        hook.clockOffset = ev.offset;
        hook.clockRtt = ev.rtt;
        keep(); // still current: a later "as of"
      } else if (ev.type === 'ack') pulse?.acked(ev.reaction);
      else if (ev.type === 'joined') {
        pulse?.online();
        keep();
      } else if (ev.type === 'malformed') warn(`malformed frame, resyncing: ${ev.message}`);
      else if (ev.type === 'server-error') {
        warn(`server error ${ev.code}: ${ev.message}`);
        pulse?.serverError(ev);
      }
      else if (ev.type === 'connected' || ev.type === 'closed') {
        page.connection(ev.type);
        live = ev.type === 'connected';
        clearTimeout(bannerTimer);
        if (live) banner.hide();
        else {
          pulse?.offline();
          asOf = stream.lastHeard ?? asOf;
          // A drop that a quick reconnect mends (a server restart, a Wi-Fi hand-over) does
          // not flash the banner; a page that never connected says so at once.
          const show = () => {
            if (!live) banner.show(asOf);
          };
          if (stream.stats.connects === 0 || banner.shown) show();
          else bannerTimer = setTimeout(show, BANNER_GRACE_MS);
        }
      }
      hook.stream = stream.stats;
    },
  });
  hook.offset[boot.channel] = boot.offset;
  hook.epoch = boot.epoch;
  hook.stream = stream.stats;
  // The stream resumes from the newest state this device has: the page's, or the kept one.
  keptPromise.then((kept) => {
    const own = { epoch: boot.epoch, offset: boot.offset, state: boot.state, asOf };
    const best = newer(own, kept);
    if (best && best !== own) {
      Object.assign(stream.channels.get(boot.channel), { epoch: best.epoch,
        offset: best.offset, state: best.state, hash: null });
      asOf = best.asOf;
      display.setState(best.state);
      page.render(best.state);
      hook.offset[boot.channel] = best.offset;
      hook.epoch = best.epoch;
      updateHook();
    }
    hook.restored = Boolean(best && best !== own);
  }).finally(() => stream.start());
  pulse = new PulseBar({ boot, send: (msg) => stream.send(msg), hook });
  // The language picker switches live: messages, formats and the display's channel.
  attachLanguagePicker({ boot, stream, page, hook });
  // A curator's draft preview (boot.token) sends no reactions or visit times: they would
  // count as visitors' in the market's pulse.
  if (!boot.token) pulse.attach();

  const ar = new ArSession({
    renderer, scene, placer, page, hook, key: `${boot.market}/${boot.display}`,
    onEnd: () => {
      scene.background = inlineBackground;
      placer.matrixAutoUpdate = true;
      placer.position.set(0, 0, 0);
      placer.quaternion.identity();
      placer.scale.set(1, 1, 1);
      hook.phase = 'inline';
      onResize();
    },
  });

  const started = performance.now();
  renderer.setAnimationLoop((time, frame) => {
    if (frame) ar.onFrame(frame);
    else if (show.holdFrame()) return; // keep the main thread free for a cue due now
    else controls.update();
    show.update();
    renderer.render(scene, camera);
    hook.frames += 1;
    if (hook.firstFrameMs === null) {
      // From navigation start: what a visitor waits for before seeing the display.
      hook.firstFrameMs = performance.now();
      hook.firstFrameSinceBootMs = performance.now() - started;
    }
  });

  function onResize() {
    if (renderer.xr.isPresenting) return;
    const w = container.clientWidth;
    const h = container.clientHeight;
    const portrait = layout.portrait;
    camera.aspect = w / Math.max(1, h);
    camera.updateProjectionMatrix();
    renderer.setSize(w, h);
    // A phone turned sideways changes the arrangement; any resize changes the framing.
    if (portrait !== layout.portrait) layout.schedule();
    else frameInline(camera, controls, layout);
  }
  window.addEventListener('resize', onResize);

  hook.phase = 'inline';
  // For tests: the rendered nodes (not enumerable, so the hook stays cheap to serialize).
  Object.defineProperty(hook, 'scene', { value: display.root, enumerable: false });
  hook.stop = () => stream.stop();
  hook.resync = () => stream.resync(boot.channel);
  hook.announced = () => [...page.announced];
  hook.serverNow = () => stream.serverNow();
  // For tests: the show player (executed cues, mood); not enumerable, like `scene`.
  Object.defineProperty(hook, 'show', { value: show, enumerable: false });
  hook.stateHash = stateHash;
  hook.nodeText = (id) => {
    const entry = display.entries.get(id);
    return entry && typeof entry.object.text === 'string' ? entry.object.text : null;
  };
  // For tests: whether a node is drawn (a node bound to a removed item is hidden).
  hook.nodeVisible = (id) => {
    const entry = display.entries.get(id);
    // Off the shown page of a paged column still counts as shown (the pager reaches it).
    return entry ? entry.object.visible || Boolean(entry.object.userData.offPage) : null;
  };
  // Test helper: the three.js objects that stand for display nodes.
  hook.sceneNodeCount = () => {
    let n = 0;
    display.root.traverse((o) => {
      if (o.userData.holoId) n += 1;
    });
    return n;
  };
  hook.placeholders = () => {
    const out = [];
    display.root.traverse((o) => {
      if (o.userData.placeholder && o.parent?.userData.failed) out.push(o.parent.userData.holoId);
    });
    return out;
  };

  settings.onChange((s) => {
    layout.setTextScale(s.textScale);
  });

  hook.arSupported = await ar.supported();
  handoff = attachHandoff({ boot, hook, webxrAr: hook.arSupported,
    currentState: stream.channels.get(boot.channel)?.state });
  if (hook.arSupported) {
    page.showArButton(() => ar.enter().catch((err) => {
      warn(`AR session failed: ${err.message}`);
      hook.phase = 'inline';
    }));
  }
  // For tests: the layout's last report and the screen rectangles of what is drawn.
  Object.defineProperty(hook, 'layout', { get: () => layout.report, enumerable: true });
  hook.layoutSettled = async () => {
    await layout.running;
    return layout.report;
  };
  hook.layoutProbe = (samples) => layoutProbe({ display, camera, container, samples });
  attachMore({ canvas: renderer.domElement, camera, display });
  // Ready once the initial view has settled: models loaded (or failed) and laid out.
  await Promise.race([Promise.allSettled([...display.models.values()]),
    new Promise((r) => setTimeout(r, 3000))]);
  await (layout.running ?? (layout.generation ? null : layout.schedule()));
  viewer.startHintClock();
  hook.ready = true;
  // After the first visit has drawn: the offline worker (never before, so it does not
  // compete with this visit), which keeps this page and the files it used (offline.js).
  if (!boot.token) registerServiceWorker({ hook });
}

function plainTitle(state) {
  const title = state?.display?.title;
  return typeof title === 'string' ? title : '';
}

// Put the inline camera where everything drawn (models, panels, text) is in view.
function frameInline(camera, controls, layout) {
  layout.display.root.updateMatrixWorld(true);
  const { centre } = frameBox(camera, layout.framingBox(), layout.elevation);
  controls.target.copy(centre);
  controls.update();
}
