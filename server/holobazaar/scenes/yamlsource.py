"""YAML reading that remembers where every value came from, so that a problem found
later (by pydantic, by a cross-reference check, by the template compiler) can be reported
with its file and line."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from holobazaar.redact import exception_text

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(document)'}: {self.message}"


@dataclass
class SourceDocument:
    """Parsed YAML plus a map from document paths to 1-based line numbers."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        # Fall back to the nearest ancestor that has a known line.
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Bounds on what one document may expand to (aliases count each time they are used), so a
# "billion laughs" file or a self-referring alias is a Problem, not minutes of CPU.
MAX_DEPTH = 64
MAX_VALUES = 100_000
MAX_YAML_BYTES = 1 << 20  # one document or file (the demo's largest scene file: ~5 KB)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable) or isinstance(key, tuple):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or a mapping",
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # an int of over 4300 digits, a date that does not exist
            raise yaml.constructor.ConstructorError(
                None, None, f"unreadable value: {str(exc).split(';')[0]}", node.start_mark,
            ) from None
        except (TypeError, KeyError, AttributeError, OverflowError):
            # A tag its value cannot have: `!!timestamp x`, `!!bool x`, `!!set [1]`.
            raise yaml.constructor.ConstructorError(
                None, None, f"unreadable value for its tag {node.tag}", node.start_mark,
            ) from None


def parse_yaml(text: str, file: str) -> SourceDocument | Problem:
    """Parse one YAML document; a syntax error comes back as a Problem with its line."""
    if len(text) > MAX_YAML_BYTES or len(text.encode("utf-8", "replace")) > MAX_YAML_BYTES:
        return Problem(file, None, "", f"YAML larger than {MAX_YAML_BYTES} bytes")
    if text.count("[") + text.count("{") > MAX_DEPTH and _flow_depth(text) > MAX_DEPTH:
        return Problem(file, None, "", f"YAML nested deeper than {MAX_DEPTH} levels")
    loader = None
    try:
        loader = _UniqueKeyLoader(text)  # reads the text: refuses control characters
        node = loader.get_single_node()
        too_big = _too_big(node) if node is not None else None
        if too_big is not None:
            return Problem(file, too_big[0], "", too_big[1])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        return Problem(file, line, "", f"YAML syntax error: {reason}")
    except RecursionError:  # the parser's own recursion, before any node exists
        return Problem(file, None, "", f"YAML nested deeper than {MAX_DEPTH} levels")
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # A tag its value cannot have, found by a constructor that runs after
        # construct_object (`!!set [1]`).
        return Problem(file, None, "", f"YAML value unreadable ({type(exc).__name__})")
    finally:
        if loader is not None:
            loader.dispose()
    doc = SourceDocument(file, data)
    if node is not None:
        _record_lines(node, (), doc.lines)
    return doc


def _flow_depth(text: str) -> int:
    """How deep the document nests, from the parser's events (no recursion: the composer
    would recurse once per level). Stops counting past MAX_DEPTH; a syntax error is left
    for the real parse to report."""
    depth = deepest = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_DEPTH:
                    break
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return deepest


class _Shape(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        self.line, self.message = node.start_mark.line + 1, message


def _too_big(root: yaml.Node) -> tuple[int, str] | None:
    """(line, why) when the document nests deeper than MAX_DEPTH, expands (aliases
    included) to more than MAX_VALUES values, or an alias refers to itself. Linear in the
    distinct nodes: each node's expanded size is computed once."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}  # levels below a node, aliases expanded
    open_: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _Shape(node, f"YAML nested deeper than {MAX_DEPTH} levels")
        known = sizes.get(id(node))
        if known is not None:
            # An alias to a measured node: it nests as deep here as its height says.
            if depth + heights[id(node)] > MAX_DEPTH:
                raise _Shape(node, f"YAML nested deeper than {MAX_DEPTH} levels "
                             "(aliases expanded)")
            return known
        if id(node) in open_:
            raise _Shape(node, "a YAML alias refers to a value that contains it")
        open_.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_VALUES:
            raise _Shape(node, f"YAML expands to more than {MAX_VALUES} values (aliases "
                         "count each time they are used)")
        open_.discard(id(node))
        sizes[id(node)] = total
        heights[id(node)] = 1 + max((heights[id(c)] for c in children), default=-1)
        return total

    try:
        size(root, 1)
    except _Shape as shape:
        return shape.line, shape.message
    return None


def _record_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _record_lines(child, (*path, index), lines)


def read_yaml(path: Path, root: Path) -> SourceDocument | Problem:
    name = _display_name(path, root)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:  # before reading it
            return Problem(name, None, "", f"file is {size} bytes, over the limit of "
                           f"{MAX_YAML_BYTES} bytes for a YAML file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(name, None, "", f"cannot read file: {exception_text(exc)}")
    return parse_yaml(text, name)


def _display_name(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def pydantic_problems(doc: SourceDocument, error) -> list[Problem]:
    """Turn a pydantic ValidationError into Problems located in the YAML source."""
    problems = []
    for err in error.errors(include_url=False):
        path = _data_path(doc.data, err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}" if path else message
        elif err["type"] == "missing":
            message = f"missing required key {path[-1]!r}" if path else message
        problems.append(doc.problem(path, message))
    return problems


def _data_path(data: Any, loc: tuple) -> PathKey:
    """Drop the parts of a pydantic location that are not in the document (union tags,
    validator names) so the path points at what the curator wrote."""
    path: list[str | int] = []
    current = data
    tag_skipped_at: int | None = None
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif (isinstance(current, dict) and current.get("kind") == part
              and tag_skipped_at != len(path)):
            tag_skipped_at = len(path)  # a discriminated-union tag, once per level
            continue
        elif isinstance(part, str) and ("[" in part or part in {"str", "int", "float"}):
            continue  # validator or union member name
        else:
            path.append(part)  # a missing key: point at it by name under its parent
            current = None
    return tuple(path)
