"""The CA certificate download and the "how to trust it" page.

Served by the main (HTTPS) app and, with `serve --tls`, by a tiny plain-HTTP app on a
second port: a phone that does not trust the CA yet gets a certificate warning on the
HTTPS site, so the first step must be reachable without one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from holobazaar import __version__
from holobazaar.accounts.addresses import scope_is_https
from holobazaar.config import Settings
from holobazaar.tls.addresses import local_names, public_base_url, url_host
from holobazaar.tls.files import ca_path
from holobazaar.web.i18n import templates as page_templates

router = APIRouter(include_in_schema=False)
templates = page_templates()  # web/i18n.py: gettext, lang and dir


def local_ca_file(settings: Settings) -> Path | None:
    """The CA this server generated, if it serves with one (not with a real certificate)."""
    if not settings.tls or settings.certfile is not None:
        return None
    path = ca_path(settings.data_dir)
    return path if path.is_file() else None


def server_names(settings: Settings) -> frozenset[str]:
    """The names this server answers to: what its certificate covers (this machine's
    names and addresses), the bind address and the public base URL's host."""
    names = {"localhost", "127.0.0.1", "::1"}
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host)
    if settings.host in ("0.0.0.0", "::", "") or settings.uses_tls:
        local = local_names()
        names.update(local.dns)
        names.update(str(ip) for ip in local.ips)
    if settings.certfile is not None and settings.certfile.is_file():
        from cryptography import x509

        from holobazaar.tls.certificates import covered_names

        try:
            cert = x509.load_pem_x509_certificate(settings.certfile.read_bytes())
        except ValueError:
            pass
        else:
            dns, ips = covered_names(cert)
            names.update(dns)
            names.update(str(ip) for ip in ips)
    base = urlsplit(public_base_url(settings)).hostname
    if base:
        names.add(base)
    return frozenset(n.lower() for n in names)


def _names(request: Request, settings: Settings) -> frozenset[str]:
    names = getattr(request.app.state, "server_names", None)
    if names is None:
        names = request.app.state.server_names = server_names(settings)
    return names


def https_url(request: Request, settings: Settings) -> str:
    """The HTTPS origin to send this request to: its own host when that is one of the
    server's names, else the configured public address (never a name the request made
    up: `Host: evil.example` must not turn this server into a redirector)."""
    host = (request.url.hostname or "").lower()
    if host in _names(request, settings):
        port = "" if settings.port == 443 else f":{settings.port}"
        return f"https://{url_host(host)}{port}"
    base = public_base_url(settings)
    if base.startswith("https://"):
        return base
    port = "" if settings.port == 443 else f":{settings.port}"
    return f"https://{url_host(urlsplit(base).hostname or 'localhost')}{port}"


class Hsts:
    """Strict-Transport-Security on every HTTPS response (directly, or through a trusted
    proxy that says X-Forwarded-Proto: https), never on plain HTTP."""

    def __init__(self, app: ASGIApp, max_age: int, trusted_proxies: str) -> None:
        self.app, self.trusted = app, trusted_proxies
        self.header = (b"strict-transport-security", f"max-age={max_age}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope_is_https(scope, self.trusted):
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == self.header[0] for k, _ in headers):
                    headers.append(self.header)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def add_hsts(app: FastAPI, settings: Settings) -> None:
    """HOLOBAZAAR_HSTS (max-age seconds; default 1 day with the local CA, 1 year with
    --certfile, none without TLS; 0 = off)."""
    if settings.hsts_max_age > 0:
        app.add_middleware(Hsts, max_age=settings.hsts_max_age,
                           trusted_proxies=settings.trusted_proxies)


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
    app.state.server_names = server_names(settings)
    app.include_router(router)

    @app.get("/{path:path}", include_in_schema=False)
    def to_https(request: Request, path: str) -> RedirectResponse:
        if path == "":
            return RedirectResponse("/tls", status_code=307)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{https_url(request, settings)}/{path}{query}", 307)

    return app
