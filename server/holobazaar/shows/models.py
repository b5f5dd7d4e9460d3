"""The show file format: what performers and curators write in `scenes/<market>/shows/*.yaml`.

A show is a QLab-style cue list. These pydantic models are the single definition of the
format (docs/shows.md describes it); every model forbids unknown keys so a typo is an
error, not a silent no-op. Times in files are seconds; the runner works in milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from holobazaar.i18n import Language
from holobazaar.scenes.models import Color, Ident, finite
from holobazaar.scenes.schedule_format import ClockTime, DateRange, Weekday

# Cue numbers are strings like QLab's ("1", "2.5", "10a"): they name a cue, they do not count.
CueNumber = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,15}$")]
Seconds = Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)]
Vec3 = tuple[float, float, float]
Easing = Literal["linear", "ease-in", "ease-out", "ease-in-out"]
ContinueMode = Literal["none", "auto-continue", "auto-follow"]
PlainText = Annotated[str, Field(max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeAction(Strict):
    """Change one node of one display: appear, hide, move (instantly) or tween (over
    `duration` with `easing`) its position / rotation / scale / opacity."""

    kind: Literal["node"]
    display: Ident
    node: Ident
    op: Literal["appear", "hide", "move", "tween"]
    position: Vec3 | None = None
    rotation: Vec3 | None = Field(None, description="Euler degrees, XYZ.")
    scale: float | Vec3 | None = None
    opacity: float | None = Field(None, ge=0, le=1)
    duration: Seconds = Field(0.0, description="Tween length (op: tween).")
    easing: Easing = "ease-in-out"

    @field_validator("position", "rotation")
    @classmethod
    def _check_vec(cls, v: Vec3 | None) -> Vec3 | None:
        return None if v is None else finite(v)

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, v: float | Vec3 | None) -> float | Vec3 | None:
        if v is None:
            return v
        values = (v,) if isinstance(v, float | int) else v
        finite(values)
        if any(s <= 0 for s in values):
            raise ValueError("scale must be positive")
        return v

    @model_validator(mode="after")
    def _op_needs(self) -> NodeAction:
        moved = any(x is not None for x in (self.position, self.rotation, self.scale,
                                            self.opacity))
        if self.op in ("move", "tween") and not moved:
            raise ValueError(f"op {self.op!r} needs position, rotation, scale or opacity")
        if self.op == "tween" and self.duration <= 0:
            raise ValueError("op 'tween' needs a duration > 0")
        return self


class AnimationAction(Strict):
    """Play an animation clip of a model node (a glTF animation by name)."""

    kind: Literal["animation"]
    display: Ident
    node: Ident
    clip: str = Field(min_length=1, max_length=120)
    loop: bool = False
    speed: float = Field(1.0, gt=0, le=10)


class OverlayAction(Strict):
    """A narrative overlay on every device: plain text (never HTML)."""

    kind: Literal["overlay"]
    title: PlainText = ""
    text: PlainText = Field(min_length=1)
    duration: Seconds | None = Field(None, description="Hide after this; default: the cue's.")


class StoryAction(Strict):
    """Show one beat of a story (stories domain); clients show its title and beat text."""

    kind: Literal["story"]
    story: Ident
    beat: int = Field(0, ge=0, le=1000)
    title: PlainText = ""
    text: PlainText = ""


# What a sound is, for visitors who cannot hear it: one short line ("[birdsong]", "Bell
# rings: the tasting starts"). Plain text, shown in the visitor overlay while it plays.
def said(caption: str) -> str:
    if not caption.strip():
        raise ValueError("caption must say what the sound is (it is blank)")
    return caption


Caption = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(said)]


class CaptionTranslation(Strict):
    caption: Caption


class AudioAction(Strict):
    """Play a sound: an audio file URL on this server, or a synthesized tone (Hz), with the
    caption every visitor sees while it plays (required: no sound without a caption)."""

    kind: Literal["audio"]
    url: str | None = Field(None, max_length=500, pattern=r"^/[A-Za-z0-9/._-]+$")
    tone: float | None = Field(None, ge=20, le=20000)
    volume: float = Field(0.8, ge=0, le=1)
    duration: Seconds | None = None
    caption: Caption = Field(description="What the sound is, shown as a caption while it "
                             "plays (plain text, at most 200 characters).")
    translations: dict[Language, CaptionTranslation] = Field(
        default_factory=dict, description="The caption in the market's other languages, by "
        "language code; a visitor whose language has none sees `caption`.")

    @field_validator("caption")
    @classmethod
    def _said(cls, v: str) -> str:
        return said(v)

    @model_validator(mode="after")
    def _one_source(self) -> AudioAction:
        if (self.url is None) == (self.tone is None):
            raise ValueError("give exactly one of url or tone")
        return self


class MoodAction(Strict):
    """A display's lighting / mood: dim (0 = normal, 1 = dark) and a tint colour, faded over
    `fade` seconds. No display: every display of the show's target."""

    kind: Literal["mood"]
    display: Ident | None = None
    dim: float = Field(0.0, ge=0, le=1)
    tint: Color | None = None
    fade: Seconds = 0.0


