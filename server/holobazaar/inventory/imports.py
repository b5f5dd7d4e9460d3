"""A curator's file import (CSV or JSON of feed events, the same format as the feed and
`holobazaar inventory import`), all or nothing, in two steps:

1. `check`: read every row and say what applying would do - new items, updates,
   removals, the price changes beyond the hold policy - and list each bad row with its
   line. Nothing is written.
2. `apply`: check again (the stock may have moved since) and, only when no row is bad,
   apply every row in ONE transaction. Price changes beyond the hold policy need
   `confirm`; in a `four_eyes` market they become held changes for a second curator (as a
   manual edit does), the other rows apply.

Bounded memory: the file is read row by row from a (spooled) file, never as a whole, and
applied in chunks of CHUNK rows inside the one transaction; what stays in memory is the
market's stored prices (one entry per item) and at most MAX_LISTED bad rows and large
changes. A file import is the curator's reviewed change, so the feed's circuit breaker
(which holds a batch that changes most items at once) does not apply to it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar.audit import service as audit
from holobazaar.db import session_scope
from holobazaar.inventory import batches, feeds
from holobazaar.inventory.feeds import FeedEvent, Parsed, RowError
from holobazaar.inventory.models import InventoryItem
from holobazaar.inventory.service import PriceCheck, request_approval, to_facts

CHUNK = 2000  # rows per write inside the import's transaction
MAX_LISTED = 500  # bad rows and large changes listed in a report (all are counted)
MAX_IMPORT_ROWS = 200_000
NO_BREAKER = 10**12

Progress = Callable[[str, float], None]  # (phase, fraction 0..1)


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (nothing is applied)."""


@dataclass
class Report:
    rows: int = 0
    new: int = 0
    updates: int = 0
    removals: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    large: list[dict[str, Any]] = field(default_factory=list)
    large_count: int = 0
    applied: bool = False
    held: int = 0
    batches: list[int] = field(default_factory=list)

    def bad(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(error.as_dict())

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "new": self.new, "updates": self.updates,
                "removals": self.removals, "error_count": self.error_count,
                "errors": self.errors, "large_count": self.large_count, "large": self.large,
                "applied": self.applied, "held": self.held}


