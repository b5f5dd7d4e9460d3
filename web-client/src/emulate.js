// Test mode only (?xr-emulate=1): Meta's IWER emulates a Quest 3 with a synthetic room
// (@iwer/sem) so hit-test has surfaces. Never part of the production entry: this module is
// its own chunk, loaded by a dynamic import.
import { XRDevice, metaQuest3 } from 'iwer';
import { SyntheticEnvironmentModule } from '@iwer/sem';
import roomUrl from '@iwer/sem/captures/office_small.json?url';

export async function installEmulator() {
  const device = new XRDevice(metaQuest3);
  // Chromium on Linux has a native navigator.xr; without forceInstall IWER steps aside.
  device.installRuntime({ forceInstall: true });
  device.installSEM(SyntheticEnvironmentModule);
  const response = await fetch(roomUrl);
  if (!response.ok) throw new Error(`emulator room: HTTP ${response.status}`);
  device.sem.loadEnvironment(await response.json());
  // Hit-test still ray-casts against hidden meshes; drawing the room costs 60% of the frame.
  device.sem.meshesVisible = false;
  window.__device = device;
}
