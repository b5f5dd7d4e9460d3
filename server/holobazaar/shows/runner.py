"""The show runner: one per show, a small state machine over the cue list.

Operations: standby / GO / pause / resume / stop / panic / jump. All waits are on the
server clock (an injectable `Clock`, so tests drive time by hand): a GO computes every
instant of the sequence it starts (holobazaar.shows.timing), and each firing is handed to
the output `lead_ms` before its start, stamped with its absolute start time, so clients
can schedule it. A GO may name the standing-by cue's id: when that cue has already been
fired (a second performer pressing GO at the same moment) the GO is refused, so the cue
fires once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from holobazaar.shows import timing
from holobazaar.shows.models import Show
from holobazaar.shows.run_state import RunRecord

log = logging.getLogger(__name__)

FIRED_KEPT = 200  # fired cues kept in the show state (what a late joiner replays)
Status = Literal["ready", "running", "paused", "stopped", "finished"]


class Clock(Protocol):
    def now(self) -> float:
        """Server time in milliseconds since the Unix epoch."""

    async def sleep_until(self, when: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        from holobazaar.stream.broker import now_ms

        return now_ms()

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, (when - self.now()) / 1000.0))


class ManualClock:
    """A clock that moves only when told to (tests): `await advance(ms)`."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._count), future))
        await future

    async def advance(self, ms: float) -> None:
        """Move time forward, waking sleepers in time order and letting each react."""
        target = self._now + ms
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not future.done():
                future.set_result(None)
            await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class ShowError(Exception):
    """A refused operation: `status` is the HTTP status that fits, `message` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(order=True)
class Pending:
    send_at: float
    seq: int
    cue: dict = field(compare=False)


Emit = Callable[["ShowRunner", dict | None], Awaitable[None]]


def cue_body(show: Show, firing: timing.Firing, serial: int | str) -> dict:
    """A firing as the `cue` frame's body devices schedule by (docs/protocol.md, Cues)."""
    cue = show.cues[firing.index]
    source = cue if not firing.child else next(
        g for g in cue.group if g.number == firing.number)
    body = {"show": show.id, "event": "go", "id": f"{show.id}:{firing.number}:{serial}",
            "number": firing.number, "name": firing.name,
            "start_time": round(firing.start, 1),
            "duration": round(firing.end - firing.start, 1),
            "actions": [a.model_dump(mode="json") for a in source.actions]}
    if firing.child:
        body["group"] = cue.number
    return body


