"""The floor plan (shared/DESIGN.md, "Layers"), checked on the source: arrows point down.

Imports are read statically with `ast` (module level and inside functions, plus
`importlib.import_module("...")` string literals), so a delayed import hides nothing.
Rules: no cycle between modules, nor between packages; `stream/` imports no domain and no
`web/`; no domain imports `web/`; `scenes/` imports no other domain; only `cli.py` imports
a domain's `cli.py`; `config.py` imports no domain (nor `stream/`, `tls/`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "holobazaar"
TOP = "holobazaar"

# The ground floor and the stream: everything else under holobazaar/ is a domain or web/.
GROUND = {"__init__", "__main__", "canonical", "channels", "cli", "commands", "config", "db",
          "dependencies", "edges", "i18n", "jsonlimits", "locale", "logs", "redact",
          "redis_connection", "validation", "visitor_text", "migrations"}
NOT_DOMAINS = GROUND | {"stream", "web", "tls", "cluster"}

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
            if "migrations" not in p.relative_to(PACKAGE).parts}


def _imported(module: str, path: Path) -> set[str]:
    return _imports_in(module, path.name == "__init__.py", path.read_text(encoding="utf-8"))


def _imports_in(module: str, is_package: bool, source: str) -> set[str]:
    """holobazaar modules `module` imports (resolved to a module when the name is one)."""
    known = _modules()
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    found: set[str] = set()
    # A module that uses importlib may name its targets in a table ("pkg.mod:function")
    # rather than at the call: every string literal naming a holobazaar module counts.
    dynamic = any(isinstance(n, ast.Import | ast.ImportFrom)
                  and "importlib" in {a.name for a in n.names} | {getattr(n, "module", None)}
                  for n in ast.walk(tree))
    for node in ast.walk(tree):
        names: Iterable[str] = ()
        if isinstance(node, ast.Import):
            names = (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = (f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            names = (node.args[0].value,)
        elif (dynamic and isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith(TOP + ".")):
            names = (node.value.partition(":")[0],)
        for name in names:
            while name and name not in known:  # `import holobazaar.x.y` -> deepest module
                name = name.rpartition(".")[0]
            if name.startswith(TOP + ".") and name != module:
                found.add(name)
    return found


@cache
def _graph() -> dict[str, frozenset[str]]:
    return {m: frozenset(_imported(m, p)) for m, p in _modules().items()}


def _unit(module: str) -> str:
    """The package a module belongs to for the package rules (`holobazaar.<first part>`)."""
    return ".".join(module.split(".")[:2])


def _kind(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def _is_domain(module: str) -> bool:
    return _kind(module) not in NOT_DOMAINS


def _cycles(graph: dict[str, set[str]]) -> set[str]:
    """Each group of nodes on a common cycle (a strongly connected part, Tarjan), as its
    sorted members joined by spaces."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    parts: set[str] = set()
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.add(" ".join(sorted(part)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return parts


def _broken() -> set[tuple[str, str, str]]:
    graph = {m: set(out) for m, out in _graph().items()}
    broken: set[tuple[str, str, str]] = set()
    for part in _cycles(graph):
        broken.add(("module-cycle", part, ""))
    packages: dict[str, set[str]] = {}
    for m, out in graph.items():
        packages.setdefault(_unit(m), set()).update(_unit(o) for o in out if _unit(o) != _unit(m))
    # The entry points sit above everything they start: cli.py (and __main__) import the
    # whole house by design, so they are leaves of the package graph, not part of a cycle.
    for name in ("holobazaar.cli", "holobazaar.__main__"):
        packages.pop(name, None)
    for part in _cycles(packages):
        broken.add(("package-cycle", part, ""))
    for m, out in graph.items():
        for o in out:
            if _kind(m) == "stream" and (_is_domain(o) or _kind(o) == "web"):
                broken.add(("stream-imports-above", m, o))
            if _is_domain(m) and _kind(o) == "web":
                broken.add(("domain-imports-web", m, o))
            if _kind(m) == "scenes" and _is_domain(o) and _kind(o) != "scenes":
                broken.add(("scenes-imports-domain", m, o))
            if o.endswith(".cli") and o != "holobazaar.cli" and m != "holobazaar.cli":
                broken.add(("imports-a-domain-cli", m, o))
            if m == "holobazaar.config" and (_is_domain(o) or _kind(o) in {"stream", "tls",
                                                                           "web", "cluster"}):
                broken.add(("config-imports-above", m, o))
    return broken


def test_the_graph_sees_delayed_and_importlib_imports() -> None:
    """The walker itself: delayed, relative and importlib imports all count."""
    source = """
import importlib
from . import hub

TABLE = {"x": "holobazaar.pulse.bindings:sample_binding"}

def later():
    from holobazaar.web import pages
    importlib.import_module("holobazaar.scenes.loader")
"""
    assert _imports_in("holobazaar.stream.example", False, source) == {
        "holobazaar.stream.hub", "holobazaar.pulse.bindings", "holobazaar.web.pages",
        "holobazaar.scenes.loader"}
    graph = _graph()
    assert "holobazaar.stream.broker_redis" in graph["holobazaar.stream.broker_factory"]
    assert len(graph) > 100


def test_imports_point_down() -> None:
    broken = sorted(_broken())
    assert not broken, "imports that break the floor plan (shared/DESIGN.md, Layers):\n" + \
        "\n".join(f"  {rule}: {a}" + (f" -> {b}" if b else "") for rule, a, b in broken)
