"""The pictures of docs/phones.md (#22): the demo display page as an iPhone shows it (AR
Quick Look's "View in AR" link; Safari's `rel="ar"` support emulated in Chromium), and a
preview of what the phone AR file holds: the display's GLB (the same composition as its
USDZ: models, price labels, panels, farm card) drawn by three.js on a counter.

    .venv/bin/python tools/phone_pictures.py [--out docs]

Needs the built web client and Debian's Chromium, like the browser tests."""

from __future__ import annotations

import argparse
import mimetypes
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.browser import chromium_browser  # noqa: E402
from support.live import start_server  # noqa: E402

DISPLAY = "/d/greenhaven/zonneveld-greens"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
QUICK_LOOK = """(() => {
  const supports = DOMTokenList.prototype.supports;
  DOMTokenList.prototype.supports = function (t) { return t === 'ar' || supports.call(this, t); };
})();"""
THREE = REPO / "web-client" / "node_modules" / "three"
PREVIEW = """<!doctype html><html><body style="margin:0;background:#d9d4cb">
<script type="importmap">{"imports": {"three": "/three/build/three.module.js",
  "three/addons/": "/three/examples/jsm/"}}</script>
<script type="module">
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
const renderer = new THREE.WebGLRenderer({ antialias: true });
renderer.setSize(innerWidth, innerHeight);
renderer.outputColorSpace = THREE.SRGBColorSpace;
document.body.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color('#d9d4cb');
scene.add(new THREE.HemisphereLight('#ffffff', '#8a7f70', 2.2));
const sun = new THREE.DirectionalLight('#fff4e0', 1.6); sun.position.set(1, 2, 2); scene.add(sun);
const counter = new THREE.Mesh(new THREE.BoxGeometry(2.4, 0.04, 1.0),
  new THREE.MeshStandardMaterial({ color: '#9c7b55', roughness: 0.8 }));
counter.position.set(0, -0.021, -0.1); scene.add(counter);
const camera = new THREE.PerspectiveCamera(40, innerWidth / innerHeight, 0.01, 20);
camera.position.set(0.05, 0.75, 1.35); camera.lookAt(0, 0.2, -0.2);
new GLTFLoader().load('/display.glb', (gltf) => {
  scene.add(gltf.scene);
  renderer.render(scene, camera);
  window.done = true;
}, undefined, (e) => { window.failed = String(e); });
</script></body></html>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    live = start_server(Path(tempfile.mkdtemp(prefix="phone-pictures-")), watch=False)
    try:
        glb = live.client().get(f"{DISPLAY}.glb").content
        with chromium_browser() as browser:
            context = browser.new_context(viewport={"width": 390, "height": 844},
                                          user_agent=IPHONE, device_scale_factor=2)
            context.add_init_script(QUICK_LOOK)
            page = context.new_page()
            page.goto(live.url + DISPLAY)
            page.wait_for_function("window.__holo && window.__holo.ready && "
                                   "window.__holo.handoff && window.__holo.handoff.mode",
                                   timeout=120_000)
            page.screenshot(path=str(args.out / "phones-iphone.png"))
            context.close()

            context = browser.new_context(viewport={"width": 900, "height": 520})
            page = context.new_page()

            def serve(route) -> None:
                path = route.request.url.split("://preview.local", 1)[1].split("?")[0]
                if path == "/":
                    route.fulfill(body=PREVIEW, content_type="text/html")
                elif path == "/display.glb":
                    route.fulfill(body=glb, content_type="model/gltf-binary")
                elif path.startswith("/three/"):
                    file = THREE / path.removeprefix("/three/")
                    route.fulfill(body=file.read_bytes(),
                                  content_type=mimetypes.guess_type(file.name)[0]
                                  or "text/javascript")
                else:
                    route.fulfill(status=404, body="")

            page.route("http://preview.local/**", serve)
            page.goto("http://preview.local/")
            page.wait_for_function("window.done || window.failed", timeout=120_000)
            assert page.evaluate("window.failed || null") is None
            page.screenshot(path=str(args.out / "phones-quicklook-preview.png"))
            context.close()
    finally:
        live.stop()
    print(f"wrote {args.out / 'phones-iphone.png'} and {args.out / 'phones-quicklook-preview.png'}")


if __name__ == "__main__":
    main()
