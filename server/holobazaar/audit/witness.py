"""Witnessing: this server polls other market servers' signed heads and keeps them, so a
server that later rewrites or truncates its public history is caught by its peers.

Each poll, per witnessed server (`holobazaar witness add URL`) and market:
1. fetch its signed heads (`GET /api/v1/audit/heads`); the market's public key is pinned
   at first sight (`GET /api/v1/markets/{m}/audit/key`), a head signed with another key or
   with a bad signature is refused;
2. the new head must extend the last one kept: a lower height (truncation, or an old head
   replayed), the same height with another hash, or records from the kept height on that
   do not chain from the kept hash to the new one (an earlier record was rewritten) make
   the server `inconsistent`: reported (status, /metrics, a log line), nothing stored;
3. a head that checks out is kept (when it differs from the last one).
The first head of a market is checked from the genesis (all its records).

The same loop signs this server's own heads every interval (checkpoints that `holobazaar
audit verify` compares with), and runs under the `audit-witness` lease: once per cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from holobazaar import db
from holobazaar.audit import heads, public
from holobazaar.audit.models import GENESIS, Witness, WitnessedHead
from holobazaar.db import session_scope

log = logging.getLogger(__name__)

MAX_RESPONSE = 4 * 1024 * 1024  # bytes read from a witnessed server per request
PAGE = 1000
RECENT_HEADS = 20  # kept heads listed per market by GET /api/v1/witness


class FetchError(Exception):
    """The witnessed server could not be reached or answered something unusable."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def normalise_url(url: str) -> str:
    """A witnessed server's base URL: http(s), a host, no credentials, query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// address of a server")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give the server's base address only (no credentials, "
                         f"query or fragment)")
    if len(url) > 2000:
        raise ValueError("address longer than 2,000 characters")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


async def get_json(client: Any, url: str) -> Any:
    """GET a JSON document, at most MAX_RESPONSE bytes; FetchError saying what went wrong."""
    import httpx

    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchError("invalid", f"GET {url} answered HTTP {response.status_code}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_RESPONSE:
                    raise FetchError("invalid", f"GET {url}: answer larger than "
                                     f"{MAX_RESPONSE} bytes")
    except httpx.TimeoutException:
        raise FetchError("unreachable", f"GET {url} timed out") from None
    except httpx.HTTPError as exc:
        raise FetchError("unreachable", f"GET {url} failed: {type(exc).__name__}") from None
    try:
        return json.loads(bytes(data))
    except ValueError:
        raise FetchError("invalid", f"GET {url} did not answer JSON") from None


@dataclass
class Outcome:
    status: str  # ok | unreachable | invalid | inconsistent
    problem: str | None = None


class Inconsistent(Exception):
    pass


async def records_after(client: Any, base: str, market: str, after: int,
                        upto: int) -> list[dict]:
    """Public records after..upto of a market, page by page."""
    records: list[dict] = []
    while after + len(records) < upto:
        start = after + len(records)
        data = await get_json(client, f"{base}/api/v1/markets/{market}/audit/records"
                                      f"?after={start}&limit={min(PAGE, upto - start)}")
        page = data.get("records") if isinstance(data, dict) else None
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise FetchError("invalid", f"records of {market}: not a list of records")
        if not page:
            raise Inconsistent(f"{market}: the server publishes {start} records, but its head "
                               f"says {upto}")
        records += page[:upto - start]
    return records


def extends(records: list[dict], market: str, height: int, prev: str,
            target: heads.Head) -> str | None:
    """None when the records chain from (height, prev) to the target head, else why not."""
    last = prev
    for _seq, digest, problem in public.chain(records, market, height, prev):
        if problem is not None:
            return f"{market}: {problem}"
        last = digest
    if last != target.hash:
        return (f"{market}: the records after height {height} do not lead from the head kept "
                f"to the new head {target.height}: the history was rewritten")
    return None


class WitnessService:
    def __init__(self, engine: Engine, interval: float, timeout: float,
                 own_markets: Callable[[], list[str]] | None = None) -> None:
        self.engine, self.interval, self.timeout = engine, interval, timeout
        self.own_markets = own_markets or (lambda: [])
        self.polls = 0

    # ---- storage (sync, in a thread) ------------------------------------------------

    def _witnesses(self) -> list[Witness]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(Witness).order_by(col(Witness.id))))

    def _last(self, witness_id: int, market: str) -> WitnessedHead | None:
        with session_scope(self.engine) as session:
            return session.exec(select(WitnessedHead).where(
                WitnessedHead.witness_id == witness_id, WitnessedHead.market == market)
                .order_by(col(WitnessedHead.id).desc()).limit(1)).first()

    def _save(self, witness_id: int, outcome: Outcome, new: list[heads.Head]) -> None:
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            witness = session.get(Witness, witness_id)
            if witness is None:  # removed meanwhile
                return
            for head in new:
                session.add(WitnessedHead(
                    witness_id=witness_id, market=head.market, public_key=head.key,
                    height=head.height, hash=head.hash, audit_height=head.audit.height,
                    audit_hash=head.audit.hash, time=head.time, signature=head.signature,
                    seen_at=now))
            witness.last_polled_at = now
            if outcome.status == "ok":
                witness.last_ok_at = now
            # An inconsistency stays reported until an operator looks (remove and re-add).
            if witness.status != "inconsistent" or outcome.status == "inconsistent":
                witness.status, witness.problem = outcome.status, outcome.problem
            session.add(witness)

    def _sign_own(self) -> None:
        for market in self.own_markets():
            # ChainBehind: logged by issue(), nothing signed.
            with session_scope(self.engine) as session, contextlib.suppress(heads.ChainBehind):
                heads.issue(session, market)

    # ---- polling --------------------------------------------------------------------

    async def poll(self, witness: Witness) -> Outcome:
        import httpx

        assert witness.id is not None  # a stored witness
        new: list[heads.Head] = []
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False,
                                         headers={"Accept": "application/json"}) as client:
                outcome = await self._poll(client, witness, new)
        except FetchError as exc:
            outcome, new = Outcome(exc.status, str(exc)), []
        except Inconsistent as exc:
            outcome, new = Outcome("inconsistent", str(exc)), []
        if outcome.status == "inconsistent":
            log.warning("witness %s: INCONSISTENT: %s", witness.url, outcome.problem)
        elif outcome.status != "ok":
            log.warning("witness %s: %s: %s", witness.url, outcome.status, outcome.problem)
        await db.call(self.engine, self._save, witness.id, outcome, new)
        return outcome

    async def _poll(self, client: Any, witness: Witness, new: list[heads.Head]) -> Outcome:
        base = witness.url
        data = await get_json(client, f"{base}/api/v1/audit/heads")
        listed = data.get("heads") if isinstance(data, dict) else None
        if not isinstance(listed, list) or not listed:
            raise FetchError("invalid", f"GET {base}/api/v1/audit/heads: no list of heads")
        problems: list[str] = []
        for item in listed:
            market = item.get("market") if isinstance(item, dict) else None
            if not isinstance(market, str) or not market:
                raise FetchError("invalid", "a head without a market")
            try:
                head = await self._check(client, witness, market, item)
            except heads.HeadError as exc:
                problems.append(f"{market}: {exc}")
                continue
            if head is not None:
                new.append(head)
        if problems:
            return Outcome("invalid", "; ".join(problems))
        return Outcome("ok")

    async def _check(self, client: Any, witness: Witness, market: str,
                     item: Any) -> heads.Head | None:
        assert witness.id is not None  # a stored witness
        last = await db.call(self.engine, self._last, witness.id, market)
        if last is not None:
            key = last.public_key
        else:
            found = await get_json(client, f"{witness.url}/api/v1/markets/{market}/audit/key")
            fetched = found.get("key") if isinstance(found, dict) else None
            if not isinstance(fetched, str):
                raise FetchError("invalid", f"{market}: no public key")
            key = fetched
        head = heads.parse(item, key, market)
        if last is None:
            records = await records_after(client, witness.url, market, 0, head.height)
            problem = extends(records, market, 0, GENESIS, head)
            if problem is not None:
                raise Inconsistent(problem)
            return head
        seen = f"height {last.height} seen at {last.seen_at:%Y-%m-%d %H:%M:%S} UTC"
        if head.height < last.height:
            raise Inconsistent(f"{market}: head height {head.height} is below the {seen} "
                               f"(truncated, or an old head replayed)")
        if head.audit.height < last.audit_height:
            raise Inconsistent(f"{market}: audit log height {head.audit.height} is below "
                               f"{last.audit_height} of the head kept (entries removed)")
        if head.audit.height == last.audit_height and head.audit.hash != last.audit_hash:
            raise Inconsistent(f"{market}: the audit log has another hash at height "
                               f"{last.audit_height} than in the head kept (rewritten)")
        if head.height == last.height:
            if head.hash != last.hash:
                raise Inconsistent(f"{market}: another hash at the {seen} (rewritten)")
            if head.audit.height == last.audit_height:
                return None  # nothing new
            return head
        records = await records_after(client, witness.url, market, last.height, head.height)
        problem = extends(records, market, last.height, last.hash, head)
        if problem is not None:
            raise Inconsistent(problem)
        return head

    async def poll_all(self) -> list[Outcome]:
        self.polls += 1
        outcomes = []
        for witness in await db.call(self.engine, self._witnesses):
            outcomes.append(await self.poll(witness))
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        """The duty: sign own heads and poll every witnessed server, every interval (the
        first time one interval after start: signing loads `cryptography`, which a server
        that only just started does not need yet)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if stop.is_set():
                return
            try:
                await db.call(self.engine, self._sign_own)
                await self.poll_all()
            except Exception:  # a bad poll must not end the duty
                log.exception("witness poll failed")

    # ---- what GET /api/v1/witness shows ---------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        with session_scope(self.engine) as session:
            out = []
            for witness in session.exec(select(Witness).order_by(col(Witness.id))):
                markets = []
                for market, count in session.exec(
                        select(WitnessedHead.market, func.count())
                        .where(WitnessedHead.witness_id == witness.id)
                        .group_by(WitnessedHead.market).order_by(WitnessedHead.market)):
                    recent = list(session.exec(select(WitnessedHead).where(
                        WitnessedHead.witness_id == witness.id, WitnessedHead.market == market)
                        .order_by(col(WitnessedHead.id).desc()).limit(RECENT_HEADS)))
                    row = recent[0]
                    markets.append({
                        "market": market, "key": row.public_key, "heads_seen": count,
                        "seen_at": public.time_text(row.seen_at), "head": _head_json(row),
                        "recent": [{**_head_json(r), "seen_at": public.time_text(r.seen_at)}
                                   for r in recent]})
                out.append({"url": witness.url, "status": witness.status,
                            "problem": witness.problem,
                            "added_at": public.time_text(witness.added_at),
                            "last_polled_at": public.time_text(witness.last_polled_at)
                            if witness.last_polled_at else None,
                            "last_ok_at": public.time_text(witness.last_ok_at)
                            if witness.last_ok_at else None,
                            "markets": markets})
            return out


