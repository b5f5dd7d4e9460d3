// Entry of the display page /d/<market>/<display>. In test mode (?xr-emulate=1) the WebXR
// emulator is loaded first, from its own chunk, before anything touches navigator.xr.
import './style.css';

const hook = {
  phase: 'loading', frames: 0, hitFrames: 0, placed: false, nodes: 0, offset: {},
  lastHeartbeatHash: null, lastHeartbeat: null, clockOffset: null, errors: [], warnings: [],
  arSupported: null, firstFrameMs: null, stream: null, renders: {},
};
window.__holo = hook;

async function boot() {
  if (new URLSearchParams(location.search).has('xr-emulate')) {
    const { installEmulator } = await import('./emulate.js');
    await installEmulator();
  }
  const { startDisplay } = await import('./app.js');
  await startDisplay(hook);
}

boot().catch((err) => {
  hook.phase = 'failed';
  hook.errors.push(String(err?.stack || err));
  console.error('Holobazaar client failed to start', err);
  document.body.classList.add('no-3d');
});
