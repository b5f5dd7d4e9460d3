"""Signed chain heads: a market's Ed25519 key, the heads this server signs (and keeps,
apart from the chains), and the checks that compare chains with heads.

A head says, at a time: the market's public chain has `height` records and the last one's
hash is `hash`; the server's whole audit log has `audit.height` entries and the last
one's hash is `audit.hash`. Its signature is Ed25519 over the canonical JSON (RFC 8785) of
those fields. A chain that later lost entries (truncation), or whose entries were edited
and every later hash recomputed (re-hashing), no longer reproduces a head it once had:
`verify_local` compares against every head this server signed, and `holobazaar audit
verify --witness` against the copies another server kept (holobazaar.audit.witness).

`cryptography` is imported on first use (10 MB of RSS a server without heads never pays)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from holobazaar.audit import chain, public
from holobazaar.audit.models import GENESIS, AuditEntry, MarketKey, SignedHead
from holobazaar.canonical import canonical_bytes

log = logging.getLogger(__name__)

HEAD_TYPE = "holobazaar.audit-head/1"
HEX64 = r"^[0-9a-f]{64}$"
MARKET_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"


class HeadError(ValueError):
    """A head that is malformed, or whose signature does not verify."""


class ChainBehind(RuntimeError):
    """The chain is shorter than a head this server signed before: it refuses to sign."""


# ---- keys and signatures ---------------------------------------------------------------

def new_key_pair() -> tuple[str, str]:
    """(private, public) raw Ed25519 keys, hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    return (private.private_bytes(raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption()).hex(),
            private.public_key().public_bytes(raw, serialization.PublicFormat.Raw).hex())


def sign(private_hex: str, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex)).sign(message).hex()


