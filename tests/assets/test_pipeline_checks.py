"""The pipeline's own checks, run in-process on small models: the Khronos validator in the
publish path, early refusals with plain messages, and the pipeline's report of what it
changed."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pytest
from PIL import Image

from holobazaar.assets.pipeline import Refused, gltf, inputs
from holobazaar.assets.pipeline.inputs import Limits
from holobazaar.assets.pipeline.options import Options
from holobazaar.assets.pipeline.process import process

from support.gltf import CORPUS, TRIANGLE, corpus_entry, glb, png_header, triangle_glb


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


def test_an_obj_coordinate_beyond_float32_is_refused_early_and_quietly(tmp_path, capfd):
    """1e39 is finite in Python but infinity as the glTF's 32-bit float: refused before
    the conversion, naming the vertex and the value, and nothing is printed to stderr
    (trimesh's cast warned there, and the glTF tool failed on "Infinity" in the JSON)."""
    obj = b"# a scan\nv 0 0 0\nv 1e39 0 0\nv 0 1 0\nf 1 2 3\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Refused) as refused:
            run(tmp_path, {"scan.obj": obj})
    assert str(refused.value) == ("scan.obj: vertex 2 (line 3): its x coordinate is 1e+39, "
                                  "beyond the largest coordinate a glTF file holds "
                                  "(3.403e+38)")
    assert caught == []
    assert capfd.readouterr().err == ""


def test_refusals_say_what_is_wrong_in_plain_words_with_the_limit(tmp_path):
    limits = Limits(max_vertices=100, max_image_pixels=64 * 64)
    # A chunk type is named, not shown as Python bytes (was: chunk b'JSON').
    past_end = tmp_path / "past.glb"
    past_end.write_bytes(struct.pack("<4sII", b"glTF", 2, 28)
                         + struct.pack("<I4s", 999, b"JSON") + b"{}      ")
    with pytest.raises(Refused) as refused:
        inputs.read_glb(past_end)
    assert str(refused.value) == ("past.glb: the JSON chunk claims 999 bytes at byte 20, "
                                  "past the end of the file")
    # The accessor-count limit is named with its value.
    big = tmp_path / "big.glb"
    big.write_bytes(triangle_glb(TRIANGLE, accessor_count=301))
    with pytest.raises(Refused) as refused:
        inputs.check_entry(inputs.Entry(big, "glb"), tmp_path, limits)
    assert str(refused.value) == ("big.glb: accessors[0]: 301 elements, over the limit of 300 "
                                  "per accessor (three times the vertex limit of 100)")
    # Images: the documented edge limit, not a pixel count (nor Pillow's own text).
    image = tmp_path / "wide.png"
    Image.new("L", (65, 64)).save(image)
    with pytest.raises(Refused) as refused:
        inputs.check_image_header(image, image.name, limits)
    assert str(refused.value) == ("wide.png: 65x64 pixels, more than the limit of 64x64 "
                                  "pixels (a decompression bomb?)")
    bomb = tmp_path / "bomb.png"  # a header claiming 60000x60000: over Pillow's limit too
    bomb.write_bytes(png_header(60_000, 60_000))
    with pytest.raises(Refused) as refused:
        inputs.check_image_header(bomb, bomb.name, Limits())
    message = str(refused.value)
    assert "8192x8192 pixels" in message and "DOS" not in message, message


@pytest.mark.skipif(not (CORPUS / "AnisotropyBarnLamp-KTX2").is_dir(), reason="no corpus")
def test_a_ktx2_texture_over_the_image_limit_is_refused_naming_it(tmp_path):
    """KTX2 textures are decoded to be resized: the image limit applies to them too."""
    entry = corpus_entry("AnisotropyBarnLamp-KTX2")
    files = {p.name: p.read_bytes() for p in [entry, *inputs.referenced_files(entry)]}
    with pytest.raises(Refused) as refused:
        run(tmp_path, files, Options(limits=Limits(max_image_pixels=1024 * 1024)))
    assert str(refused.value).endswith(": 2048x2048 pixels, more than the limit of 1024x1024 "
                                       "pixels (a decompression bomb?)")
    assert str(refused.value).startswith("KTX2 texture ")
