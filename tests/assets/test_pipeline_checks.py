"""The pipeline's own checks, run in-process on small models: the Khronos validator in the
publish path, early refusals with plain messages, and the pipeline's report of what it
changed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from holobazaar.assets.pipeline import Refused, gltf
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.pipeline.process import process

from support.gltf import TRIANGLE, glb, triangle_glb


def run(tmp_path: Path, files: dict[str, bytes], options: Options | None = None) -> dict:
    upload, out = tmp_path / "upload", tmp_path / "out"
    upload.mkdir()
    out.mkdir()
    paths = []
    for name, data in files.items():
        (upload / name).write_bytes(data)
        paths.append(upload / name)
    return process(paths, upload, out, options or Options())


def read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (json_length,) = struct.unpack_from("<I", data, 12)
    document = json.loads(data[20:20 + json_length])
    rest = data[20 + json_length:]
    return document, rest[8:] if rest else b""


def test_an_output_with_an_error_the_input_did_not_have_is_refused(tmp_path, monkeypatch):
    """A stage that breaks the output (an accessor index out of range in lod0) is caught by
    the validator before anything is stored, with the validator's code, pointer and words."""
    real_run = gltf.run

    def breaking_run(job, job_file, **kwargs):
        report = real_run(job, job_file, **kwargs)
        lod0 = Path(job["outdir"]) / "lod0.glb"
        document, binary = read_glb(lod0)
        document["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 99
        lod0.write_bytes(glb(document, binary))
        return report

    monkeypatch.setattr(gltf, "run", breaking_run)
    with pytest.raises(Refused) as refused:
        run(tmp_path, {"triangle.glb": triangle_glb(TRIANGLE)})
    message = str(refused.value)
    assert "Khronos glTF validator" in message and "the input did not have" in message
    assert "lod0 UNRESOLVED_REFERENCE at meshes[0].primitives[0].attributes.POSITION" in message
    assert "Unresolved reference: 99." in message


def test_validator_warnings_are_kept_with_the_asset(tmp_path):
    """A triangle without indices or normals is valid; the validator's figures are in the
    report. (Warnings of real models: tests/assets/test_corpus.py.)"""
    result = run(tmp_path, {"triangle.glb": triangle_glb(TRIANGLE)})
    assert result["validation"]["files"] == 2  # the input and lod0, one Node process
    assert result["validation"]["ms"] < 10_000
