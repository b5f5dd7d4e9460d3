"""The runner's state machine on a hand-driven clock: what is sent when, pause/resume,
stop/panic, jumps, refused operations, and one firing for simultaneous GOs."""

from __future__ import annotations

import asyncio

import pytest

from holobazaar.shows.models import Show
from holobazaar.shows.runner import ManualClock, ShowError, ShowRunner, settle

LEAD = 150.0
SHOW = Show.model_validate({"id": "demo", "title": "Demo", "cues": [
    {"number": "1", "duration": 2, "post_wait": 1, "continue": "auto-continue",
     "actions": [{"kind": "overlay", "text": "hello"}]},
    {"number": "2", "pre_wait": 3, "duration": 4,
     "group": [{"number": "2.1", "pre_wait": 1, "duration": 1}]},
    {"number": "3", "duration": 1},
]})


class Recorder:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict]] = []  # (clock time when sent, event)
        self.states: list[dict] = []

    async def __call__(self, runner: ShowRunner, event: dict | None) -> None:
        self.states.append(runner.show_state())
        if event is not None:
            self.sent.append((self.clock.now(), dict(event)))

    def cues(self) -> list[tuple[float, str, float]]:
        return [(at, e["number"], e["start_time"]) for at, e in self.sent if e["event"] == "go"]


@pytest.fixture
def rig():
    async def make():
        clock = ManualClock(0.0)
        recorder = Recorder(clock)
        runner = ShowRunner("m", SHOW, recorder, clock, LEAD)
        runner.start()
        await settle()
        return clock, recorder, runner
    return make


def run(coro):
    return asyncio.run(coro)


def test_go_sends_each_cue_a_lead_ahead_of_its_start_on_the_server_clock(rig):
    async def scenario():
        clock, rec, runner = await rig()
        assert runner.status() == "ready" and runner.show_state()["standby"]["number"] == "1"
        result = await runner.go()
        assert result["cues"] == ["1", "2", "2.1"]
        # Cue 1 goes out at once, stamped to start one lead later.
        assert rec.cues() == [(0.0, "1", 150.0)]
        await clock.advance(1000)  # 1.15 s: post-wait over at 1150 -> cue 2 pre-wait 3 s
        assert len(rec.cues()) == 1
        await clock.advance(3000)
        assert rec.cues()[1] == (4000.0, "2", 4150.0)
        await clock.advance(1000)
        assert rec.cues()[2] == (5000.0, "2.1", 5150.0)
        assert runner.status() == "running"
        assert runner.show_state()["standby"]["number"] == "3"
        await clock.advance(4000)
        assert runner.status() == "ready"
        await runner.go()
        assert rec.cues()[3] == (9000.0, "3", 9150.0)
        await clock.advance(2000)
        assert runner.status() == "finished"
        with pytest.raises(ShowError, match="finished"):
            await runner.go()
        await runner.close()
    run(scenario())


def test_pause_freezes_pending_cues_and_resume_shifts_everything(rig):
    async def scenario():
        clock, rec, runner = await rig()
        await runner.go()
        await clock.advance(500)
        await runner.pause()
        assert rec.sent[-1][1]["event"] == "pause"
        assert rec.sent[-1][1]["start_time"] == 650.0
        await clock.advance(10_000)  # nothing goes out while paused
        assert len(rec.cues()) == 1
        with pytest.raises(ShowError, match="paused"):
            await runner.go()
        await runner.resume()
        resume = rec.sent[-1][1]
        assert resume["event"] == "resume" and resume["shift"] == 10_000.0
        # Cue 1 (running at the pause) moved by the pause; cue 2 is due 10 s later too.
        assert runner.show_state()["cues"][0]["start_time"] == 10_150.0
        # Unpaused, cue 2 would have started at 4150; now 10 s later, sent a lead ahead.
        await clock.advance(3500 - 1)
        assert len(rec.cues()) == 1
        await clock.advance(1)
        assert rec.cues()[1] == (14_000.0, "2", 14_150.0)
        with pytest.raises(ShowError, match="not paused"):
            await runner.resume()
        await runner.close()
    run(scenario())


def test_stop_and_panic_cancel_everything_and_go_on_a_stopped_show_is_refused(rig):
    async def scenario():
        clock, rec, runner = await rig()
        await runner.go()
        await runner.stop()
        assert rec.sent[-1][1]["event"] == "stop"
        state = runner.show_state()
        assert state["status"] == "stopped" and state["cues"] == [] and state["standby"] is None
        await clock.advance(20_000)
        assert len(rec.cues()) == 1  # cue 2 never fires
        with pytest.raises(ShowError, match="stopped") as refused:
            await runner.go()
        assert refused.value.status == 409
        await runner.standby_cue("2")
        await runner.go()
        await runner.stop(panic=True)
        assert rec.sent[-1][1]["event"] == "panic"
        await clock.advance(20_000)
        assert len(rec.cues()) == 1  # cue 2 was still in its pre-wait: never fired
        await runner.close()
    run(scenario())


def test_jump_and_unknown_cues(rig):
    async def scenario():
        _clock, rec, runner = await rig()
        with pytest.raises(ShowError, match=r"no cue '9' \(cues: 1, 2, 3\)") as err:
            await runner.jump("9")
        assert err.value.status == 404
        assert rec.sent == [] and runner.show_state()["standby"]["number"] == "1"
        await runner.jump("3", go=True)
        assert rec.cues() == [(0.0, "3", 150.0)]
        await runner.close()
    run(scenario())


def test_two_gos_for_the_same_standing_by_cue_fire_it_once(rig):
    async def scenario():
        _clock, rec, runner = await rig()
        standby = runner.standby_id
        results = await asyncio.gather(runner.go(standby), runner.go(standby),
                                       return_exceptions=True)
        fired = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, ShowError)]
        assert len(fired) == 1 and len(refused) == 1
        assert "not standing by" in refused[0].message
        assert [n for _, n, _ in rec.cues()] == ["1"]
        await runner.close()
    run(scenario())