def _head_json(row: WitnessedHead) -> dict[str, Any]:
    return {**heads.document(row.market, row.height, row.hash, row.audit_height,
                             row.audit_hash, row.time),
            "key": row.public_key, "signature": row.signature}


def add(engine: Engine, url: str) -> Witness:
    """Register a server to witness (idempotent); ValueError for a bad address."""
    url = normalise_url(url)
    with session_scope(engine) as session:
        found = session.exec(select(Witness).where(Witness.url == url)).first()
        if found is not None:
            return found
        witness = Witness(url=url, added_at=datetime.now(UTC))
        session.add(witness)
        session.flush()
        return witness


def remove(engine: Engine, url: str) -> bool:
    url = normalise_url(url)
    with session_scope(engine) as session:
        found = session.exec(select(Witness).where(Witness.url == url)).first()
        if found is None:
            return False
        for row in session.exec(select(WitnessedHead).where(
                WitnessedHead.witness_id == found.id)):
            session.delete(row)
        session.delete(found)
        return True


class WitnessCollector:
    """/metrics: each witnessed server's status (1 for the current one)."""

    STATUSES = ("new", "ok", "unreachable", "invalid", "inconsistent")

    def __init__(self, service: WitnessService) -> None:
        self.service = service
        self.rows: list[dict[str, Any]] = []

    async def prepare(self) -> None:
        self.rows = await db.call(self.service.engine, self.service.listing)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        status = GaugeMetricFamily("holobazaar_witness_status", "Witnessed servers by status "
                                   "(1: the current one)", labels=["url", "status"])
        seen = GaugeMetricFamily("holobazaar_witness_heads_seen", "Signed heads kept per "
                                 "witnessed server", labels=["url"])
        for row in self.rows:
            for name in self.STATUSES:
                status.add_metric([row["url"], name], 1 if row["status"] == name else 0)
            seen.add_metric([row["url"]], sum(m["heads_seen"] for m in row["markets"]))
        yield from (status, seen)
