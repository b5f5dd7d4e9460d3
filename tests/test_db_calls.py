"""One way to run blocking database work from async code (#25): `db.call(engine, fn, ...)`,
which runs `fn` in a worker thread unless `fn` is marked `@db.point` (then in place on
SQLite). `run_in_threadpool` stays for blocking work that is not the database: files,
images, PDFs, loading content. Checked on the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "holobazaar"
# Names that open database sessions: a module importing one does database work itself.
SESSION_NAMES = {"session_scope", "Session", "sessionmaker"}


def _is_run_in_threadpool(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Name) and func.id == "run_in_threadpool") or (
        isinstance(func, ast.Attribute) and func.attr == "run_in_threadpool")


def _mentions_engine(node: ast.AST) -> bool:
    return any((isinstance(n, ast.Name) and n.id == "engine")
               or (isinstance(n, ast.Attribute) and n.attr == "engine")
               for n in ast.walk(node))


def _opens_sessions(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and any(a.name in SESSION_NAMES for a in n.names)
               for n in ast.walk(tree))


def problems(source: str, where: str) -> list[str]:
    """Each run_in_threadpool call that does database work: it hands the function an
    engine (an argument named `engine` or `<something>.engine`, also inside a lambda), or
    its module opens sessions itself."""
    tree = ast.parse(source)
    sessions = _opens_sessions(tree)
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_run_in_threadpool(node)):
            continue
        arguments = [*node.args, *(k.value for k in node.keywords)]
        if any(_mentions_engine(a) for a in arguments):
            out.append(f"{where}:{node.lineno}: run_in_threadpool is given an engine: "
                       "use db.call(engine, fn, ...)")
        elif sessions:
            out.append(f"{where}:{node.lineno}: run_in_threadpool in a module that opens "
                       "database sessions: use db.call(engine, fn, ...)")
    return out


def test_database_work_goes_through_db_call() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "db.py":  # db.call itself
            continue
        found += problems(path.read_text(encoding="utf-8"),
                          str(path.relative_to(PACKAGE.parent)))
    assert not found, "\n".join(found)


def test_the_check_finds_database_work_in_a_thread_pool() -> None:
    assert problems("await run_in_threadpool(service.get, engine, 1)", "a") != []
    assert problems("await run_in_threadpool(self.load, market, e=self.engine)", "b") != []
    assert problems("await run_in_threadpool(lambda: read(scenes.engine))", "c") != []
    assert problems("from holobazaar.db import session_scope\n"
                    "async def f():\n    await run_in_threadpool(read)\n", "d") != []
    assert problems("await run_in_threadpool(files.fetch, digest, ext)", "e") == []
    assert problems("await db.call(engine, service.get, engine, 1)", "f") == []
