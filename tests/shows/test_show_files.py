"""Show files: the demo show validates; broken ones are refused by `holobazaar validate`
with file:line and a clear message (and the server refuses to adopt them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.content import load_content
from holobazaar.shows import timing

from support.content import REPO, copy_content

cli = CliRunner()
SHOWS = "scenes/greenhaven/shows"


def test_demo_show_is_valid_two_minutes_and_uses_every_action_kind():
    content = load_content(REPO)
    assert content.ok, content.report()
    show = content.markets["greenhaven"].shows["harvest-collective"]
    assert 110_000 <= timing.total_length_ms(show) <= 130_000
    kinds = {a.kind for c in show.cues for a in [*c.actions, *(x for g in c.group
                                                                 for x in g.actions)]}
    assert kinds == {"node", "animation", "overlay", "story", "audio", "mood"}
    assert {c.continue_ for c in show.cues} == {"none", "auto-continue", "auto-follow"}
    assert any(c.group for c in show.cues)
    ops = {a.op for c in show.cues for g in [c, *c.group] for a in g.actions
           if a.kind == "node"}
    assert ops == {"appear", "hide", "move", "tween"}


def write_show(tmp_path: Path, body: str) -> Path:
    content = copy_content(tmp_path / "content")
    (content / SHOWS / "broken.yaml").write_text(body, encoding="utf-8")
    return content


# One audio cue; %s: the rest of the action (its caption, or none).
AUDIO_CUE = """\
show:
  id: broken
  title: Broken
  cues:
    - number: "1"
      actions:
        - {kind: audio, tone: 440%s}
"""

BROKEN = {
    "negative wait": ("""\
show:
  id: broken
  title: Broken
  cues:
    - number: "1"
      pre_wait: -2
""", "shows/broken.yaml:6: show.cues[0].pre_wait: Input should be greater than or equal to 0"),
    "auto-follow loop": ("""\
show:
  id: broken
  title: Broken
  cues:
    - {number: "1", duration: 1, continue: auto-follow}
    - {number: "2", duration: 1, continue: auto-continue, next: "1"}
""", "shows/broken.yaml:5: show.cues[0].continue: continue loop never stops: 1 -> 2 -> 1"),
    "unknown next": ("""\
show:
  id: broken
  title: Broken
  cues:
    - {number: "1", next: "7"}
""", "shows/broken.yaml:5: show.cues[0].next: unknown cue '7'"),
    "duplicate number": ("""\
show:
  id: broken
  title: Broken
  cues:
    - {number: "1"}
    - number: "2"
      group:
        - {number: "1"}
""", "shows/broken.yaml:8: show.cues[1].group[0].number: cue number '1' is used twice"),
    "unknown node": ("""\
show:
  id: broken
  title: Broken
  zone: orchard-row
  cues:
    - number: "1"
      actions:
        - {kind: node, display: zonneveld-greens, node: nope, op: hide}
""", "shows/broken.yaml:8: show.cues[0].actions[0].node: display 'zonneveld-greens' has "
     "no node 'nope'"),
    "display outside the zone": ("""\
show:
  id: broken
  title: Broken
  zone: fungi-grotto
  cues:
    - number: "1"
      actions:
        - {kind: mood, display: zonneveld-greens, dim: 0.5}
""", "shows/broken.yaml:8: show.cues[0].actions[0].display: display 'zonneveld-greens' is "
     "in zone 'orchard-row', not in the show's zone 'fungi-grotto'"),
    "unknown key and bad tween": ("""\
show:
  id: broken
  title: Broken
  cues:
    - number: "1"
      colour: red
      actions:
        - {kind: node, display: zonneveld-greens, node: kale, op: tween, scale: 2}
""", "shows/broken.yaml:6: show.cues[0].colour: unknown key 'colour'"),
    "audio without a caption": (
        AUDIO_CUE % ", duration: 1",
        "shows/broken.yaml:7: show.cues[0].actions[0].caption: missing required key 'caption'"),
    "blank caption": (
        AUDIO_CUE % ', caption: "   "',
        "shows/broken.yaml:7: show.cues[0].actions[0].caption: Value error, caption must say "
        "what the sound is (it is blank)"),
    "caption in a language the market does not offer": (
        AUDIO_CUE % ', caption: "[Bell]", translations: {fr: {caption: "[Cloche]"}}',
        "shows/broken.yaml:7: show.cues[0].actions[0].translations.fr: 'fr' is not one of "
        "the market's other languages"),
    "blank translated caption": (
        AUDIO_CUE % ', caption: "[Bell]", translations: {nl: {caption: " "}}',
        "shows/broken.yaml:7: show.cues[0].actions[0].translations.nl.caption: Value error, "
        "caption must say what the sound is (it is blank)"),
}


def test_every_audio_cue_of_the_demo_show_has_a_caption():
    show = load_content(REPO).markets["greenhaven"].shows["harvest-collective"]
    audio = [a for c in show.cues for g in [c, *c.group] for a in g.actions
             if a.kind == "audio"]
    assert audio and all(a.caption.strip() for a in audio)
    # ... in each of the market's other languages too (a visitor reading Dutch or Arabic).
    others = load_content(REPO).markets["greenhaven"].market.market.languages[1:]
    assert others and all(set(a.translations) == set(others) for a in audio)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_show_files_are_reported_with_file_and_line(tmp_path: Path, case: str):
    body, expected = BROKEN[case]
    content = write_show(tmp_path, body)
    result = cli.invoke(app, ["validate", str(content)])
    assert result.exit_code == 1, result.output
    assert f"scenes/greenhaven/{expected}" in result.output, result.output
    assert not load_content(content).ok


def test_tween_without_duration_is_refused(tmp_path: Path):
    content = write_show(tmp_path, BROKEN["unknown key and bad tween"][0].replace(
        "      colour: red\n", ""))
    result = cli.invoke(app, ["validate", str(content)])
    assert result.exit_code == 1
    assert "op 'tween' needs a duration > 0" in result.output
