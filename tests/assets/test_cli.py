"""`holobazaar assets ingest` as a curator runs it: a real subprocess over OBJ (+MTL and a
texture), STL, PLY, GLB and an image, a refusal among them, the per-asset report, budget
warnings, and `validate` naming the heaviest assets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from holobazaar import db
from holobazaar.assets import service
from holobazaar.assets.pipeline.inputs import referenced_files

from support.content import REPO, copy_content
from support.gltf import CORPUS, corpus_entry

HOLOBAZAAR = [sys.executable, "-m", "holobazaar"]


def run(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run([*HOLOBAZAAR, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd or REPO)


def make_sources(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    box = trimesh.creation.box((100, 200, 50))  # millimetres, as CAD exports them
    stl = folder / "crate.stl"
    box.export(stl)
    ply = folder / "pebble.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.05).export(ply)
    obj_dir = folder / "pumpkin"
    obj_dir.mkdir()
    Image.new("RGB", (64, 64), (230, 120, 20)).save(obj_dir / "skin.png")
    (obj_dir / "pumpkin.mtl").write_text("newmtl skin\nKd 1 0.5 0.1\nmap_Kd skin.png\n")
    sphere = trimesh.creation.uv_sphere(radius=0.2, count=(24, 24))
    lines = ["mtllib pumpkin.mtl", "usemtl skin"]
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in sphere.vertices]
    lines += [f"vt {u:.4f} {v:.4f}" for u, v in np.c_[sphere.vertices[:, 0] + 0.5,
                                                     sphere.vertices[:, 1] + 0.5]]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in sphere.faces]
    (obj_dir / "pumpkin.obj").write_text("\n".join(lines) + "\n")
    photo = folder / "stall-photo.png"
    Image.new("RGB", (500, 300), (20, 140, 60)).save(photo)
    evil = folder / "evil"
    evil.mkdir()
    (evil / "evil.obj").write_text("mtllib ../../../../etc/passwd\nv 0 0 0\nv 1 0 0\n"
                                   "v 0 1 0\nf 1 2 3\n")
    return {"stl": stl, "ply": ply, "obj": obj_dir / "pumpkin.obj", "png": photo,
            "evil": evil / "evil.obj"}


def test_ingest_batch_report_and_refusal(tmp_path):
    sources = make_sources(tmp_path / "src")
    data = tmp_path / "var"
    result = run("assets", "ingest", str(sources["stl"]), str(sources["ply"]),
                 str(sources["obj"]), str(sources["png"]), str(sources["evil"]),
                 "--units", "mm", "--data-dir", str(data))
    assert result.returncode == 1, result.stderr  # one refusal
    out = result.stdout
    assert "crate.stl: crate (" in out and "lod0" in out
    assert "pumpkin.obj: pumpkin (" in out and "compat" in out  # it has a texture
    assert "stall-photo.png: stall-photo (" in out and "image" in out
    assert "evil.obj: refused:" in out and "outside the upload" in out
    assert "UNITS_ASSUMED" in out
    engine = db.make_engine(f"sqlite:///{data / 'holobazaar.db'}")
    assets = {a.name: a for a in service.list_assets(engine)}
    engine.dispose()
    # The refusal is recorded (its status and message), with no files.
    assert assets.pop("evil").files == []
    assert set(assets) == {"crate", "pebble", "pumpkin", "stall-photo"}
    assert all(a.status == "ready" for a in assets.values())
    crate = assets["crate"]
    # 100 x 200 x 50 mm, read with --units mm: 0.1 x 0.2 x 0.05 m, standing on y = 0
    size = np.array(crate.bbox["max"]) - np.array(crate.bbox["min"])
    assert np.allclose(sorted(size), [0.05, 0.1, 0.2], atol=1e-4)
    assert crate.bbox["min"][1] == 0
    pumpkin = assets["pumpkin"]
    assert pumpkin.triangles == len(trimesh.creation.uv_sphere(count=(24, 24)).faces)
    assert {f.role for f in pumpkin.files} >= {"lod0", "lod1", "compat", "thumbnail"}
    # Same files again: stored once, nothing processed.
    again = run("assets", "ingest", str(sources["stl"]), "--units", "mm",
                "--data-dir", str(data))
    assert again.returncode == 0, again.stderr
    assert f"({crate.id[:12]})" in again.stdout


def test_ingest_size_and_up_axis(tmp_path):
    source = tmp_path / "tall.stl"
    trimesh.creation.box((1, 1, 4)).export(source)  # Z up, 4 units tall
    data = tmp_path / "var"
    result = run("assets", "ingest", str(source), "--up", "z", "--size", "0.5",
                 "--data-dir", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    engine = db.make_engine(f"sqlite:///{data / 'holobazaar.db'}")
    (asset,) = service.list_assets(engine)
    engine.dispose()
    height = asset.bbox["max"][1] - asset.bbox["min"][1]
    assert abs(height - 0.5) < 1e-6  # Z became Y, the largest dimension is 0.5 m


def test_ingest_names_the_heaviest_assets_over_budget(tmp_path):
    if not CORPUS.is_dir():
        return
    content = copy_content(tmp_path / "content")
    data = tmp_path / "var"
    env = {"HOLOBAZAAR_CONTENT_DIR": str(content), "HOLOBAZAAR_DISPLAY_TRIANGLE_BUDGET": "5000"}
    result = run("assets", "ingest", str(corpus_entry("Duck")), "--market", "greenhaven",
                 "--name", "tomato", "--data-dir", str(data), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "budget: greenhaven/zonneveld-greens:" in result.stdout
    assert "heaviest: tomato (4,212 triangles" in result.stdout
    bad = run("assets", "ingest", str(tmp_path / "nope.glb"), "--data-dir", str(data))
    assert bad.returncode == 2  # typer: the path does not exist


def test_validate_warns_over_budget(tmp_path):
    content = copy_content(tmp_path / "content")
    result = run("validate", str(content), env={"HOLOBAZAAR_DISPLAY_TRIANGLE_BUDGET": "2000"})
    assert result.returncode == 0, result.stdout  # a warning, not a failure
    lines = [line for line in result.stdout.splitlines() if "over budget" in line]
    assert lines and all("heaviest:" in line for line in lines)
    assert run("validate", str(content)).stdout.count("over budget") == 0


def test_ingest_a_gltf_takes_only_the_files_it_references(tmp_path):
    """`ingest FILE.gltf` uploads the glTF, its buffers and images by uri, nothing else of
    the folder: an unrelated PNG beside it changes neither the upload nor the asset id. A
    folder is taken as a whole."""
    if not CORPUS.is_dir():
        return
    entry = corpus_entry("BoxTextured")
    referenced = [entry, *(entry.parent / name for name in ("BoxTextured0.bin",
                                                             "CesiumLogoFlat.png"))]
    beside, alone, folder = tmp_path / "beside", tmp_path / "alone", tmp_path / "folder"
    for target in (beside, alone):
        target.mkdir()
        for p in referenced:
            (target / p.name).write_bytes(p.read_bytes())
    # The folder: a model whose outputs carry a validator warning (a generated tangent space).
    spaces = corpus_entry("BoxWithSpaces")
    folder.mkdir()
    for p in [spaces, *referenced_files(spaces)]:
        (folder / p.name).write_bytes(p.read_bytes())
    Image.new("RGB", (32, 32), (200, 30, 30)).save(beside / "stall-photo.png")
    (beside / "old").mkdir()
    (beside / "old" / "unused.bin").write_bytes(b"\0" * 64)
    data = tmp_path / "var"
    result = run("assets", "ingest", str(beside / entry.name), str(alone / entry.name),
                 str(folder), "--data-dir", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    engine = db.make_engine(f"sqlite:///{data / 'holobazaar.db'}")
    assets = service.list_assets(engine)
    engine.dispose()
    # The .gltf beside a PNG and the .gltf alone: one asset; the folder: its own name.
    assert sorted(a.name for a in assets) == ["boxtextured", "folder"]
    box = next(a for a in assets if a.name == "boxtextured")
    assert box.input_bytes == sum(p.stat().st_size for p in referenced)
    assert result.stdout.count(f"({box.id[:12]})") == 2
    assert all(a.status == "ready" for a in assets)
    assert "warning VALIDATOR_WARNING: validator warning in lod0" in result.stdout
    assert "MESH_PRIMITIVE_GENERATED_TANGENT_SPACE" in result.stdout
