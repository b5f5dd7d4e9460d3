"""Feed input: webhook signatures, and parsing JSON/CSV feed bodies into validated events.

Every row is validated on its own: a bad row is reported with its line and the good rows
still apply. Prices are decimals from the text (JSON numbers are parsed as Decimal, never
float); NaN, infinities, negative prices, absurd quantities and unknown currencies are
refused per row.

Bounded: at most `MAX_ROWS` events or CSV rows per body (more is refused whole: send
batches), CSV cells of at most `MAX_CELL` characters, and a CSV row whose bytes are not
UTF-8 is refused on its own with its line number (the other rows still apply)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from holobazaar import jsonlimits
from holobazaar.inventory.models import StockStatus, not_a_boolean, unsigned_zero

SIGNATURE_HEADER = "X-Holobazaar-Signature"
TIMESTAMP_HEADER = "X-Holobazaar-Timestamp"
MAX_VERSION = 2**62
MAX_ROWS = 50_000  # events per body: a market has hundreds of items
MAX_CELL = 1024  # characters per CSV cell (the longest field, a timestamp or name, is ~120)
_NOT_UTF8 = re.compile("[\udc80-\udcff]+")  # bytes that were not UTF-8 (surrogateescape)


class FeedEvent(BaseModel):
    """One upsert or removal. For a new SKU, name and price are required; for a known SKU
    omitted fields keep their stored values."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["upsert", "remove"] = "upsert"
    sku: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    name: str | None = Field(None, min_length=1, max_length=120)
    price: Decimal | None = Field(None, ge=0, le=Decimal("1000000"), allow_inf_nan=False,
                                  decimal_places=4)
    currency: str | None = None
    unit: str | None = Field(None, min_length=1, max_length=20)
    stock: int | None = Field(None, ge=0, le=10_000_000)
    status: StockStatus | None = None
    producer: str | None = Field(None, min_length=1, max_length=64)
    source_version: int | None = Field(None, ge=0, le=MAX_VERSION)
    source_timestamp: datetime | None = None

    _stock_not_a_boolean = field_validator("stock", "source_version",
                                           mode="before")(not_a_boolean)
    _price_unsigned_zero = field_validator("price", mode="after")(unsigned_zero)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 3 or pycountry.currencies.get(alpha_3=value.upper()) is None:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value.upper()


@dataclass(frozen=True)
class RowError:
    line: int
    sku: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "sku": self.sku, "error": self.error}


Parsed = tuple[int, "FeedEvent | RowError"]  # (line, event or why the row is refused)


class FeedFormatError(ValueError):
    """The body as a whole is unreadable (nothing is applied)."""


class SignatureError(Exception):
    """Why a webhook request is refused (401)."""


class HeaderError(ValueError):
    """A malformed webhook header (400); the message names the header."""


# The signing forms. v2 (current) covers the Idempotency-Key; v1 (the old form, accepted
# only during the grace period, docs/inventory.md) covers the timestamp and body only.
V2, V1 = "v2", "v1"
_PREFIXES = {V2: "v2=", V1: "sha256="}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only ("²".isdigit() is True)
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Signed:
    """A request whose signature checked out: its form, the HMAC (hex) and timestamp."""

    form: str
    digest: str
    timestamp: int


def signing_string(timestamp: str, key: str, body: bytes) -> bytes:
    """`v2\n<timestamp>\n<Idempotency-Key>\n<raw body>`: a header value holds no newline,
    so the parts cannot be shifted into one another. The key is taken byte for byte as
    sent (HTTP header values are bytes; latin-1 maps them one to one)."""
    return b"\n".join((V2.encode(), timestamp.encode("ascii"), key.encode("latin-1"), body))


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, key: str, body: bytes) -> str:
    """The signature header value: `v2=` + hex HMAC-SHA256 of `signing_string`."""
    return _PREFIXES[V2] + _hmac(secret, signing_string(timestamp, key, body))


def sign_v1(secret: str, timestamp: str, body: bytes) -> str:
    """The old form, `sha256=` + HMAC over `<timestamp>.<raw body>` (no key covered)."""
    return _PREFIXES[V1] + _hmac(secret, timestamp.encode("ascii") + b"." + body)


def check_key(key: str | None) -> str:
    if not key or len(key) > 200:
        raise HeaderError("Idempotency-Key header required (1-200 characters)")
    return key


