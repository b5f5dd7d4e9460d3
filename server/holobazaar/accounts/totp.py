"""TOTP (RFC 6238, 30-second steps, 6 digits: what every authenticator app reads from a
QR code) over `pyotp`. A code is accepted for the current step and one step either side
(clock drift), and only for a step later than the last one used, so a code works once."""

from __future__ import annotations

import hmac
import io
from datetime import datetime

import pyotp
import segno

ISSUER = "Holobazaar"
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (segno: already used for markers)."""
    out = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(out, kind="svg", scale=5, border=3,
                                                  xmldecl=False, svgns=True,
                                                  title="Authenticator set-up code")
    return out.getvalue().decode("utf-8")


def matching_step(secret: str, code: str, moment: datetime,
                  last_step: int | None = None) -> int | None:
    """The time step `code` belongs to, or None (wrong, malformed or already used)."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(moment)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
