"""The client's offline logic without a browser (Node runs the modules as they ship): the
reaction outbox (web-client/src/outbox.js) keeps a tap until the server's ack, sends it
again on a new connection, paces queued taps under the reaction limit, retries a queued
tap refused as rate-limited and drops a live one; the model level of detail follows the
connection (web-client/src/device.js); a show caption follows the page's language
(web-client/src/captions.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "web-client" / "src"
NODE = shutil.which("node")

SCRIPT = """
import { Outbox } from '%(src)s/outbox.js';
import { pickModelSrc, slowNetwork } from '%(src)s/device.js';
import { captionIn } from '%(src)s/captions.js';

const store = new Map();
const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
let clock = 1_000_000;
const sent = [];
let up = false;
const box = new Outbox({ storage, now: () => clock, scope: { market: 'm', display: 'd' },
  send: (msg) => (up ? (sent.push(msg), true) : false) });
const tap = (kind) => box.add({ type: 'reaction', market: 'm', display: 'd', kind });
const out = {};

// Offline: five taps wait, each with its own id.
for (const kind of ['love', 'wow', 'hungry', 'learn', 'love']) tap(kind);
out.queuedOffline = box.pending();
out.sentOffline = sent.length;
out.ids = new Set(JSON.parse(store.get('holobazaar.outbox')).map((i) => i.msg.id)).size;

// Back online: a burst of three at once, then one per 1.1 s.
up = true;
box.ready = true;
box.connection += 1;
box.flush(); box.flush(); box.flush(); box.flush();
out.burst = sent.length;
clock += 1100;
box.flush();
out.afterPace = sent.length;
clock += 1100;
box.flush();
out.allSent = sent.length;

// Acks take them out; one not acked is sent again on the next connection, same id.
for (const m of sent.slice(0, 4)) box.acked(m.id);
out.pendingAfterAcks = box.pending();
const unacked = sent[4].id;
box.connection += 1;
clock += 5000;
box.flush();
out.resentSameId = sent.at(-1).id === unacked;

// A queued tap over the rate is tried again; a live tap over the rate is dropped.
out.queuedRateLimited = box.refused(unacked, 'rate_limited') === null && box.pending() === 1;
box.acked(unacked);
out.liveSent = box.add({ type: 'reaction', market: 'm', display: 'd', kind: 'wow' });
out.liveDropped = box.refused(sent.at(-1).id, 'rate_limited') !== null && box.pending() === 0;

// Another display's taps are not this page's to send.
up = false;
box.add({ type: 'reaction', market: 'm', display: 'other', kind: 'love' });
out.othersIgnored = box.pending() === 0;

const lods = { src: '/assets/a.glb', lods: [{ src: '/assets/0.glb' }, { src: '/assets/1.glb' },
  { src: '/assets/2.glb' }] };
out.lod = {
  desktop: pickModelSrc(lods, 'desktop', true, false),
  phone: pickModelSrc(lods, 'phone', true, false),
  saveData: pickModelSrc(lods, 'desktop', true,
    slowNetwork({ connection: { saveData: true, effectiveType: '4g' } })),
  slow2g: slowNetwork({ connection: { saveData: false, effectiveType: 'slow-2g' } }),
  threeG: slowNetwork({ connection: { saveData: false, effectiveType: '3g' } }),
  noApi: slowNetwork({}),
};
const bell = { kind: 'audio', caption: '[Bell]', translations: { nl: { caption: '[Bel]' } } };
out.captions = [captionIn(bell, 'nl'), captionIn(bell, 'ar'), captionIn(bell, 'en'),
  captionIn({ kind: 'audio' }, 'nl')];
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(NODE is None, reason="needs Node (the web client's build needs it too)")
def test_outbox_and_lod_choice(tmp_path: Path) -> None:
    script = tmp_path / "check.mjs"
    script.write_text(SCRIPT % {"src": SRC.as_posix()})
    result = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["queuedOffline"], out["sentOffline"], out["ids"]) == (5, 0, 5)
    assert (out["burst"], out["afterPace"], out["allSent"]) == (3, 4, 5)
    assert out["pendingAfterAcks"] == 1 and out["resentSameId"]
    assert out["queuedRateLimited"] and out["liveSent"] and out["liveDropped"]
    assert out["othersIgnored"]
    assert out["lod"] == {"desktop": "/assets/0.glb", "phone": "/assets/1.glb",
                          "saveData": "/assets/2.glb", "slow2g": True, "threeG": False,
                          "noApi": False}
    # A show's caption in the page's language, else as written (docs/shows.md).
    assert out["captions"] == ["[Bel]", "[Bell]", "[Bell]", None]
