"""Loads `scenes/<market>/shows/*.yaml` and checks them against the market: every problem
comes back with file, line and path, like scene problems (`holobazaar validate`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

from pydantic import ValidationError

from holobazaar.scenes import schedule
from holobazaar.scenes.loader import translation_problems
from holobazaar.scenes.models import Display, MarketFile, ModelNode, iter_nodes
from holobazaar.scenes.schedule_format import WEEKDAYS, seconds_of
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
    problems.extend(doc.problem(p, m) for p, m in _start_problems(show, market))
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
                problems.extend(doc.problem(p, m) for p, m in translation_problems(
                    action, (*owner, "actions", a), market.market.languages))
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


def _start_problems(show: Show, market: MarketFile) -> list[tuple[PathKey, str]]:
    """Scheduled starts that name a local time their date does not have (the clocks go
    forward), or a weekly rule none of whose weekdays falls between its dates."""
    tz = schedule.zone(market.market.timezone)
    found: list[tuple[PathKey, str]] = []
    for index, start in enumerate(show.starts):
        path: PathKey = ("show", "starts", index)
        days: list[date] = []
        if start.at is not None and start.at.tzinfo is None:
            days, seconds = [start.at.date()], (start.at.hour * 3600 + start.at.minute * 60
                                                + start.at.second)
        elif start.time is not None and start.dates is not None:
            seconds = seconds_of(start.time)
            first, last = start.dates.start, start.dates.end
            days = [first + timedelta(days=n) for n in range(min((last - first).days, 366) + 1)
                    if start.days is None
                    or WEEKDAYS[(first + timedelta(days=n)).weekday()] in start.days]
            if not days:
                found.append((path, "this start never happens: none of its weekdays falls "
                              "between its dates"))
        for day in days:
            if not schedule.local_exists(day, seconds, tz):
                key = "at" if start.at is not None else "time"
                found.append(((*path, key), f"{day.isoformat()} {seconds // 3600:02d}:"
                              f"{seconds % 3600 // 60:02d} does not exist in {tz.key} (the "
                              "clocks go forward): choose a time outside the skipped hour"))
                break
    return found


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