class _Counting(io.RawIOBase):
    """A binary file that counts what was read (for progress)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.read_bytes = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def _csv_rows(raw: io.RawIOBase) -> Iterator[Parsed]:
    # utf-8-sig drops a byte order mark; bytes that are not UTF-8 stay marked
    # (surrogateescape) so feeds._csv_row refuses just that row, with its line.
    text = io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8-sig",
                            errors="surrogateescape", newline="")
    reader = csv.DictReader(text)
    try:
        names = reader.fieldnames
    except csv.Error as exc:
        raise ImportFormatError(f"CSV header (line 1) is unreadable: {exc}") from None
    if not names or "sku" not in names:
        raise ImportFormatError("CSV needs a header row with at least a 'sku' column")
    unknown = set(names) - set(FeedEvent.model_fields)
    if unknown:
        raise ImportFormatError("unknown CSV columns: " + ", ".join(sorted(unknown)))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num + 1, RowError(reader.line_num + 1, None,
                                                f"unreadable CSV: {exc}")
            continue
        yield reader.line_num, feeds._csv_row(reader.line_num, row)


def read_rows(raw: io.RawIOBase, fmt: str) -> Iterator[Parsed]:
    """(line, event or why the row is refused), one row at a time."""
    if fmt == "csv":
        yield from _csv_rows(raw)
    elif fmt == "json":
        try:  # JSON is read whole: its size is capped by the request's body limit
            parsed = feeds.parse_json(raw.read())
        except feeds.FeedFormatError as exc:
            raise ImportFormatError(str(exc)) from None
        yield from parsed
    else:
        raise ImportFormatError(f"unknown format {fmt!r} (csv or json)")


def _stored(engine: Engine, market: str) -> dict[str, tuple[Decimal, str]]:
    with session_scope(engine) as session:
        return {sku: (price, currency) for sku, price, currency in session.exec(
            select(col(InventoryItem.sku), col(InventoryItem.price), col(InventoryItem.currency))
            .where(col(InventoryItem.market) == market))}


def _check_rows(rows: Iterator[Parsed], stored: dict[str, tuple[Decimal, str]],
                threshold: float, report: Report,
                on_event: Callable[[int, FeedEvent, bool], None] | None = None,
                tick: Callable[[], None] | None = None) -> None:
    """Count and check every row. `on_event(line, event, large)` sees each good event."""
    known = dict(stored)  # sku -> (price, currency): stored, or created by an earlier row
    for line, parsed in rows:
        report.rows += 1
        if report.rows > MAX_IMPORT_ROWS:
            raise ImportFormatError(f"more than {MAX_IMPORT_ROWS} rows: split the file")
        if tick is not None and report.rows % 1000 == 0:
            tick()
        if isinstance(parsed, RowError):
            report.bad(parsed)
            continue
        event = parsed
        before = known.get(event.sku)
        large = False
        if event.op == "remove":
            if before is None:
                report.bad(RowError(line, event.sku, f"remove: there is no item {event.sku}"))
                continue
            report.removals += 1
            known.pop(event.sku, None)
        elif before is None:
            if event.name is None or event.price is None:
                report.bad(RowError(line, event.sku,
                                    "a new item needs at least name and price"))
                continue
            report.new += 1
            known[event.sku] = (event.price, event.currency or "")
        else:
            report.updates += 1
            if event.price is not None:
                check = PriceCheck(event.sku, before[0], event.price, before[1], threshold)
                if check.beyond:
                    large = True
                    report.large_count += 1
                    if len(report.large) < MAX_LISTED:
                        report.large.append({"line": line, **check.as_json()})
                known[event.sku] = (event.price, before[1])
        if on_event is not None:
            on_event(line, event, large)


def check(engine: Engine, market: str, raw: IO[bytes], size: int, fmt: str, *,
          threshold: float, progress: Progress | None = None) -> Report:
    """What applying the file would do; nothing is written."""
    counting = _Counting(raw)
    report = Report()

    def tick() -> None:
        if progress is not None:
            progress("checking", counting.read_bytes / max(size, 1))

    _check_rows(read_rows(counting, fmt), _stored(engine, market), threshold, report,
                tick=tick)
    return report


def apply(engine: Engine, market: str, raw: IO[bytes], size: int, fmt: str, *,
          threshold: float, currency: str, confirm: bool, four_eyes: bool, actor: str,
          progress: Progress | None = None) -> Report:
    """Check the file; when no row is bad (and large changes are confirmed), apply every
    row in one transaction. The report says `applied`; nothing is written otherwise."""
    raw.seek(0)
    report = check(engine, market, raw, size, fmt, threshold=threshold,
                   progress=lambda _p, f: progress("checking", f / 2) if progress else None)
    if report.error_count or (report.large_count and not confirm):
        return report
    raw.seek(0)
    counting = _Counting(raw)
    digest = hashlib.sha256()
    policy = batches.Policy(breaker_min=NO_BREAKER, hold_prices=False)
    final = Report()
    with session_scope(engine) as session:
        chunk: list[Parsed] = []
        four_eyes_rows: list[FeedEvent] = []

        def flush() -> None:
            if not chunk:
                return
            body = json.dumps([line for line, _ in chunk]).encode()
            digest.update(body)
            result = batches._apply(session, market, list(chunk), source="import",
                                  body_digest=hashlib.sha256(body).hexdigest(), key=None,
                                  policy=policy, currency=currency, snapshot_rule=None,
                                  actor=actor)
            final.batches.append(result.response["batch"])
            chunk.clear()
            if progress is not None:
                progress("applying", 0.5 + counting.read_bytes / max(size, 1) / 2)

        def take(line: int, event: FeedEvent, large: bool) -> None:
            if large and four_eyes:
                flush()  # rows before it apply first: the file's order is kept
                four_eyes_rows.append(event)
                _request(session, market, event, actor)
                return
            chunk.append((line, event))
            if len(chunk) >= CHUNK:
                flush()

        _check_rows(read_rows(counting, fmt), _stored(engine, market), threshold, final,
                    on_event=take)
        if final.error_count:  # the stock moved between the two reads: nothing applies
            session.rollback()
            return final
        flush()
        final.held = len(four_eyes_rows)
        audit.append(session, actor, "inventory.import", market, {
            "rows": final.rows, "new": final.new, "updates": final.updates,
            "removals": final.removals, "large": final.large_count,
            "held_for_four_eyes": final.held, "batches": final.batches,
            "body_sha256": digest.hexdigest()})
        final.applied = True
    return final


def _request(session: Any, market: str, event: FeedEvent, actor: str) -> None:
    """A large price change of a four-eyes market: held for a second curator."""
    row = session.get(InventoryItem, (market, event.sku))
    if row is None:  # created earlier in this file: not yet flushed as a row
        return
    old = to_facts(row)
    fields: dict[str, Any] = {k: v for k, v in {
        "name": event.name, "price": event.price, "unit": event.unit, "stock": event.stock,
        "status": event.status, "farm": event.producer}.items() if v is not None}
    request_approval(session, market, old, replace(old, **fields), fields, actor)
