"""Checking from the outside: `holobazaar audit verify --public URL` fetches a server's
signed heads, its markets' public keys and every public record, recomputes each chain and
compares it with the head; and `audit verify --witness URL` fetches the heads of this
server that a witness kept. Only public routes are used (docs/inventory.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from holobazaar.audit import heads, public
from holobazaar.audit.models import GENESIS

PAGE = 1000
MAX_RESPONSE = 16 * 1024 * 1024


class Unusable(Exception):
    """The server could not be reached or answered something that is not what it should."""


@dataclass
class Report:
    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def get_json(client: Any, url: str) -> Any:
    import httpx

    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise Unusable(f"GET {url} answered HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_RESPONSE:
                    raise Unusable(f"GET {url}: answer larger than {MAX_RESPONSE} bytes")
    except httpx.TimeoutException:
        raise Unusable(f"GET {url} timed out") from None
    except httpx.HTTPError as exc:
        raise Unusable(f"GET {url} failed ({type(exc).__name__}: {exc})") from None
    import json

    try:
        return json.loads(bytes(data))
    except ValueError:
        raise Unusable(f"GET {url} did not answer JSON") from None


def _records(client: Any, base: str, market: str, upto: int) -> list[dict]:
    records: list[dict] = []
    while len(records) < upto:
        data = get_json(client, f"{base}/api/v1/markets/{market}/audit/records"
                                f"?after={len(records)}&limit={PAGE}")
        page = data.get("records") if isinstance(data, dict) else None
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise Unusable(f"records of {market}: not a list of records")
        if not page:
            break
        records += page
    return records[:upto]


def _item_history(client: Any, base: str, market: str, sku: str, upto: int) -> list[dict]:
    found: list[dict] = []
    cursor = 0
    while True:
        data = get_json(client, f"{base}/api/v1/markets/{market}/items/{sku}/history"
                                f"?cursor={cursor}&limit={PAGE}")
        page = data.get("records") if isinstance(data, dict) else None
        if not isinstance(page, list):
            raise Unusable(f"history of {sku}: not a list of records")
        found += [r for r in page if isinstance(r, dict) and isinstance(r.get("seq"), int)
                  and r["seq"] <= upto]
        cursor = data.get("next_cursor")
        if not isinstance(cursor, int) or cursor >= upto:
            return found


def verify_market(client: Any, base: str, item: Any, report: Report,
                  check_items: bool = True) -> None:
    market = item.get("market") if isinstance(item, dict) else None
    if not isinstance(market, str):
        report.problems.append("a head without a market")
        return
    key_doc = get_json(client, f"{base}/api/v1/markets/{market}/audit/key")
    key = key_doc.get("key") if isinstance(key_doc, dict) else None
    if not isinstance(key, str):
        report.problems.append(f"{market}: no public key published")
        return
    try:
        head = heads.parse(item, key, market)
    except heads.HeadError as exc:
        report.problems.append(f"{market}: {exc}")
        return
    records = _records(client, base, market, head.height)
    if len(records) < head.height:
        report.problems.append(f"{market}: the server publishes {len(records)} records, but "
                               f"its signed head says {head.height}")
        return
    last = GENESIS
    for _seq, digest, problem in public.chain(records, market):
        last = digest
        if problem is not None:
            report.problems.append(f"{market}: {problem}")
            return
    if last != head.hash:
        report.problems.append(f"{market}: the records do not lead to the signed head's hash")
        return
    if check_items:
        by_sku: dict[str, list[dict]] = {}
        for record in records:
            by_sku.setdefault(str(record.get("sku")), []).append(record)
        for sku, expected in sorted(by_sku.items()):
            shown = _item_history(client, base, market, sku, head.height)
            if shown != expected:
                report.problems.append(f"{market}: the history of {sku} differs from the "
                                       f"public chain ({len(shown)} records shown, "
                                       f"{len(expected)} in the chain)")
    report.ok.append(f"{market}: {head.height} records verified against the head signed "
                     f"at {head.time} (key {head.key[:16]}…)")


def verify_public(base: str, market: str | None = None, timeout: float = 10.0,
                  check_items: bool = True) -> Report:
    import httpx

    report = Report()
    base = base.rstrip("/")
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        try:
            listed: list[Any] | None
            if market is not None:
                listed = [get_json(client, f"{base}/api/v1/markets/{market}/audit/head")]
            else:
                data = get_json(client, f"{base}/api/v1/audit/heads")
                listed = data.get("heads") if isinstance(data, dict) else None
                if not isinstance(listed, list) or not listed:
                    raise Unusable(f"GET {base}/api/v1/audit/heads: no list of heads")
            for item in listed:
                verify_market(client, base, item, report, check_items)
        except Unusable as exc:
            report.problems.append(str(exc))
    return report


def witness_copies(url: str, keys: dict[str, str],
                   timeout: float = 10.0) -> tuple[list[tuple[str, heads.Head]], list[str]]:
    """The heads of this server's markets (`keys`: market -> public key) that the witness
    at `url` kept, each checked against its signature; and the problems found."""
    import httpx

    base = url.rstrip("/")
    found: list[tuple[str, heads.Head]] = []
    problems: list[str] = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        try:
            data = get_json(client, f"{base}/api/v1/witness")
        except Unusable as exc:
            return [], [f"witness {base}: {exc}"]
    witnesses = data.get("witnesses") if isinstance(data, dict) else None
    if not isinstance(witnesses, list):
        return [], [f"witness {base}: GET /api/v1/witness did not list witnesses"]
    for entry in witnesses:
        markets = entry.get("markets") if isinstance(entry, dict) else None
        for kept in markets if isinstance(markets, list) else []:
            market = kept.get("market") if isinstance(kept, dict) else None
            if not isinstance(market, str) or keys.get(market) != kept.get("key"):
                continue  # another server's market, or another key
            try:
                head = heads.parse(kept.get("head"), kept["key"], kept["market"])
            except heads.HeadError as exc:
                problems.append(f"witness {base}: the head it kept of {kept['market']}: {exc}")
                continue
            found.append((f"witness {base} kept (signed at {head.time})", head))
    if not found:
        problems.append(f"witness {base} keeps no head of this server's markets")
    return found, problems
