"""GET /api/v1/markets/{market}/markers.pdf: the printable markers of a market."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from holobazaar.accounts.dependencies import require_role
from holobazaar.channels import display_channel
from holobazaar.config import check_base_url
from holobazaar.dependencies import SettingsDep
from holobazaar.markers import service
from holobazaar.scenes.dependencies import Scenes, market_or_404
from holobazaar.stream.dependencies import HubDep
from holobazaar.tls.addresses import public_base_url

router = APIRouter(prefix="/api/v1/markets/{market}", tags=["markers"])


@router.get("/markers.pdf", response_class=Response,
            dependencies=[Depends(require_role("curator"))],
            responses={200: {"content": {"application/pdf": {}}}})
async def markers_pdf(
    market: str, scenes: Scenes, settings: SettingsDep, hub: HubDep,
    base_url: str | None = Query(None, max_length=500,
                                 description="Address printed in the QR codes "
                                             "[the server's base_url]."),
) -> Response:
    content = market_or_404(scenes, market)
    try:
        base = check_base_url(base_url) if base_url else public_base_url(settings)
    except ValueError as exc:
        raise HTTPException(422, f"base_url: {exc}") from None
    titles = {}
    translated: dict[str, dict[str, str]] = {}
    for display_id in content.displays:
        # The live title (it may be a template over inventory data), as visitors see it.
        state = hub.snapshot(display_channel(market, display_id))[2]
        titles[display_id] = state["display"]["title"]
        for lang in content.market.market.languages[1:]:  # and in the market's languages
            channel = display_channel(market, display_id, lang)
            if hub.has_channel(channel):
                translated.setdefault(lang, {})[display_id] = \
                    hub.snapshot(channel)[2]["display"]["title"]
    markers = service.marker_set(content, base, titles, translated)
    # Rendering a few A4 pages at 300 dpi takes a moment of CPU: keep the event loop free.
    data = await run_in_threadpool(service.pdf_bytes, markers)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="markers-{market}.pdf"',
        "Cache-Control": "no-store"})
