"""Every model of the glTF corpus through the real pipeline (worker process, Node tool):
nothing the curator made is lost, and every output passes the Khronos validator with no
error its input did not already have. Outputs are decoded here (inspect.mjs decodes
meshopt, quantization and Draco) rather than trusting the pipeline's own report.

The processed corpus (the pipeline's outputs and report per model) is kept between runs in
pytest's cache folder (.pytest_cache/d/corpus-pipeline/), under a key made of everything that
decides it: the pipeline's Python (holobazaar/assets, redact.py), the Node tool's files and
the installed packages' lock file, the Node, Python, numpy and Pillow versions, the options,
and the model's files. A change to any of them processes the model again (the run after a
pipeline change costs a minute); HOLOBAZAAR_CORPUS_CACHE=0 (or -p no:cacheprovider) always
processes. The independent checks (inspect.mjs, the validator, the tests' own decoding) run
on the outputs every time."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image

from holobazaar.assets.pipeline import gltf
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.pipeline.preserve import TRANSPORT
from holobazaar.assets.worker import run_in_worker

from support.content import REPO
from support.gltf import CORPUS, TOOLS, corpus_entry, side_files

MODELS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []
# Warnings that describe a choice, not a loss.
# (The validator's warnings and the input's own errors are reported, not losses.)
EXPECTED_WARNINGS = {"TEXTURE_KEPT", "LARGE_MODEL", "VALIDATOR_WARNING",
                     "VALIDATOR_ERROR_CARRIED", "NODES_CHANGED"}

pytestmark = pytest.mark.skipif(not MODELS, reason=f"no glTF corpus at {CORPUS}")


def _process(model: str, root: Path, cache: tuple[Path, str] | None) -> dict:
    entry = corpus_entry(model)
    upload, out = root / model / "upload", root / model / "out"
    upload.mkdir(parents=True)
    inputs = [entry, *side_files(entry)]
    kept = cache[0] / _model_key(inputs, cache[1]) if cache is not None else None
    if kept is not None and (kept / "result.json").is_file():
        shutil.copytree(kept / "out", out)
        text = (kept / "result.json").read_text()
        text = text.replace(OUT_MARK, json.dumps(str(out))[1:-1])
        text = text.replace(UPLOAD_MARK, json.dumps(str(upload))[1:-1])
        return {"entry": entry, "result": json.loads(text), "out": out}
    out.mkdir()
    files = []
    for p in inputs:
        (upload / p.name).write_bytes(p.read_bytes())
        files.append(upload / p.name)
    result = run_in_worker(files, upload, out, Options())
    if kept is not None:
        _keep(kept, out, upload, result)
    return {"entry": entry, "result": result, "out": out}


OUT_MARK, UPLOAD_MARK = "<corpus-out>", "<corpus-upload>"


def _pipeline_key() -> str:
    """Everything besides the model that decides the pipeline's outputs."""
    digest = hashlib.sha256()
    server = REPO / "server" / "holobazaar"
    tools = gltf.tools_dir()
    sources = [*sorted((server / "assets").rglob("*.py")), server / "redact.py",
               server / "__init__.py", *sorted(p for p in tools.iterdir() if p.is_file()),
               tools / "node_modules" / ".package-lock.json"]  # what npm installed
    for path in sources:
        digest.update(f"{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    node = subprocess.run([gltf.node_binary(), "--version"], capture_output=True, text=True,
                          check=True).stdout
    for part in (node, sys.version, np.__version__, PIL.__version__, repr(Options())):
        digest.update(f"{part}\0".encode())
    return digest.hexdigest()


