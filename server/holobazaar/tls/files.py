"""Where the TLS files live and how a bad one is reported: what a server without TLS
may need (the trust page, the CLI) without loading `cryptography` (10 MB of RSS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class TlsFileError(Exception):
    """A certificate or key file that cannot be used; names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    ca_file: Path | None  # None when the operator supplied a real certificate
    issued: str = ""  # what ensure_local_certificates did, for the operator


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def ca_path(data_dir: Path) -> Path:
    return tls_dir(data_dir) / "ca.pem"