def check_signature(secret: str | None, signature: str | None, timestamp: str | None,
                    key: str | None, body: bytes, window: float,
                    now: float | None = None) -> Signed:
    """Raises SignatureError (401) or HeaderError (400); returns the checked signature."""
    if secret is None:
        raise SignatureError("no webhook secret is configured for this market "
                             "(holobazaar inventory secret --market M)")
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise HeaderError(f"{TIMESTAMP_HEADER} must be Unix seconds (ASCII digits)")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window:
        raise SignatureError(f"{TIMESTAMP_HEADER} is outside the {window:g} s replay window")
    form = next((f for f, prefix in _PREFIXES.items() if signature.startswith(prefix)), None)
    given = signature[len(_PREFIXES[form]):] if form else ""
    if form is None or not _HEX.fullmatch(given):
        raise SignatureError(f"{SIGNATURE_HEADER} must be v2=<64 hex digits> "
                             "(or the old form sha256=<64 hex digits>)")
    if form == V2:
        expected = sign(secret, timestamp, check_key(key), body)
    else:
        expected = sign_v1(secret, timestamp, body)
    # Constant-time comparison: the signature must not be guessable byte by byte.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("signature does not match the request" if form == V2 else
                             "signature does not match the body (sha256= is the old "
                             "form; sign v2, docs/inventory.md)")
    return Signed(form, given, int(timestamp))


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _validate(line: int, raw: Any) -> FeedEvent | RowError:
    if not isinstance(raw, dict):
        return RowError(line, None, "an event is a JSON object")
    sku = raw.get("sku") if isinstance(raw.get("sku"), str) else None
    try:
        return FeedEvent.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        return RowError(line, sku, f"{where}: {first['msg']}")


def _json_constant(name: str) -> Decimal:
    # NaN/Infinity literals become Decimals so the row is refused, not the whole body.
    return Decimal(name)


def parse_json(body: bytes) -> list[Parsed]:
    """`{"events": [...]}` or a bare list. `line` is the event's 1-based position."""
    try:
        doc = jsonlimits.loads(body, parse_float=Decimal, parse_constant=_json_constant)
    except jsonlimits.JSONInputError as exc:
        raise FeedFormatError(f"body is not JSON: {exc.message}") from None
    if isinstance(doc, dict):
        if set(doc) - {"events"}:
            raise FeedFormatError("unknown top-level keys: "
                                  + ", ".join(sorted(set(doc) - {"events"})))
        doc = doc.get("events")
    if not isinstance(doc, list):
        raise FeedFormatError('expected {"events": [...]} or a JSON list of events')
    if len(doc) > MAX_ROWS:
        raise FeedFormatError(f"{len(doc)} events: at most {MAX_ROWS} per request "
                              "(send batches)")
    return [(i, _validate(i, raw)) for i, raw in enumerate(doc, start=1)]


def parse_csv(body: bytes) -> list[Parsed]:
    """A header row naming FeedEvent fields; empty cells are omitted. `line` is the
    CSV line number (the header is line 1) where the row ends. A row that is not UTF-8,
    has a cell over MAX_CELL characters or cannot be read as CSV (a NUL, a cell over the
    csv module's 128 KiB) is refused on its own; the rows after it are still read."""
    text = body.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise FeedFormatError(f"CSV header (line 1) is unreadable: {exc}") from None
    if fieldnames and any(_NOT_UTF8.search(name) for name in fieldnames):
        raise FeedFormatError("CSV header (line 1) is not UTF-8")
    if not fieldnames or "sku" not in fieldnames:
        raise FeedFormatError("CSV needs a header row with at least a 'sku' column")
    unknown = set(fieldnames) - set(FeedEvent.model_fields)
    if unknown:
        raise FeedFormatError("unknown CSV columns: " + ", ".join(sorted(unknown)))
    out: list[Parsed] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the line being read when it failed
            out.append((reader.line_num + 1, RowError(reader.line_num + 1, None,
                                                      f"unreadable CSV: {exc}")))
            continue
        if len(out) >= MAX_ROWS:
            raise FeedFormatError(f"more than {MAX_ROWS} rows: at most {MAX_ROWS} per "
                                  "request (send batches)")
        out.append((reader.line_num, _csv_row(reader.line_num, row)))
    return out


def _csv_row(line: int, row: dict[str | None, Any]) -> FeedEvent | RowError:
    sku = row.get("sku")
    sku = sku if isinstance(sku, str) and not _NOT_UTF8.search(sku) else None
    if None in row:
        return RowError(line, sku, "more cells than columns")
    for column, value in row.items():
        if value and _NOT_UTF8.search(value):
            return RowError(line, sku, f"{column}: not UTF-8 text")
        if value and len(value) > MAX_CELL:
            return RowError(line, sku, f"{column}: longer than {MAX_CELL} characters")
    return _validate(line, {k: v.strip() for k, v in row.items() if v and v.strip()})


def parse(body: bytes, fmt: str) -> list[Parsed]:
    if fmt == "csv":
        return parse_csv(body)
    if fmt == "json":
        return parse_json(body)
    raise FeedFormatError(f"unknown feed format {fmt!r} (json or csv)")