def _model_key(inputs: list[Path], pipeline: str) -> str:
    digest = hashlib.sha256(pipeline.encode())
    for path in inputs:
        digest.update(f"{path.name}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _keep(kept: Path, out: Path, upload: Path, result: dict) -> None:
    """Into the cache: a private folder first, renamed into place when complete."""
    part = kept.with_name(f"{kept.name}.{os.getpid()}.part")
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(out, part / "out")
    text = json.dumps(result)
    for path, mark in ((out, OUT_MARK), (upload, UPLOAD_MARK)):
        text = text.replace(json.dumps(str(path))[1:-1], mark)
    (part / "result.json").write_text(text)
    try:
        part.rename(kept)
    except OSError:  # kept by another run meanwhile
        shutil.rmtree(part, ignore_errors=True)


def _cache(pytestconfig) -> tuple[Path, str] | None:
    """The cache of processed models and the pipeline's key (None: process every model);
    entries older than a day are dropped (the pipeline has changed since, most likely)."""
    if os.environ.get("HOLOBAZAAR_CORPUS_CACHE") == "0" or not hasattr(pytestconfig, "cache"):
        return None
    folder = Path(pytestconfig.cache.mkdir("corpus-pipeline"))
    for old in folder.iterdir():
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    return folder, _pipeline_key()


@pytest.fixture(scope="module")
def processed(tmp_path_factory, pytestconfig) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("corpus")
    cache = _cache(pytestconfig)
    # Two at a time: each job is its own worker process (and Node process).
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: _process(m, root, cache), MODELS))
    return dict(zip(MODELS, results, strict=True))


def _outputs(item: dict, prefix: str = "") -> dict[str, Path]:
    return {o["role"]: Path(o["file"]) for o in item["result"]["outputs"]
            if o["role"].startswith(prefix) and o["role"] != "thumbnail"}


@pytest.fixture(scope="module")
def inspected(processed) -> dict[str, dict]:
    """Every input and output decoded by inspect.mjs (independently of the pipeline's own
    report), in two Node processes rather than one per file."""
    inputs = [processed[m]["entry"] for m in MODELS]
    outputs = [p for m in MODELS for p in _outputs(processed[m]).values()]
    found = {}
    with ThreadPoolExecutor(2) as pool:
        for batch in pool.map(lambda paths: gltf.inspect_many(paths, positions=True),
                              (inputs, outputs)):
            found.update({r["file"]: r for r in batch})
    return found


@pytest.mark.parametrize("model", MODELS)
def test_everything_the_input_carries_is_in_the_top_lod(processed, inspected, model):
    item = processed[model]
    before = inspected[str(item["entry"])]
    after = inspected[str(_outputs(item)["lod0"])]
    b, a = before["summary"], after["summary"]
    for key in ("animations", "animationChannels", "skins", "joints", "morphTargets",
                "materials", "meshes", "primitives", "textures", "cameras", "uvSets",
                "colorSets", "textureTransforms", "triangles"):
        assert a[key] == b[key], f"{model}: {key} {b[key]} -> {a[key]}"
    assert set(b["attributes"]) <= set(a["attributes"])
    assert set(b["materialExtensions"]) <= set(a["materialExtensions"])
    assert set(b["extensionsUsed"]) - TRANSPORT <= set(a["extensionsUsed"])
    assert "EXT_meshopt_compression" in a["extensionsUsed"]  # geometry is compressed
    # Positions of primitives stored as sparse accessors: the values the sparse data
    # displaces, in world space, match the output's within quantization error.
    by_key = {(p["mesh"], p["primitive"]): np.array(p["points"]) for p in after["positions"]}
    for sparse in before["sparse"]:
        want = np.array(sparse["points"])
        got = by_key[(sparse["mesh"], sparse["primitive"])]
        extent = float(np.ptp(want, axis=0).max()) or 1.0
        distance = np.linalg.norm(want[:, None, :] - got[None, :, :], axis=2)
        assert distance.min(axis=1).max() < 1e-3 * extent, f"{model}: sparse positions moved"
        assert distance.min(axis=0).max() < 1e-3 * extent
    unexpected = [w for w in item["result"]["warnings"]
                  if w["code"] not in EXPECTED_WARNINGS]
    assert not unexpected, unexpected


