"""The links a display page hands a phone's own AR viewer: AR Quick Look (iOS, an
`<a rel="ar">` to the USDZ with its banner in the URL fragment) and Scene Viewer
(Android, an intent URL carrying the absolute GLB URL), as Google's model-viewer builds
them. Both name the state they show: the page swaps the hash when the stream brings a
new state, so the link always opens today's prices."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from holobazaar.quicklook.models import Platform, ar_platform
from holobazaar.quicklook.service import file_url

# Quick Look's banner button; tapping it sends the page a message (display page: the
# stall's story and products, web-client/src/handoff.js).
CALL_TO_ACTION = "About this stall"
# Android: Scene Viewer ships in the Google app (model-viewer's intent, scene-viewer 1.2).
SCENE_VIEWER_PACKAGE = "com.google.android.googlequicksearchbox"
NO_AR_FALLBACK = "#no-ar-fallback"  # the page, marked: Scene Viewer was not there


def quicklook_href(market: str, display: str, state_hash: str, title: str,
                   subtitle: str) -> str:
    fragment = urlencode({"callToAction": CALL_TO_ACTION, "checkoutTitle": title,
                          "checkoutSubtitle": subtitle}, quote_via=quote)
    return f"{file_url('usdz', market, display, state_hash)}#{fragment}"


def scene_viewer_href(base_url: str, market: str, display: str, state_hash: str,
                      title: str) -> str:
    """intent://arvr.google.com/scene-viewer/1.2?…#Intent;…;end; with the GLB's absolute
    URL; when Scene Viewer is missing the browser opens the page again, marked."""
    base = base_url.rstrip("/")
    glb = base + file_url("glb", market, display, state_hash)
    page = f"{base}/d/{market}/{display}{NO_AR_FALLBACK}"
    params = urlencode({"mode": "ar_preferred", "title": title, "file": glb}, quote_via=quote)
    return (f"intent://arvr.google.com/scene-viewer/1.2?{params}#Intent;scheme=https;"
            f"package={SCENE_VIEWER_PACKAGE};action=android.intent.action.VIEW;"
            f"S.browser_fallback_url={quote(page, safe='')};end;")


def handoff(user_agent: str, base_url: str, market: str, display: str, state_hash: str,
            title: str, market_name: str) -> dict[str, str | Platform | None]:
    """The display page's boot data for phone AR: both links and the User-Agent's guess
    (`platform`); the page confirms it by feature detection."""
    return {
        "platform": ar_platform(user_agent),
        "state": state_hash,
        "quicklook": quicklook_href(market, display, state_hash, title,
                                    f"Today's prices · {market_name}"),
        "sceneviewer": scene_viewer_href(base_url, market, display, state_hash, title),
    }