class ShowRunner:
    """`emit(runner, event)` publishes the runner's state and sends `event` (a cue frame's
    `cue` body) to the show's clients; event None: only the state changed."""

    def __init__(self, market: str, show: Show, emit: Emit, clock: Clock | None = None,
                 lead_ms: float = 150.0) -> None:
        self.market, self.show = market, show
        self.emit = emit
        self.clock = clock or SystemClock()
        self.lead_ms = lead_ms
        self.standby: int | None = 0
        self.serial = 0  # bumps whenever the standing-by cue changes: its id changes too
        self.stopped = False
        self.paused_at: float | None = None
        self.started_at: float | None = None
        self.pending: list[Pending] = []
        self.fired: list[dict] = []
        self.last_cue: dict | None = None
        self.lock = asyncio.Lock()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task | None = None

    # ---- state ---------------------------------------------------------------------

    @property
    def standby_id(self) -> str | None:
        if self.standby is None:
            return None
        return f"{self.show.id}:{self.show.cues[self.standby].number}:{self.serial}"

    def status(self) -> Status:
        if self.stopped:
            return "stopped"
        if self.paused_at is not None:
            return "paused"
        now = self.clock.now()
        if self.pending or any(c["start_time"] + c["duration"] > now for c in self.fired):
            return "running"
        return "ready" if self.standby is not None else "finished"

    def show_state(self) -> dict[str, Any]:
        """What the zone channel's state carries under `show`: enough for a late joiner to
        replay every fired cue at its own start time (mid-cue when it joins mid-cue)."""
        standby = None
        if self.standby is not None:
            cue = self.show.cues[self.standby]
            standby = {"number": cue.number, "name": cue.name, "id": self.standby_id}
        return {"id": self.show.id, "title": self.show.title, "status": self.status(),
                "standby": standby, "started_at": self.started_at,
                "paused_at": self.paused_at, "cues": list(self.fired)}

    def cue_list(self) -> list[dict[str, Any]]:
        return [{"number": c.number, "name": c.name, "pre_wait": c.pre_wait,
                 "duration": timing.cue_length_ms(c) / timing.MS, "post_wait": c.post_wait,
                 "continue": c.continue_, "group": [g.number for g in c.group]}
                for c in self.show.cues]

    def remaining_ms(self) -> float:
        """Until the last scheduled or fired cue ends (0 when nothing is running)."""
        now = self.paused_at if self.paused_at is not None else self.clock.now()
        ends = [c["start_time"] + c["duration"] for c in self.fired]
        ends += [p.cue["start_time"] + p.cue["duration"] for p in self.pending]
        return max([0.0, *(e - now for e in ends)])

    def record(self) -> RunRecord:
        standby = self.show.cues[self.standby].number if self.standby is not None else None
        return RunRecord(self.market, self.show.id, self.status(), standby, self.serial,
                         self.started_at, self.paused_at, list(self.fired))

    def restore(self, record: RunRecord) -> None:
        """Take up a stored state after a restart: pending timers are gone, so a running or
        paused show comes back standing by its standing-by cue; a stopped one stays
        stopped. The serial moves on, so a GO naming a pre-restart standby id is refused."""
        self.serial = record.serial + 1
        if record.status == "stopped":
            self.stopped, self.standby = True, None
        else:
            found = timing.index_of(self.show, record.standby) if record.standby else None
            self.standby = found

    # ---- operations ----------------------------------------------------------------

    def _number_index(self, number: str) -> int:
        index = timing.index_of(self.show, number)
        if index is None:
            known = ", ".join(c.number for c in self.show.cues)
            raise ShowError(404, f"show {self.show.id!r} has no cue {number!r} "
                                 f"(cues: {known})")
        return index

    async def go(self, expect: str | None = None) -> dict:
        """Fire the standing-by cue (and whatever continues from it)."""
        async with self.lock:
            if self.stopped:
                raise ShowError(409, "the show is stopped: stand by a cue first "
                                     "(standby or jump)")
            if self.paused_at is not None:
                raise ShowError(409, "the show is paused: resume it first")
            if self.standby is None:
                raise ShowError(409, "nothing is standing by: the cue list is finished "
                                     "(jump to a cue)")
            if expect is not None and expect != self.standby_id:
                raise ShowError(409, f"cue {expect!r} is not standing by (already fired?); "
                                     f"standing by: {self.standby_id}")
            fired_id = self.standby_id
            go_time = self.clock.now() + self.lead_ms
            firings, following = timing.sequence(self.show, self.standby, go_time)
            serial = self.serial
            for firing in firings:
                cue = self._cue_body(firing, serial)
                heapq.heappush(self.pending, Pending(firing.start - self.lead_ms,
                                                     next(self._seq), cue))
            if self.started_at is None:
                self.started_at = go_time
            self._set_standby(following)
            await self._send_due()
            self._wake.set()
            return {"fired": fired_id, "cues": [f.number for f in firings]}

    def _cue_body(self, firing: timing.Firing, serial: int) -> dict:
        return cue_body(self.show, firing, serial)

    def _set_standby(self, index: int | None) -> None:
        self.standby = index
        self.serial += 1

    async def standby_cue(self, number: str | None = None) -> None:
        """Stand by a cue (default: the first) without firing it; clears a stop."""
        async with self.lock:
            index = 0 if number is None else self._number_index(number)
            self.stopped = False
            self._set_standby(index)
            await self.emit(self, None)

    async def jump(self, number: str, go: bool = False) -> dict | None:
        await self.standby_cue(number)
        return await self.go() if go else None

    async def pause(self) -> None:
        async with self.lock:
            if self.stopped or self.paused_at is not None:
                raise ShowError(409, f"cannot pause a {self.status()} show")
            # Clients freeze at the same instant, a lead ahead, like a cue.
            self.paused_at = self.clock.now() + self.lead_ms
            await self._event("pause", self.paused_at)

    async def resume(self) -> None:
        async with self.lock:
            if self.paused_at is None:
                raise ShowError(409, f"cannot resume a {self.status()} show: not paused")
            resume_at = self.clock.now() + self.lead_ms
            shift = resume_at - self.paused_at
            paused_at, self.paused_at = self.paused_at, None
            # Everything not yet over at the pause moves later by the pause's length.
            for cue in self.fired:
                if cue["start_time"] + cue["duration"] > paused_at:
                    cue["start_time"] = round(cue["start_time"] + shift, 1)
            if self.started_at is not None:
                self.started_at += shift  # elapsed show time leaves the pause out
            for pending in self.pending:
                pending.send_at += shift
                pending.cue["start_time"] = round(pending.cue["start_time"] + shift, 1)
            await self._event("resume", resume_at, shift=round(shift, 1))
            self._wake.set()

    async def stop(self, panic: bool = False) -> None:
        """Stop everything now; panic also cuts sound and effects without any fade. The
        displays' own state was never changed by the show, so clearing the show's effects
        restores them."""
        async with self.lock:
            self.pending.clear()
            self.fired.clear()
            self.stopped, self.paused_at, self.started_at = True, None, None
            self._set_standby(None)
            await self._event("panic" if panic else "stop", self.clock.now())
            self._wake.set()

    async def _event(self, kind: str, at: float, **extra: Any) -> None:
        event = {"show": self.show.id, "event": kind,
                 "id": f"{self.show.id}:{kind}:{next(self._seq)}",
                 "start_time": round(at, 1), **extra}
        await self.emit(self, event)

    # ---- sending on time -----------------------------------------------------------

    async def _send_due(self) -> None:
        now = self.clock.now()
        while self.pending and self.paused_at is None and self.pending[0].send_at <= now:
            cue = heapq.heappop(self.pending).cue
            self.fired.append(cue)
            del self.fired[:-FIRED_KEPT]
            self.last_cue = cue
            await self.emit(self, cue)

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name=f"show-{self.show.id}")

    def close_soon(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick(self) -> None:
        while True:
            self._wake.clear()
            if not self.pending or self.paused_at is not None:
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(self.pending[0].send_at))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
            if self._wake.is_set():
                continue  # the schedule changed: look again
            try:
                await self._send_when_due()
            except Exception:  # a failed send must not end the show's clock
                log.exception("show %s: sending a cue failed", self.show.id)
                await asyncio.sleep(0.2)

    async def _send_when_due(self) -> None:
        """One step of the clock (the shared runner adds its cluster-wide exclusion)."""
        async with self.lock:
            await self._send_due()