def test_sparse_accessor_displacement_survives(processed, inspected):
    """SimpleSparseAccessor: the sparse values lift 7 of 14 vertices; a reader that ignores
    sparse storage leaves them all on y=0 (wrong, yet valid)."""
    out = inspected[str(_outputs(processed["SimpleSparseAccessor"])["lod0"])]
    points = np.array(out["positions"][0]["points"])
    assert sorted({round(y, 3) for y in points[:, 1]}) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_draco_input_is_decoded_to_real_geometry(processed, inspected):
    draco = inspected[str(_outputs(processed["Duck-Draco"])["lod0"])]
    plain = inspected[str(_outputs(processed["Duck"])["lod0"])]
    assert draco["summary"]["triangles"] == plain["summary"]["triangles"] == 4212
    assert np.allclose(draco["bounds"]["min"], plain["bounds"]["min"], atol=0.5)
    assert np.allclose(draco["bounds"]["max"], plain["bounds"]["max"], atol=0.5)
    assert np.ptp(np.array([draco["bounds"]["min"], draco["bounds"]["max"]]), axis=0).max() > 1


@pytest.mark.parametrize("model", MODELS)
def test_lower_lods_are_smaller_and_keep_the_structure(processed, inspected, model):
    item = processed[model]
    lods = sorted((r, p) for r, p in _outputs(item, "lod").items())
    summaries = [inspected[str(p)]["summary"] for _, p in lods]
    for higher, lower in pairwise(summaries):
        assert lower["triangles"] < higher["triangles"]
        for key in ("animations", "skins", "morphTargets", "materials", "primitives", "uvSets"):
            assert lower[key] == higher[key], (model, key)


def test_textures_are_power_of_two_webp_within_the_edge(processed, inspected):
    out = inspected[str(_outputs(processed["DamagedHelmet"])["lod0"])]["summary"]
    assert out["textureMimeTypes"] == ["image/webp"]
    assert "EXT_texture_webp" in out["extensionsRequired"]
    compat = inspected[str(_outputs(processed["DamagedHelmet"])["compat"])]["summary"]
    assert "image/webp" not in compat["textureMimeTypes"]  # for clients without WebP
    script = ("import { createIO } from './lib.mjs'; import sharp from 'sharp';"
              "const doc = await (await createIO()).read(process.argv[1]); const out = [];"
              "for (const t of doc.getRoot().listTextures()) { const m = await "
              "sharp(t.getImage()).metadata(); out.push([m.width, m.height]); }"
              "console.log(JSON.stringify(out));")
    for role, edge in (("lod0", 2048), ("lod1", 1024)):
        path = _outputs(processed["DamagedHelmet"])[role]
        sizes = json.loads(subprocess.run(
            ["node", "--input-type=module", "-e", script, str(path)], cwd=TOOLS,
            capture_output=True, check=True).stdout)
        assert sizes
        for w, h in sizes:
            assert w <= edge and h <= edge and w & (w - 1) == 0 and h & (h - 1) == 0


def test_every_output_passes_the_validator_with_no_new_error(processed):
    inputs = [str(processed[m]["entry"]) for m in MODELS]
    outputs = [(m, str(p)) for m in MODELS for p in _outputs(processed[m]).values()]
    run = subprocess.run(["node", "validate.mjs", *inputs, *(p for _, p in outputs)],
                         cwd=TOOLS, capture_output=True, check=True)
    reports = {r["file"]: r for r in json.loads(run.stdout)}
    assert len(outputs) >= 2 * len(MODELS) - 6  # every model has lod0, most more
    for model, path in outputs:
        allowed = {e["code"] for e in reports[str(processed[model]["entry"])]["errors"]}
        new = [e for e in reports[path]["errors"] if e["code"] not in allowed]
        assert not new, f"{model} {Path(path).name}: {new}"
    # The one upstream error of the corpus is carried, not introduced.
    clearcoat = reports[str(processed["ClearCoatTest"]["entry"])]
    assert clearcoat["numErrors"] == 1
    # The pipeline's own validator step passed every output and kept what it found with
    # the asset: the input's error, carried, and the validator's warnings.
    by_code = {w["code"]: w for w in processed["ClearCoatTest"]["result"]["warnings"]}
    carried = by_code["VALIDATOR_ERROR_CARRIED"]
    assert "MESH_PRIMITIVE_NO_TANGENT_SPACE at meshes[13].primitives[0].material" in \
        carried["message"]
    assert carried["validator"]["pointers"] == ["/meshes/13/primitives/0/material"]
    assert "MESH_PRIMITIVE_GENERATED_TANGENT_SPACE" in by_code["VALIDATOR_WARNING"]["message"]
    assert all(processed[m]["result"]["validation"]["files"] >= 2 for m in MODELS)


