"""The Khronos glTF validator on every output of an asset before it can be used.

One Node process (tools/gltf/validate.mjs) checks the input and all the outputs of one
asset; its start-up costs about 0.1 s, small beside the processing, so no process is kept
alive between assets. An output error the input did not have (by validator code) refuses
the asset with the validator's own words; errors the input already had are carried and
reported, and validator warnings about the outputs are kept with the asset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from holobazaar.assets.pipeline import Refused, gltf

MAX_PLACES = 3  # pointers quoted per warning; the rest are counted


def run(paths: list[Path], timeout: float, memory_bytes: int) -> dict[str, dict[str, Any]]:
    """{file: {errors: [{code, pointer, message}], warnings: [...]}} for each path."""
    reports = gltf.run_tool("validate.mjs", [str(p) for p in paths], timeout=timeout,
                            memory_bytes=memory_bytes, doing="the glTF validator",
                            failed="the glTF validator could not read the outputs")
    return {r["file"]: r for r in reports}


def readable(pointer: str) -> str:
    """A JSON pointer the way the pipeline's other messages name places:
    `/meshes/0/primitives/1/attributes/POSITION` -> `meshes[0].primitives[1].attributes.
    POSITION` (and a message with a leading `/...` would read as a server path)."""
    out = ""
    for part in pointer.strip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() else f".{part}" if out else part
    return out


def describe(issue: dict) -> str:
    """`UNRESOLVED_REFERENCE at meshes[0].primitives[0].attributes.POSITION: Unresolved
    reference: 99.`"""
    where = f" at {readable(issue['pointer'])}" if issue.get("pointer") else ""
    return f"{issue['code']}{where}: {issue['message']}"


def check(source: Path | None, outputs: list[tuple[str, Path]], *, timeout: float,
          memory_bytes: int) -> tuple[list[dict], dict[str, Any]]:
    """Validate `outputs` ([(role, file)]) against the glTF `source` (None when the input
    was not glTF: then every error is new). Returns (warnings for the asset's report,
    figures); raises Refused naming the first new error of each output."""
    started = time.perf_counter()
    reports = run([*([source] if source else []), *(p for _, p in outputs)], timeout,
                  memory_bytes)
    baseline = reports[str(source)] if source else {"errors": [], "warnings": []}
    allowed = {e["code"] for e in baseline["errors"]}
    refused = []
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for role, path in outputs:
        report = reports[str(path)]
        new = [e for e in report["errors"] if e["code"] not in allowed]
        if new:
            more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
            refused.append(f"{role} {describe(new[0])}{more}")
        for severity, issues in (("carried", [e for e in report["errors"]
                                               if e["code"] in allowed]),
                                 ("warning", report["warnings"])):
            for issue in issues:
                item = grouped.setdefault((severity, issue["code"], issue["message"]),
                                          {"roles": [], "pointers": []})
                if role not in item["roles"]:
                    item["roles"].append(role)
                if issue.get("pointer") and issue["pointer"] not in item["pointers"]:
                    item["pointers"].append(issue["pointer"])
    if refused:
        raise Refused("the processed model fails the Khronos glTF validator with an error "
                      "the input did not have: " + "; ".join(refused))
    warnings = []
    for (severity, code, message), item in grouped.items():
        places = [readable(p) for p in item["pointers"][:MAX_PLACES]]
        where = f" at {', '.join(places)}" if places else ""
        if len(item["pointers"]) > MAX_PLACES:
            where += f" and {len(item['pointers']) - MAX_PLACES} more places"
        prefix = ("an error the input already had, carried" if severity == "carried"
                  else "validator warning")
        warnings.append({
            "code": "VALIDATOR_ERROR_CARRIED" if severity == "carried" else "VALIDATOR_WARNING",
            "message": f"{prefix} in {', '.join(item['roles'])}: {code}{where}: {message}",
            "validator": {"code": code, "pointers": item["pointers"], "outputs": item["roles"],
                          "message": message}})
    figures = {"files": len(reports), "ms": round((time.perf_counter() - started) * 1000)}
    return warnings, figures
