"""Per-display budgets: triangles and bytes of the models a display shows, against limits
sized for mid-range phones. Over budget is a warning naming the heaviest assets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from holobazaar.assets.pipeline import Refused
from holobazaar.assets.pipeline.inputs import read_glb
from holobazaar.scenes.compositor import AssetRef
from holobazaar.scenes.loader import Content
from holobazaar.scenes.models import ModelNode, iter_nodes

HEAVIEST = 3


@dataclass(frozen=True)
class Cost:
    triangles: int
    bytes: int


def glb_triangles(path: Path) -> int:
    """Triangles a GLB's default scene draws (instanced meshes count each time), from its
    JSON alone."""
    try:
        doc, _ = read_glb(path)
    except Refused:
        return 0
    accessors = doc.get("accessors") or []
    meshes = doc.get("meshes") or []
    nodes = doc.get("nodes") or []

    def mesh_triangles(mesh: dict) -> int:
        total = 0
        for prim in mesh.get("primitives") or []:
            mode = prim.get("mode", 4)
            index = prim.get("indices", (prim.get("attributes") or {}).get("POSITION"))
            if not isinstance(index, int) or not 0 <= index < len(accessors):
                continue
            n = accessors[index].get("count", 0)
            total += n // 3 if mode == 4 else max(0, n - 2) if mode in (5, 6) else 0
        return total

    scenes = doc.get("scenes") or [{"nodes": list(range(len(nodes)))}]
    scene = scenes[doc.get("scene", 0)] if isinstance(doc.get("scene", 0), int) and \
        doc.get("scene", 0) < len(scenes) else scenes[0]
    total, stack, seen = 0, list(scene.get("nodes") or []), 0
    while stack and seen < 100_000:  # bounded: a cyclic file must not hang validate
        seen += 1
        i = stack.pop()
        if not isinstance(i, int) or not 0 <= i < len(nodes):
            continue
        node = nodes[i]
        if isinstance(node.get("mesh"), int) and 0 <= node["mesh"] < len(meshes):
            total += mesh_triangles(meshes[node["mesh"]])
        stack.extend(node.get("children") or [])
    return total


def costs_of(content, stored: Mapping[str, Mapping[str, AssetRef]] | None = None
             ) -> dict[str, dict[str, Cost]]:
    """market -> asset name -> cost of its most detailed level."""
    base: dict[str, Cost] = {}
    for name, asset in content.assets.items():
        if asset.suffix == ".glb":
            base[name] = Cost(glb_triangles(asset.path), asset.size)
    out: dict[str, dict[str, Cost]] = {}
    for market_id in content.markets:
        costs = dict(base)
        for name, ref in (stored or {}).get(market_id, {}).items():
            if ref.lods:
                costs[name] = Cost(ref.lods[0].triangles, ref.lods[0].bytes)
        out[market_id] = costs
    return out


def over_budget(content, triangle_budget: int, byte_budget: int,
                stored: Mapping[str, Mapping[str, AssetRef]] | None = None,
                only_assets: Iterable[str] | None = None) -> list[str]:
    """One line per display over budget (models counted once per node that shows them,
    bytes once per distinct asset), naming the heaviest assets."""
    costs = costs_of(content, stored)
    wanted = set(only_assets) if only_assets is not None else None
    lines = []
    for market_id, market in sorted(content.markets.items()):
        for display_id, display in sorted(market.displays.items()):
            names = [n.asset for n, _ in iter_nodes(display.nodes)
                     if isinstance(n, ModelNode) and n.asset in costs[market_id]]
            if wanted is not None and not wanted & set(names):
                continue
            triangles = sum(costs[market_id][n].triangles for n in names)
            size = sum(costs[market_id][n].bytes for n in set(names))
            if triangles <= triangle_budget and size <= byte_budget:
                continue
            heaviest = sorted(set(names), key=lambda n: (-costs[market_id][n].triangles,
                                                         -costs[market_id][n].bytes))
            named = ", ".join(f"{n} ({costs[market_id][n].triangles:,} triangles, "
                              f"{costs[market_id][n].bytes:,} B)" for n in heaviest[:HEAVIEST])
            lines.append(f"{market_id}/{display_id}: {triangles:,} triangles (budget "
                         f"{triangle_budget:,}), {size:,} B (budget {byte_budget:,}); "
                         f"heaviest: {named}")
    return lines


def report_for_assets(settings, engine, assets,
                      load_content: Callable[[Path], Content]) -> list[str]:
    """After an ingest: displays using the new assets that are now over budget, and assets
    that alone exceed a display's budget. `load_content`: the server's content loader
    (holobazaar.content.load_content)."""
    from holobazaar.assets.service import stored_refs

    lines = []
    for asset in assets:
        if asset.status == "ready" and (asset.triangles > settings.display_triangle_budget
                                        or asset.output_bytes > settings.display_byte_budget):
            lines.append(f"{asset.name} alone is {asset.triangles:,} triangles, "
                         f"{asset.output_bytes:,} B: over one display's budget "
                         f"({settings.display_triangle_budget:,} triangles, "
                         f"{settings.display_byte_budget:,} B)")
    if settings.content_dir.is_dir() and (settings.content_dir / "scenes").is_dir():
        content = load_content(settings.content_dir)
        lines += over_budget(content, settings.display_triangle_budget,
                             settings.display_byte_budget, stored_refs(engine),
                             {a.name for a in assets})
    return lines