def signature_ok(public_hex: str, message: bytes, signature_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def market_key(session: Session, market: str) -> MarketKey:
    """The market's key pair, made on first need (two nodes racing: one insert wins)."""
    found = session.get(MarketKey, market)
    if found is not None:
        return found
    private, public_hex = new_key_pair()
    try:
        with session.begin_nested():
            session.add(MarketKey(market=market, public_key=public_hex, private_key=private,
                                  created_at=datetime.now(UTC)))
    except IntegrityError:
        pass
    found = session.get(MarketKey, market)
    assert found is not None
    log.info("audit: made the signing key of market %s (public %s)", market,
             found.public_key)
    return found


# ---- the head document -----------------------------------------------------------------

def document(market: str, height: int, digest: str, audit_height: int, audit_hash: str,
             time: str) -> dict[str, Any]:
    """The signed fields of a head; the signature is over canonical_bytes(document)."""
    return {"type": HEAD_TYPE, "market": market, "height": height, "hash": digest,
            "audit": {"height": audit_height, "hash": audit_hash}, "time": time}


class AuditPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: StrictInt = Field(ge=0)
    hash: str = Field(pattern=HEX64)


class Head(BaseModel):
    """A signed head as published (`GET /api/v1/markets/{m}/audit/head`)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["holobazaar.audit-head/1"]
    market: str = Field(pattern=MARKET_ID)
    height: StrictInt = Field(ge=0)
    hash: str = Field(pattern=HEX64)
    audit: AuditPart
    time: str = Field(max_length=40)
    key: str = Field(pattern=HEX64)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")

    @field_validator("time")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError("time without a zone")
        return value

    def document(self) -> dict[str, Any]:
        return document(self.market, self.height, self.hash, self.audit.height,
                        self.audit.hash, self.time)

    def moment(self) -> datetime:
        return datetime.fromisoformat(self.time)


def parse(data: Any, key: str | None = None, market: str | None = None) -> Head:
    """A head from untrusted JSON: well-formed, for `market`, signed by `key` (or by the
    key it names, when no key is pinned). Raises HeadError saying what is wrong."""
    try:
        head = Head.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "head"
        raise HeadError(f"malformed head: {where}: {first['msg']}") from None
    if market is not None and head.market != market:
        raise HeadError(f"head is for market {head.market!r}, not {market!r}")
    if key is not None and head.key != key:
        raise HeadError(f"head is signed with key {head.key[:16]}…, not the market's key "
                        f"{key[:16]}…")
    if not signature_ok(head.key, canonical_bytes(head.document()), head.signature):
        raise HeadError("head signature does not verify with the market's public key")
    return head


# ---- heads this server signs ---------------------------------------------------------

def audit_head(session: Session) -> tuple[int, str]:
    """(height, hash) of the audit log. Counted from the last signed head's entry when it
    is still there (a point lookup and the few entries since), not over the whole log.

    Each statement may see a newer log than the one before (appends commit meanwhile), so
    the signed head is read first and every count stops at the entry whose hash is
    returned: height and hash always describe the same entry."""
    signed = session.exec(select(SignedHead).order_by(col(SignedHead.id).desc())
                          .limit(1)).first()
    anchor = None if signed is None or signed.audit_height == 0 else session.exec(
        select(AuditEntry.id).where(AuditEntry.hash == signed.audit_hash)).first()
    last = session.exec(select(AuditEntry.id, AuditEntry.hash)
                        .order_by(col(AuditEntry.id).desc()).limit(1)).first()
    if last is None:
        return 0, GENESIS
    last_id, last_hash = last
    if signed is not None and anchor is not None:
        newer = session.exec(select(func.count()).select_from(AuditEntry)
                             .where(col(AuditEntry.id) > anchor,
                                    col(AuditEntry.id) <= last_id)).one()
        return signed.audit_height + newer, last_hash
    return session.exec(select(func.count()).select_from(AuditEntry)
                        .where(col(AuditEntry.id) <= last_id)).one(), last_hash


def to_json(row: SignedHead, key: str) -> dict[str, Any]:
    return {**document(row.market, row.height, row.hash, row.audit_height, row.audit_hash,
                       row.time), "key": key, "signature": row.signature}


def latest(session: Session, market: str) -> SignedHead | None:
    return session.exec(select(SignedHead).where(SignedHead.market == market)
                        .order_by(col(SignedHead.id).desc()).limit(1)).first()


def issue(session: Session, market: str) -> dict[str, Any]:
    """The market's current head, signed: the last one issued when nothing changed since,
    else a new one (kept). Refuses (ChainBehind) to sign a chain shorter than a head it
    signed before."""
    height, digest = public.head(session, market)
    audit_height, audit_hash = audit_head(session)
    key = market_key(session, market)
    last = latest(session, market)
    if last is not None:
        if (last.height, last.hash, last.audit_height, last.audit_hash) == (
                height, digest, audit_height, audit_hash):
            return to_json(last, key.public_key)
        if height < last.height or audit_height < last.audit_height:
            log.error("audit: refusing to sign market %s: chain heights %s/%s are below the "
                      "head signed at %s (%s/%s); run `holobazaar audit verify`", market,
                      height, audit_height, last.time, last.height, last.audit_height)
            raise ChainBehind(f"the audit chain of market {market!r} is shorter than the "
                              f"head signed at {last.time}; the operator must run "
                              f"`holobazaar audit verify`")
    moment = public.time_text(datetime.now(UTC))
    doc = document(market, height, digest, audit_height, audit_hash, moment)
    row = SignedHead(market=market, height=height, hash=digest, audit_height=audit_height,
                     audit_hash=audit_hash, time=moment,
                     signature=sign(key.private_key, canonical_bytes(doc)))
    session.add(row)
    session.flush()
    return to_json(row, key.public_key)


# ---- comparing chains with heads -----------------------------------------------------

def stored_heads(session: Session) -> tuple[list[str], list[tuple[str, Head]]]:
    """Problems among the heads this server signed (order, signatures), and those to
    compare with the chains: per market the highest, and the one with the longest audit
    log."""
    problems: list[str] = []
    best: dict[str, SignedHead] = {}
    longest: SignedHead | None = None
    seen: dict[str, SignedHead] = {}
    for row in session.exec(select(SignedHead).order_by(col(SignedHead.id))
                            .execution_options(yield_per=1000)):
        before = seen.get(row.market)
        if before is not None and (row.height < before.height
                                   or row.audit_height < before.audit_height):
            problems.append(f"signed head {row.id} of {row.market} ({row.time}) is lower than "
                            f"the head signed before it at {before.time}")
        seen[row.market] = row
        if row.market not in best or row.height > best[row.market].height:
            best[row.market] = row
        if longest is None or row.audit_height > longest.audit_height:
            longest = row
    chosen = list(best.values()) + ([longest] if longest is not None else [])
    heads: list[tuple[str, Head]] = []
    for row in {r.id: r for r in chosen}.values():
        key = session.get(MarketKey, row.market)
        label = f"this server signed at {row.time}"
        if key is None:
            problems.append(f"signed head {row.id} of {row.market}: the market's key is gone")
            continue
        try:
            heads.append((label, parse(to_json(row, key.public_key), key.public_key)))
        except HeadError as exc:
            problems.append(f"signed head {row.id} of {row.market}: {exc}")
    return problems, heads


def compare(session: Session, heads: Iterable[tuple[str, Head]]) -> list[str]:
    """Walk the audit log and every market's public chain once, then check each head
    (label, head) against them, and each audit entry's record of the public history."""
    heads = list(heads)
    audit_problems, audit_found, audit_height, links = chain.walk(
        session, {h.audit.height for _, h in heads})
    problems = list(audit_problems)
    wanted: dict[str, set[int]] = {}
    for _, head in heads:
        wanted.setdefault(head.market, set()).add(head.height)
    for _, market, to, _digest in links:
        wanted.setdefault(market, set()).add(to)
    for market in public.markets(session):
        wanted.setdefault(market, set())
    found: dict[str, dict[int, str]] = {}
    heights: dict[str, int] = {}
    for market, needed in sorted(wanted.items()):
        chain_problems, found[market], heights[market] = public.verify(session, market, needed)
        problems += chain_problems
    linked: dict[str, int] = {}
    for entry_id, market, to, digest in links:
        if found[market].get(to) != digest:
            problems.append(f"entry {entry_id}: records public record {to} of {market}, "
                            f"which the public history no longer has as it was")
        linked[market] = max(linked.get(market, 0), to)
    for market, height in sorted(heights.items()):
        if height > linked.get(market, 0):
            problems.append(f"public chain of {market}: records {linked.get(market, 0) + 1}"
                            f"-{height} are recorded by no audit entry")
    for label, head in heads:
        problems += _against(head, label, found.get(head.market, {}),
                             heights.get(head.market, 0), audit_found, audit_height)
    return problems


def _against(head: Head, label: str, found: dict[int, str], height: int,
             audit_found: dict[int, str], audit_height: int) -> list[str]:
    problems = []
    if height < head.height:
        problems.append(f"public chain of {head.market} has {height} records, but the head "
                        f"{label} says {head.height}: records were removed")
    elif found.get(head.height, GENESIS) != head.hash:
        problems.append(f"public chain of {head.market}: record {head.height} is not the one "
                        f"the head {label} covers: history was rewritten")
    if audit_height < head.audit.height:
        problems.append(f"audit log has {audit_height} entries, but the head {label} says "
                        f"{head.audit.height}: entries were removed (truncated)")
    elif audit_found.get(head.audit.height, GENESIS) != head.audit.hash:
        problems.append(f"audit log: entry {head.audit.height} is not the one the head "
                        f"{label} covers: entries were rewritten and re-hashed")
    return problems


def verify_local(session: Session, extra: Iterable[tuple[str, Head]] = ()) -> list[str]:
    """Everything `holobazaar audit verify` checks with what this server holds, plus
    `extra` heads (the copies witnesses kept)."""
    problems, heads = stored_heads(session)
    return compare(session, [*heads, *extra]) + problems


def fingerprint(key: str) -> str:
    """A short, readable form of a public key for pages (not for checks)."""
    return ":".join(re.findall("....", key[:32]))