Action = Annotated[
    NodeAction | AnimationAction | OverlayAction | StoryAction | AudioAction | MoodAction,
    Field(discriminator="kind"),
]


class CueBase(Strict):
    number: CueNumber = Field(description='A name like QLab\'s: "1", "2.5", "10a".')
    name: str = Field("", max_length=120)
    pre_wait: Seconds = Field(0.0, description="Seconds between GO and the actions.")
    duration: Seconds = Field(0.0, description="Seconds the cue runs.")
    actions: list[Action] = Field(default_factory=list, max_length=64)


class ChildCue(CueBase):
    """A cue inside a group: fires when the group fires, after its own pre-wait."""


class Cue(CueBase):
    post_wait: Seconds = Field(0.0, description="auto-continue: seconds from this cue's "
                                                "start to the next cue.")
    continue_: ContinueMode = Field("none", alias="continue", description=(
        "none: the next cue waits for a GO; auto-continue: it fires post_wait after this "
        "one started; auto-follow: when this one ends."))
    next: CueNumber | None = Field(
        None, description="Cue that continues after this one (default: the following).")
    group: list[ChildCue] = Field(
        default_factory=list, max_length=32,
        description="Cues that fire together with this one (each after its own pre-wait).")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ShowStart(Strict):
    """When the show starts by itself (auto-GO from its first cue), in the market's local
    time: once (`at`), or at `time` on `days` (every day when left out) between `dates`."""

    at: datetime | None = Field(None, description="Once: a local date and time, "
                                "2026-12-05T11:00 (or with an offset).")
    time: ClockTime | None = Field(None, description="Weekly: the local time, HH:MM.")
    days: list[Weekday] | None = Field(None, min_length=1, max_length=7)
    dates: DateRange | None = None
    catch_up: float = Field(300, ge=0, le=86_400, allow_inf_nan=False, description=(
        "Seconds: a start the server missed (it was down) by at most this much still "
        "happens, late; one missed by more is skipped."))

    @model_validator(mode="after")
    def _one_kind(self) -> ShowStart:
        if (self.at is None) == (self.time is None):
            raise ValueError("give either 'at' (once) or 'time' (with 'days', weekly)")
        if self.at is not None and (self.days is not None or self.dates is not None):
            raise ValueError("'days' and 'dates' go with 'time', not with 'at'")
        if self.time is not None and self.time.startswith("24"):
            raise ValueError("'time' cannot be 24:00")
        return self


class Show(Strict):
    id: Ident
    title: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    zone: Ident | None = Field(None, description="The zone it plays in; omit: whole market.")
    cues: list[Cue] = Field(min_length=1, max_length=500)
    starts: list[ShowStart] = Field(default_factory=list, max_length=50, description=(
        "Scheduled starts (auto-GO); a performer can still hold, skip or stop it."))


class ShowFile(Strict):
    version: Literal[1] = 1
    show: Show
