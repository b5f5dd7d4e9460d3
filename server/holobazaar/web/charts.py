"""Small server-rendered SVG line charts for staff pages. The geometry is computed here;
the page template writes the SVG elements (autoescaped), so no markup is built by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

PALETTE = ("#e4572e", "#ffd23f", "#76b041", "#4ea5d9", "#c490d1")
GAP = timedelta(minutes=1)  # points further apart than this are not joined (hidden minutes)


@dataclass
class Line:
    name: str
    color: str
    segments: list[str] = field(default_factory=list)  # SVG polyline "x,y x,y" strings
    dots: list[tuple[float, float]] = field(default_factory=list)  # single-point segments


@dataclass
class Chart:
    width: int
    height: int
    left: int
    bottom: int
    lines: list[Line]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical event lines
    empty: bool = False


def _nice_max(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return float(step)
    return float(value)


def line_chart(series: dict[str, list[tuple[datetime, float]]], start: datetime,
               end: datetime, *, y_max: float | None = None, width: int = 640,
               height: int = 220, marks: list[tuple[datetime, str]] | None = None,
               gap: timedelta | None = GAP) -> Chart:
    """`gap`: points further apart are not joined (None: always joined, for step lines
    such as a price history)."""
    left, right, top, bottom = 36, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max((end - start).total_seconds(), 60.0)
    peak = max((v for points in series.values() for _, v in points), default=0.0)
    top_value = y_max if y_max is not None else _nice_max(max(peak, 1.0))

    def x(t: datetime) -> float:
        return round(left + plot_w * (t - start).total_seconds() / span, 1)

    def y(v: float) -> float:
        return round(top + plot_h * (1 - min(v, top_value) / top_value), 1)

    lines = []
    for i, (name, points) in enumerate(series.items()):
        line = Line(name, PALETTE[i % len(PALETTE)])
        run: list[tuple[datetime, float]] = []
        for point in [*sorted(points), None]:
            if point is None or (run and gap is not None and point[0] - run[-1][0] > gap):
                if len(run) == 1:
                    line.dots.append((x(run[0][0]), y(run[0][1])))
                elif run:
                    line.segments.append(" ".join(f"{x(t)},{y(v)}" for t, v in run))
                run = []
            if point is not None:
                run.append(point)
        lines.append(line)
    hours = max(1, round(span / 3600 / 6))  # about six labels across
    tick = start.replace(minute=0, second=0, microsecond=0)
    label = "%H:%M"
    if hours >= 24:  # spans of days: a label per day or more, at midnight
        hours, label = 24 * round(hours / 24), "%d %b"
        tick = tick.replace(hour=0)
    x_ticks = []
    while tick <= end:
        if tick >= start:
            x_ticks.append((x(tick), tick.strftime(label)))
        tick += timedelta(hours=hours)
    y_ticks = [(y(top_value * f), f"{top_value * f:g}") for f in (0, 0.5, 1)]
    return Chart(width, height, left, height - bottom, lines, x_ticks, y_ticks,
                 [(x(t), label) for t, label in (marks or []) if start <= t <= end],
                 empty=not any(series.values()))
