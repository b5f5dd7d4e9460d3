"""What `serve --tls` does before and around uvicorn: pick the certificate, tell the
operator which addresses a phone can open, and run the plain-HTTP trust port."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import segno
import uvicorn
from starlette.types import ASGIApp

from holobazaar.config import Settings
from holobazaar.tls.addresses import local_names, url_host
from holobazaar.tls.files import TlsFiles


@dataclass(frozen=True)
class TlsPlan:
    files: TlsFiles
    notes: list[str]


def prepare_tls(settings: Settings) -> TlsPlan | None:
    """None without TLS; raises TlsFileError (file + problem) for unusable files."""
    if not settings.uses_tls:
        return None
    # Only a TLS server loads `cryptography` (10 MB of RSS).
    from holobazaar.tls.certificates import check_certificate_pair, ensure_local_certificates

    if settings.certfile is not None or settings.keyfile is not None:
        if settings.certfile is None or settings.keyfile is None:
            raise ValueError("--certfile and --keyfile must be given together")
        return TlsPlan(check_certificate_pair(settings.certfile, settings.keyfile), [])
    files = ensure_local_certificates(settings.data_dir)
    return TlsPlan(files, [files.issued] if files.issued else [])


def ca_fingerprint(plan: TlsPlan) -> str:
    from cryptography import x509

    from holobazaar.tls.certificates import fingerprint

    assert plan.files.ca_file is not None
    return fingerprint(x509.load_pem_x509_certificate(plan.files.ca_file.read_bytes()))


def phone_urls(settings: Settings, path: str = "/") -> list[str]:
    """Every address a device on the network could use, for the terminal."""
    scheme = "https" if settings.uses_tls else "http"
    port = "" if settings.port == (443 if settings.uses_tls else 80) else f":{settings.port}"
    if settings.host in ("0.0.0.0", "::", ""):
        names = local_names()
        hosts = [url_host(ip) for ip in names.lan_ips] + list(names.dns[1:]) + ["localhost"]
    elif settings.host in ("127.0.0.1", "::1"):
        hosts = ["localhost"]
    else:
        hosts = [url_host(settings.host)]
    return [f"{scheme}://{h}{port}{path}" for h in hosts]


def terminal_qr(url: str) -> str:
    """A QR code drawn with Unicode half blocks, scannable straight off the terminal."""
    out = io.StringIO()
    segno.make(url, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()


async def serve_with_trust_port(main: uvicorn.Server, trust: uvicorn.Server | None) -> None:
    """Run the HTTPS server and the plain-HTTP trust port together; when one stops (Ctrl-C
    reaches only one of them, since each installs its own signal handlers), stop both."""
    servers = [main] + ([trust] if trust else [])
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)
    for task in done:
        task.result()
    if not main.started:
        raise SystemExit(1)


def run(app: ASGIApp, trust_app_factory: Callable[[Settings], ASGIApp], settings: Settings,
        plan: TlsPlan | None, **uvicorn_options: Any) -> None:
    """`uvicorn_options`: passed on to uvicorn.Config as they are."""
    main = uvicorn.Server(uvicorn.Config(
        app, host=settings.host, port=settings.port,
        ssl_certfile=str(plan.files.certfile) if plan else None,
        ssl_keyfile=str(plan.files.keyfile) if plan else None, **uvicorn_options))
    trust = None
    trust_logs: dict[str, Any] = {"log_config": None} if "log_config" in uvicorn_options else {}
    if plan and settings.trust_port is not None:
        trust = uvicorn.Server(uvicorn.Config(
            trust_app_factory(settings), host=settings.host, port=settings.trust_port,
            lifespan="off", log_level=uvicorn_options.get("log_level", "info"),
            **trust_logs))
    # The event loop uvicorn.run would choose (`loop="auto"`: uvloop where installed).
    # asyncio's own loop keeps a 256 KiB read buffer per TLS connection: 10,000 phones
    # over wss:// held 3 GB with it against 0.2 GB with uvloop (docs/performance.md, TLS).
    with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
        runner.run(serve_with_trust_port(main, trust))
