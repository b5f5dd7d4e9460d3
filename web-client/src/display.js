// Entry of the display page /d/<market>/<display>. In test mode (?xr-emulate=1 on a server
// run with HOLOBAZAAR_XR_EMULATOR) the WebXR emulator is loaded first, from its own chunk,
// before anything touches navigator.xr.
import './style.css';

const hook = {
  phase: 'loading', frames: 0, hitFrames: 0, placed: false, nodes: 0, offset: {},
  lastHeartbeatHash: null, lastHeartbeat: null, clockOffset: null, errors: [], warnings: [],
  arSupported: null, firstFrameMs: null, stream: null, renders: {},
};
window.__holo = hook;

async function boot() {
  // Only a server run for tests (HOLOBAZAAR_XR_EMULATOR) serves the emulator and says so.
  const data = JSON.parse(document.getElementById('holo-boot')?.textContent || 'null');
  if (data?.xr_emulator === true && new URLSearchParams(location.search).has('xr-emulate')) {
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
