"""The curator's pulse dashboard, /curate/<market>/pulse: the day's reactions and mood as
server-rendered SVG charts, the most loved displays, zones and recipes, and held feedback."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.accounts.dependencies import require_role
from holobazaar.channels import display_channel
from holobazaar.pulse import database
from holobazaar.pulse.aggregator import KINDS, day_bounds
from holobazaar.web.charts import line_chart
from holobazaar.web.i18n import templates as page_templates
from holobazaar.web.services import services

router = APIRouter(include_in_schema=False)
templates = page_templates()  # web/i18n.py: gettext, lang and dir
CURATORS = require_role("curator")


@router.get("/curate/{market}/pulse", response_class=HTMLResponse)
async def dashboard(request: Request, market: str) -> Response:
    try:
        await CURATORS.check(request)
    except HTTPException as exc:
        if exc.status_code == 401:  # a browser: sign in first, then come back here
            return RedirectResponse(f"/login?next=/curate/{market}/pulse", status_code=303)
        raise
    service = services(request).pulse
    content = service.scenes.market(market)
    if content is None:
        raise HTTPException(404, f"no market {market!r}")
    pulse = service.market_pulse(market)
    now = service.clock()
    since, until = day_bounds(pulse.local_day(now), pulse.tz)
    rows = await db.call(service.engine, database.minutes, service.engine, market, since, until,
                         service.settings.k, "market", market)
    held = await db.call(service.engine, database.feedback, service.engine, market, "held", 500)
    tz = pulse.tz
    points = [(r.minute.astimezone(tz), r) for r in rows]
    current = datetime.fromtimestamp(now, tz)
    start = min([current - timedelta(hours=1), *(t for t, _ in points)])
    start = start.replace(minute=0, second=0, microsecond=0)
    end = current.replace(second=0, microsecond=0) + timedelta(minutes=1)
    reactions = line_chart({k: [(t, getattr(r, k)) for t, r in points] for k in KINDS}
                           | {"devices": [(t, r.devices) for t, r in points]}, start, end)
    mood = line_chart({"mood": [(t, r.mood) for t, r in points]}, start, end, y_max=100)

    show = None
    cues = service.cues(market, since, until)
    if cues:
        # The show's mood curve: per-minute mood of the zones it played in, cues marked.
        show_start = min(c.at for c in cues).astimezone(tz) - timedelta(minutes=10)
        show_end = min(max(c.at for c in cues).astimezone(tz) + timedelta(minutes=20), end)
        zone_series: dict[str, list[tuple[datetime, float]]] = {}
        for zone in sorted({z for c in cues for z in c.zones}):
            found = await db.call(service.engine, database.minutes, service.engine, market, since,
                                  until, service.settings.k, "zone", zone)
            zone_series[zone] = [(r.minute.astimezone(tz), r.mood) for r in found]
        show = line_chart(zone_series, show_start.replace(second=0, microsecond=0),
                          max(show_end, show_start + timedelta(minutes=30)), y_max=100,
                          marks=[(c.at.astimezone(tz), c.label) for c in cues])
    day = service.state(market)["windows"]["day"]
    titles = {d: service.scenes.hub.snapshot(display_channel(market, d))[2]["display"]
              ["title"] for d in content.displays}
    zones = {z.id: z.name for z in content.market.zones}
    top_displays = sorted(day["displays"].items(), key=lambda kv: (-kv[1]["reactions"], kv[0]))
    top_zones = sorted(day["zones"].items(), key=lambda kv: (-kv[1]["reactions"], kv[0]))
    # Recipes reacted to from displays' recipe cards; like every figure here, only those
    # with at least k distinct devices today are in the view at all.
    names = service.recipe_names(market)
    top_recipes = sorted(day["recipes"].items(), key=lambda kv: (-kv[1]["reactions"], kv[0]))
    return templates.TemplateResponse(request, "pulse_dashboard.html", {
        "market": content.market.market, "k": service.settings.k, "kinds": KINDS,
        "day": since.date().isoformat(), "reactions": reactions, "mood": mood,
        "today": day["market"], "top_displays": [(titles.get(d, d), f) for d, f in top_displays],
        "top_zones": [(zones.get(z, z), f) for z, f in top_zones], "held": len(held),
        "top_recipes": [(names.get(r, r), r, f) for r, f in top_recipes],
        "show": show,
    }, headers={"Cache-Control": "no-store"})
