"""Processing runs in a separate process with a time and memory limit, so a hostile file
can at worst kill its own worker, never the server."""

from __future__ import annotations

import logging
import multiprocessing
import resource
from multiprocessing.connection import Connection
from pathlib import Path

from holobazaar.assets.pipeline import Refused
from holobazaar.assets.pipeline.options import Options

# spawn, not fork: the server has threads and an event loop a forked child must not inherit.
_CONTEXT = multiprocessing.get_context("spawn")


def _die_with_parent() -> None:
    """Linux: the worker is killed when its server process dies (a SIGKILLed node's job is
    re-claimed by another node: assets/jobs.py; its worker must not go on alone)."""
    import contextlib
    import ctypes
    import signal

    # PR_SET_PDEATHSIG fires when the thread that started us ends: that thread waits for
    # this worker's answer (run_in_worker), so it outlives any job.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(files: list[str], upload_dir: str, out_dir: str, options: Options,
           conn: Connection) -> None:
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_DATA, (options.memory_bytes, options.memory_bytes))
    # Pillow's decompression-bomb limit, set explicitly (its default warns below 2x and
    # only then refuses); inputs.check_image_header also refuses over the limit.
    from PIL import Image

    # Here, not at the top: the steps import numpy and trimesh, which the server process
    # (10,000 connections in a budget) never needs.
    from holobazaar.assets.pipeline.process import process

    Image.MAX_IMAGE_PIXELS = options.limits.max_image_pixels
    try:
        result = process([Path(f) for f in files], Path(upload_dir), Path(out_dir), options)
        conn.send(("ok", result))
    except Refused as exc:
        conn.send(("refused", str(exc)))
    except MemoryError:
        conn.send(("refused", "processing ran out of its memory limit"))
    except Exception:  # the curator learns that it failed, the log why; the server stays up
        logging.getLogger(__name__).exception("asset worker failed on %s", files)
        conn.send(("refused", "cannot process the upload: an internal error (the server "
                              "log has the details)"))
    finally:
        conn.close()


def run_in_worker(files: list[Path], upload_dir: Path, out_dir: Path,
                  options: Options) -> dict:
    """Blocking: call from a thread. Raises Refused on refusal, timeout or a crash."""
    parent, child = _CONTEXT.Pipe(duplex=False)
    proc = _CONTEXT.Process(target=_child, args=(
        [str(f) for f in files], str(upload_dir), str(out_dir), options, child), daemon=True)
    proc.start()
    child.close()
    try:
        # The worker's own limit covers Node; this one covers the worker (+ start-up).
        if not parent.poll(options.timeout + 15):
            raise Refused(f"processing took longer than {options.timeout:.0f} s")
        try:
            status, payload = parent.recv()
        except EOFError:
            raise Refused("the processing worker died (out of memory?)") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status != "ok":
        raise Refused(payload)
    return payload
