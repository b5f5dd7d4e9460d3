"""One asset from uploaded files to output files: the function the worker process runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from holobazaar.assets.pipeline import Refused, gltf, images, preserve, thumbnail, validator
from holobazaar.assets.pipeline.inputs import check_entry, choose_entry, extract_zip
from holobazaar.assets.pipeline.options import UNITS, Options


def process(files: list[Path], upload_dir: Path, out_dir: Path, options: Options) -> dict:
    """Returns {kind, outputs: [{role, file, triangles}], bbox, warnings, input, validation,
    ms}.
    Raises Refused with a message for the curator."""
    started = time.perf_counter()
    expanded: list[Path] = []
    for f in files:
        if f.suffix.lower() == ".zip":
            expanded += extract_zip(f, upload_dir / (f.stem + ".unzipped"), options.limits)
            f.unlink()
        else:
            expanded.append(f)
    for f in expanded:
        if f.stat().st_size > options.limits.max_file_bytes:
            raise Refused(f"{f.name}: {f.stat().st_size} bytes, over the limit of "
                          f"{options.limits.max_file_bytes}")
    entry = choose_entry(expanded)
    check_entry(entry, upload_dir, options.limits)
    # For a zip, the model inside it: `pumpkin.zip/scan/pumpkin.obj`.
    entry_name = entry.path.relative_to(upload_dir).as_posix().replace(".unzipped/", ".zip/")
    if entry.kind == "image":
        outputs = images.process_image(entry.path, out_dir, options.max_edge)
        return {"kind": "image", "outputs": outputs, "bbox": None, "warnings": [],
                "input": None, "entry": entry_name,
                "ms": round((time.perf_counter() - started) * 1000)}
    warnings: list[dict] = []
    source = entry.path
    if entry.kind == "mesh":
        from holobazaar.assets.pipeline import meshes  # trimesh: only for OBJ/STL/PLY

        source = out_dir / "converted.glb"
        warnings += meshes.to_glb(entry.path, source, options.limits.max_vertices)
    job: dict[str, Any] = {
        "input": str(source), "outdir": str(out_dir), "maxEdge": options.max_edge,
        "lodEdge": options.lod_edge, "ratios": list(options.ratios),
        "minTriangles": options.min_triangles, "up": options.up,
        "unitScale": UNITS[options.units], "size": options.size,
        "thumbnailTriangles": 20000, "quality": options.quality,
        "meshoptLevel": options.meshopt_level,
        "maxImagePixels": options.limits.max_image_pixels,
    }
    report = gltf.run(job, out_dir / "job.json", timeout=options.timeout,
                      memory_bytes=options.memory_bytes)
    # An OBJ/STL/PLY has no nodes of its own: the converted file's node changes are ours.
    warnings += [w for w in report["warnings"]
                 if not (entry.kind == "mesh" and w["code"] == "NODES_CHANGED")]
    outputs = []
    for out in report["outputs"]:
        lost = preserve.compare(report["input"], out["summary"], lod=out["role"] != "lod0")
        for problem in lost:
            warnings.append({**problem, "message": f"{out['role']}: {problem['message']}"})
        outputs.append({k: out[k] for k in ("role", "file", "triangles")})
    # Nothing is used before the Khronos validator has passed every output.
    found, validation = validator.check(
        entry.path if entry.kind in ("gltf", "glb") else None,
        [(o["role"], Path(o["file"])) for o in outputs], timeout=options.timeout,
        memory_bytes=options.memory_bytes)
    warnings += found
    thumb = out_dir / "thumbnail.png"
    thumbnail.render(out_dir / "thumb.bin", thumb)
    outputs.append({"role": "thumbnail", "file": str(thumb), "triangles": 0})
    return {"kind": "model", "outputs": outputs, "bbox": report["bbox"], "warnings": warnings,
            "input": report["input"], "entry": entry_name, "validation": validation,
            "ms": round((time.perf_counter() - started) * 1000)}
