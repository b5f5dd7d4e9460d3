"""The CA certificate download and the "how to trust it" page.

Served by the main (HTTPS) app and, with `serve --tls`, by a tiny plain-HTTP app on a
second port: a phone that does not trust the CA yet gets a certificate warning on the
HTTPS site, so the first step must be reachable without one."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import __version__
from holobazaar.config import Settings
from holobazaar.tls.addresses import url_host
from holobazaar.tls.files import ca_path

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def local_ca_file(settings: Settings) -> Path | None:
    """The CA this server generated, if it serves with one (not with a real certificate)."""
    if not settings.tls or settings.certfile is not None:
        return None
    path = ca_path(settings.data_dir)
    return path if path.is_file() else None


def https_url(request: Request, settings: Settings) -> str:
    host = request.url.hostname or "localhost"
    port = "" if settings.port == 443 else f":{settings.port}"
    return f"https://{url_host(host)}{port}"


@router.get("/tls/ca.pem")
def ca_certificate(request: Request) -> Response:
    path = local_ca_file(request.app.state.settings)
    if path is None:
        raise HTTPException(404, "this server does not use a locally generated CA")
    return Response(path.read_bytes(), media_type="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="holobazaar-ca.pem"',
                             "Cache-Control": "no-cache"})


@router.get("/tls", response_class=HTMLResponse)
def trust_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    path = local_ca_file(settings)
    ca, digest = None, None
    if path is not None:  # a TLS server: `cryptography` is loaded already
        from cryptography import x509

        from holobazaar.tls.certificates import fingerprint

        ca = x509.load_pem_x509_certificate(path.read_bytes())
        digest = fingerprint(ca)
    return templates.TemplateResponse(request, "tls.html", {
        "ca_name": ca.subject.rfc4514_string() if ca else None,
        "fingerprint": digest,
        "https_url": https_url(request, settings),
        "real_certificate": settings.certfile is not None,
    })


def create_trust_app(settings: Settings) -> FastAPI:
    """Plain-HTTP companion of `serve --tls`: the CA, the trust page, and a redirect to
    HTTPS for everything else (so a typed or scanned http:// address still lands)."""
    app = FastAPI(title="Holobazaar trust", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.include_router(router)

    @app.get("/{path:path}", include_in_schema=False)
    def to_https(request: Request, path: str) -> RedirectResponse:
        if path == "":
            return RedirectResponse("/tls", status_code=307)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{https_url(request, settings)}/{path}{query}", 307)

    return app