def test_thumbnails_show_the_model(processed):
    for model in ("Duck", "DamagedHelmet", "Fox"):
        thumb = next(Path(o["file"]) for o in processed[model]["result"]["outputs"]
                     if o["role"] == "thumbnail")
        with Image.open(thumb) as img:
            assert img.size == (256, 256)
            alpha = np.array(img.convert("RGBA"))[..., 3]
            assert 0.05 < (alpha > 0).mean() < 0.95  # a shape, not empty nor a full square


def test_bounding_box_is_normalized_to_the_base_centre(processed):
    for model in MODELS:
        bbox = processed[model]["result"]["bbox"]
        assert bbox["min"][1] == 0
        assert abs(bbox["min"][0] + bbox["max"][0]) < 1e-6
        assert abs(bbox["min"][2] + bbox["max"][2]) < 1e-6


def test_ktx2_textures_are_smaller_in_lower_levels(processed):
    """KTX2 (Basis Universal) textures are decoded, resized to the level's edge and encoded
    again (ETC1S; normal maps UASTC), so a phone's level is really smaller: 1% smaller than
    the top before, at least 4x now. They stay KTX2 (the browser test renders them)."""
    outputs = _outputs(processed["AnisotropyBarnLamp-KTX2"])
    top, lower = outputs["lod0"], outputs["lod1"]
    assert top.stat().st_size >= 4 * lower.stat().st_size, (top.stat().st_size,
                                                            lower.stat().st_size)
    script = ("import { createIO } from './lib.mjs'; import { describe } from './ktx2.mjs';"
              "const doc = await (await createIO()).read(process.argv[1]);"
              "console.log(JSON.stringify(doc.getRoot().listTextures().map((t) => ["
              "t.getMimeType(), describe(t.getImage())])));")
    for path, edge in ((top, 2048), (lower, 1024)):
        textures = json.loads(subprocess.run(
            ["node", "--input-type=module", "-e", script, str(path)], cwd=TOOLS,
            capture_output=True, check=True).stdout)
        assert len(textures) == 4
        for mime, info in textures:
            assert mime == "image/ktx2" and info is not None
            assert info["width"] == info["height"] == edge
        if path == lower:  # the normal map UASTC, the rest ETC1S; colour stays sRGB
            assert sorted(info["uastc"] for _, info in textures) == [False, False, False, True]
            assert sum(info["srgb"] for _, info in textures) == 1


def test_node_changes_by_quantization_are_reported(processed, inspected):
    """meshopt's quantization moves CesiumMilkTruck's meshes to new child nodes (6 -> 10
    nodes with the pipeline's root node); the report says so in words, with the figures."""
    item = processed["CesiumMilkTruck"]
    changed = next(w for w in item["result"]["warnings"] if w["code"] == "NODES_CHANGED")
    assert inspected[str(_outputs(item)["lod0"])]["summary"]["nodes"] == 10
    assert changed["nodes"]["input"] == 6 and changed["nodes"]["output"] == 10
    assert changed["nodes"]["added"] == 3
    message = changed["message"]
    assert "10 nodes where the input had 6" in message and "3 added by quantization" in message
    assert 'mesh "Wheels" of "Wheels" (scale 1.058)' in message
    box = next(w for w in processed["Box"]["result"]["warnings"] if w["code"] == "NODES_CHANGED")
    assert "nodes rescaled to hold quantized positions: node 1 (scale 1 -> 0.5)" in box["message"]
