"""What the input carried vs. what an output carries: every difference that is a loss is a
warning by name. Compression and texture re-encoding are changes of container, not losses."""

from __future__ import annotations

from typing import Any

# Containers: replaced by ours (meshopt, quantization, WebP), not content.
TRANSPORT = {"KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_mesh_quantization",
             "EXT_texture_webp", "EXT_texture_avif"}
COUNTS = ("scenes", "cameras", "meshes", "primitives", "materials", "textures", "animations",
          "animationChannels", "skins", "joints", "skinnedPrimitives", "morphTargets",
          "uvSets", "colorSets", "textureTransforms")


def compare(before: dict[str, Any], after: dict[str, Any], *, lod: bool = False) -> list[dict]:
    """Warnings for everything `after` lost relative to `before`. For a simplified level of
    detail (`lod`) fewer triangles are the point, everything else must stay."""
    problems: list[dict] = []
    for key in COUNTS:
        if after.get(key, 0) < before.get(key, 0):
            problems.append({"code": "LOST_" + key.upper(),
                             "message": f"{key}: {before[key]} in the input, {after[key]} "
                                        "in the output"})
    for key in ("attributes", "materialExtensions"):
        missing = sorted(set(before.get(key, [])) - set(after.get(key, [])))
        if missing:
            problems.append({"code": "LOST_" + key.upper(),
                             "message": f"{key} missing from the output: {', '.join(missing)}"})
    missing = sorted(set(before.get("extensionsUsed", [])) - set(after.get("extensionsUsed", []))
                     - TRANSPORT)
    if missing:
        problems.append({"code": "LOST_EXTENSIONS",
                         "message": "extensions missing from the output: " + ", ".join(missing)})
    if not lod and after.get("triangles", 0) != before.get("triangles", 0):
        problems.append({"code": "TRIANGLES_CHANGED",
                         "message": f"triangles: {before.get('triangles')} in the input, "
                                    f"{after.get('triangles')} in the output"})
    return problems
