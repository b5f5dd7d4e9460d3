"""Cue timing semantics, as pure functions of the show and a server time (milliseconds).

QLab's model: GO on a cue waits its pre-wait, then its actions start and run for its
duration. Its continue mode decides what happens next: `none` stops the sequence (the next
cue stands by for the next GO), `auto-continue` fires the next cue `post-wait` after this
cue started, `auto-follow` fires it when this cue's duration is over. Group children fire
with their group, each after its own pre-wait. Every instant is computed from the GO
instant, never from when a timer happened to wake, so waits do not accumulate jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

from holobazaar.shows.models import Cue, Show

MS = 1000.0


class CycleError(ValueError):
    """Auto-continue / auto-follow cues that lead back to themselves (never ends)."""


@dataclass(frozen=True)
class Firing:
    """One cue (or group child) firing: its actions start at `start` and end at `end`."""

    index: int  # the cue's index in the show (a child has its group's index)
    number: str
    name: str
    start: float
    end: float
    child: bool = False


def cue_length_ms(cue: Cue) -> float:
    """How long a cue runs: its duration or, for a group, until its last child ends."""
    length = cue.duration * MS
    for child in cue.group:
        length = max(length, (child.pre_wait + child.duration) * MS)
    return length


def index_of(show: Show, number: str) -> int | None:
    for index, cue in enumerate(show.cues):
        if cue.number == number:
            return index
    return None


def next_index(show: Show, index: int) -> int | None:
    """The cue that follows `index`: its `next`, or the one below it in the list."""
    cue = show.cues[index]
    if cue.next is not None:
        return index_of(show, cue.next)
    return index + 1 if index + 1 < len(show.cues) else None


def continue_time(cue: Cue, start: float) -> float | None:
    """When the next cue fires by itself, or None when it waits for a GO."""
    if cue.continue_ == "auto-continue":
        return start + cue.post_wait * MS
    if cue.continue_ == "auto-follow":
        return start + cue_length_ms(cue)
    return None


def sequence(show: Show, index: int, go_time: float) -> tuple[list[Firing], int | None]:
    """Everything one GO of cue `index` at `go_time` fires, and the cue standing by after
    it. Raises CycleError for a loop of continues (validation refuses those files)."""
    firings: list[Firing] = []
    seen: set[int] = set()
    current: int | None = index
    trigger = go_time
    while current is not None:
        if current in seen:
            raise CycleError(f"cue {show.cues[current].number} continues into itself")
        seen.add(current)
        cue = show.cues[current]
        start = trigger + cue.pre_wait * MS
        firings.append(Firing(current, cue.number, cue.name, start,
                              start + cue_length_ms(cue)))
        for child in cue.group:
            child_start = start + child.pre_wait * MS
            firings.append(Firing(current, child.number, child.name, child_start,
                                  child_start + child.duration * MS, child=True))
        following = next_index(show, current)
        when = continue_time(cue, start)
        if when is None:
            return firings, following
        trigger = when
        current = following
    return firings, None


def find_cycle(show: Show) -> list[str] | None:
    """Cue numbers of a continue loop, if any (a show that would never stop by itself)."""
    for start in range(len(show.cues)):
        path: list[int] = []
        current: int | None = start
        while current is not None and show.cues[current].continue_ != "none":
            if current in path:
                return [show.cues[i].number for i in path[path.index(current):]] + [
                    show.cues[current].number]
            path.append(current)
            current = next_index(show, current)
    return None


def timeline(show: Show) -> list[Firing]:
    """Every firing, from 0, when each GO comes as soon as the cues before it have ended:
    the show's nominal running order (the studio's timeline). A cue no GO reaches in
    order (jumped over by a `next`) is not in it."""
    out: list[Firing] = []
    index: int | None = 0
    trigger = 0.0
    guard = 0
    while index is not None and guard <= len(show.cues):
        firings, index = sequence(show, index, trigger)
        out.extend(firings)
        trigger = max(f.end for f in firings if not f.child)
        guard += 1
    return out


def total_length_ms(show: Show) -> float:
    """Running time when every cue is fired as soon as it stands by (GO at 0 each time the
    sequence stops): the show's nominal length for the console."""
    return max([0.0, *(f.end for f in timeline(show))])
