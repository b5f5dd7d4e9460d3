// "more" on a clipped panel: a tap (or click) on it opens the panel's full text in a
// dialog, as plain text (textContent).
import * as THREE from 'three';
import { Text } from 'troika-three-text';

export function attachMore({ canvas, camera, display }) {
  const dialog = document.createElement('dialog');
  dialog.id = 'panel-more';
  dialog.setAttribute('aria-labelledby', 'panel-more-title');
  const heading = document.createElement('h2');
  heading.id = 'panel-more-title';
  const body = document.createElement('p');
  body.style.whiteSpace = 'pre-line';
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = 'Close';
  close.addEventListener('click', () => dialog.close());
  dialog.append(heading, body, close);
  document.body.append(dialog);

  let down = null;
  canvas.addEventListener('pointerdown', (ev) => {
    down = { x: ev.clientX, y: ev.clientY };
  });
  canvas.addEventListener('pointerup', (ev) => {
    if (!down || Math.hypot(ev.clientX - down.x, ev.clientY - down.y) > 6) return;
    const rect = canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((ev.clientX - rect.left) / rect.width) * 2 - 1,
      -((ev.clientY - rect.top) / rect.height) * 2 + 1);
    const raycaster = new THREE.Raycaster();
    raycaster.setFromCamera(ndc, camera);
    const mores = [];
    display.root.traverseVisible((o) => {
      if (o instanceof Text && o.userData.role === 'more') mores.push(o);
    });
    const hit = raycaster.intersectObjects(mores, false)[0];
    const panel = hit?.object.parent?.userData.panel;
    if (!panel) return;
    heading.textContent = panel.fullTitle;
    body.textContent = panel.fullBody;
    dialog.showModal();
  });
  return dialog;
}
