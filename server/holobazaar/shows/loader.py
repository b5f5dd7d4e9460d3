"""Loads `scenes/<market>/shows/*.yaml` and checks them against the market: every problem
comes back with file, line and path, like scene problems (`holobazaar validate`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from holobazaar.scenes.models import Display, MarketFile, ModelNode, iter_nodes
from holobazaar.scenes.yamlsource import (
    PathKey,
    Problem,
    SourceDocument,
    pydantic_problems,
    read_yaml,
)
from holobazaar.shows import timing
from holobazaar.shows.models import Show, ShowFile


def load_shows(market_dir: Path, content_dir: Path, market: MarketFile,
               displays: Mapping[str, Display], problems: list[Problem]) -> dict[str, Show]:
    shows: dict[str, Show] = {}
    files: dict[str, str] = {}
    for path in sorted((market_dir / "shows").glob("*.yaml")):
        doc = read_yaml(path, content_dir)
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), "expected a mapping at the top of the file"))
            continue
        try:
            parsed = ShowFile.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(pydantic_problems(doc, exc))
            continue
        show = parsed.show
        if show.id in shows:
            problems.append(doc.problem(("show", "id"), f"show {show.id!r} is already "
                                        f"defined in {files[show.id]}"))
            continue
        before = len(problems)
        check_show(doc, show, market, displays, problems)
        if len(problems) == before:
            shows[show.id] = show
            files[show.id] = doc.file
    return shows


def check_show(doc: SourceDocument, show: Show, market: MarketFile,
               displays: Mapping[str, Display], problems: list[Problem]) -> None:
    base: PathKey = ("show",)
    zones = {z.id for z in market.zones}
    if show.zone is not None and show.zone not in zones:
        problems.append(doc.problem((*base, "zone"), f"unknown zone {show.zone!r}"))
    numbers: set[str] = set()
    for index, cue in enumerate(show.cues):
        cue_path = (*base, "cues", index)
        entries = [(cue.number, (*cue_path, "number"), cue.actions, cue_path)]
        entries += [(child.number, (*cue_path, "group", j, "number"), child.actions,
                     (*cue_path, "group", j)) for j, child in enumerate(cue.group)]
        for number, number_path, actions, owner in entries:
            if number in numbers:
                problems.append(doc.problem(number_path, f"cue number {number!r} is used "
                                            "twice"))
            numbers.add(number)
            for a, action in enumerate(actions):
                _check_action(doc, (*owner, "actions", a), action, show, displays, problems)
    top = {cue.number for cue in show.cues}
    for index, cue in enumerate(show.cues):
        if cue.next is not None and cue.next not in top:
            problems.append(doc.problem((*base, "cues", index, "next"),
                                        f"unknown cue {cue.next!r}"))
    if any(p.file == doc.file for p in problems):
        return
    cycle = timing.find_cycle(show)
    if cycle:
        first = timing.index_of(show, cycle[0]) or 0
        problems.append(doc.problem((*base, "cues", first, "continue"),
                                    "continue loop never stops: " + " -> ".join(cycle)))


def _check_action(doc: SourceDocument, path: PathKey, action, show: Show,
                  displays: Mapping[str, Display], problems: list[Problem]) -> None:
    display_id = getattr(action, "display", None)
    if display_id is None:
        return
    display = displays.get(display_id)
    if display is None:
        problems.append(doc.problem((*path, "display"), f"unknown display {display_id!r}"))
        return
    if show.zone is not None and display.zone != show.zone:
        problems.append(doc.problem((*path, "display"), f"display {display_id!r} is in zone "
                                    f"{display.zone!r}, not in the show's zone {show.zone!r}"))
    node_id = getattr(action, "node", None)
    if node_id is None:
        return
    node = next((n for n, _ in iter_nodes(display.nodes) if n.id == node_id), None)
    if node is None:
        problems.append(doc.problem((*path, "node"), f"display {display_id!r} has no node "
                                    f"{node_id!r}"))
    elif action.kind == "animation" and not isinstance(node, ModelNode):
        problems.append(doc.problem((*path, "node"), f"node {node_id!r} is a {node.kind}; "
                                    "animations play on model nodes"))
