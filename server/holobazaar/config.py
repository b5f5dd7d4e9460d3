"""All settings in one place: flags override `HOLOBAZAAR_*` environment variables,
which override the defaults below (the README's configuration table mirrors them)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# The checks below are pure functions so that the packages that use these values (OSC,
# proxies, broker, markers) import them from here instead of config importing upward.
def parse_osc_allow_list(text: str) -> list[Network]:
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {part!r}") from None
    if not networks:
        raise ValueError("the OSC allow-list is empty")
    return networks


def parse_proxies(value: str) -> tuple[Network, ...]:
    """'10.0.0.5, 192.168.1.0/24, ::1' -> networks; raises ValueError naming the bad entry."""
    networks: list[Network] = []
    for entry in value.replace(";", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"trusted proxies: {entry!r} is not an IP address or "
                             "network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(networks)


def check_broker_url(url: str) -> str:
    """memory:// or redis[s]://host[:port][/db]; a clear error for anything else."""
    if url.startswith("memory://"):
        return url
    if url.startswith(("redis://", "rediss://", "unix://")):
        from redis.connection import parse_url

        try:
            parse_url(url)
        except ValueError as exc:
            raise ValueError(f"bad Redis URL {url!r}: {exc}") from None
        return url
    raise ValueError(f"unsupported broker URL {url!r}: use memory:// (one process) or "
                     "redis://host:port/db (several processes or machines)")


def check_asset_store(value: str) -> str:
    """local, postgresql or s3://bucket[/prefix] (assets/storage.py); a clear error for
    anything else."""
    text = value.strip()
    if text in ("local", "postgresql"):
        return text
    if text.startswith("s3://"):
        parts = urlsplit(text)
        bucket = parts.netloc
        if not (3 <= len(bucket) <= 63) or not all(c.isalnum() or c in "-." for c in bucket):
            raise ValueError(f"{value!r}: the bucket name must be 3-63 letters, digits, "
                             "dots or hyphens (s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: an S3 store is s3://bucket/prefix, without a query")
        import importlib.util

        if importlib.util.find_spec("boto3") is None:
            raise ValueError("an S3 asset store needs boto3: pip install 'holobazaar[s3]'")
        return text.rstrip("/")
    raise ValueError(f"unknown asset store {value!r}: use local (this node's data folder), "
                     "postgresql (the shared database) or s3://bucket/prefix")


def check_base_url(value: str) -> str:
    """An absolute http(s) URL with a host and no query or fragment; returned without a
    trailing slash so `{base}/d/{market}/{display}` is well-formed."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http:// or https:// URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} must not carry a query, fragment or credentials")
    if any(c.isspace() for c in text):
        raise ValueError(f"{value!r} contains whitespace")
    return text.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOLOBAZAAR_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP/WebSocket server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    data_dir: Path = Field(Path("var"), description="Where the database and stored files live.")
    content_dir: Path = Field(
        Path("."), description="Folder holding scenes/, stories/ and assets/ (the demo market)."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file <data-dir>/holobazaar.db."
    )
    broker_url: str = Field(
        "memory://", description="Hub broker: memory:// (in-process) or redis://host:port/db "
        "(several processes or machines; docs/deploy.md).")
    redis_prefix: str = Field(
        "holobazaar:", min_length=1, max_length=100,
        description="Prefix of every Redis key (several deployments can share one Redis).")
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the port "
                         "(more than 1 needs a redis:// broker).")
    db_pool_size: int = Field(5, ge=1, le=200, description="Database connections kept open "
                              "per process (PostgreSQL; size for workers x machines).")
    db_max_overflow: int = Field(10, ge=0, le=500, description="Extra database connections "
                                 "a process may open under load.")
    lease_ttl: float = Field(5.0, ge=0.5, le=300, description="Seconds a single-writer lease "
                             "(show clock, sweeps) lives without renewal: the takeover time.")
    watch: bool = Field(True, description="Reload scene files when they change on disk.")
    log_level: str = Field("info", description="Logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as plain text or JSON objects, one per line "
        "(docs/deploy.md, \"Logs\").")
    client_dir: Path = Field(
        Path(__file__).resolve().parents[2] / "web-client" / "dist",
        description="Built WebXR client (web-client/dist), served under /client/.",
    )
    xr_emulator: bool = Field(
        False, description="Tests only: serve the WebXR emulator (IWER and its rooms) and "
        "let the display page honour ?xr-emulate=1; off, its files answer 404.")

    # HTTPS for phones (WebXR needs a secure context); see docs/phones.md.
    tls: bool = Field(False, description="Serve HTTPS/WSS with a local CA (or certfile).")
    certfile: Path | None = Field(None, description="PEM certificate (chain) to use instead.")
    keyfile: Path | None = Field(None, description="PEM private key for --certfile.")
    http_port: int | None = Field(
        None, ge=0, le=65535,
        description="With --tls: plain-HTTP port for the CA and trust page [port+1; 0 = off].",
    )
    base_url: str | None = Field(
        None, description="Public address printed on markers [from host, port and tls]."
    )

    # Stream limits (announced to clients in `welcome.limits`).
    max_frame_bytes: int = Field(64 * 1024, ge=1024, description="Largest client frame accepted.")
    max_subscriptions: int = Field(32, ge=1, description="Channels one connection may join.")
    send_buffer_bytes: int = Field(
        1024 * 1024, ge=4096, description="Unsent bytes a client may owe before it is dropped."
    )
    client_rate: float = Field(20.0, gt=0, description="Client messages per second allowed.")
    client_burst: int = Field(40, ge=1, description="Burst of client messages allowed.")
    max_errors: int = Field(
        10, ge=1, description="Bad frames within a minute before the connection is closed."
    )
    heartbeat_interval: float = Field(5.0, gt=0, description="Seconds between heartbeats.")
    history_size: int = Field(1000, ge=1, description="Patches kept per channel for resume.")
    history_ttl: float = Field(600.0, gt=0, description="Seconds a patch is kept for resume.")

    # Accounts (docs/accounts.md).
    cookie_secure: Literal["auto"] | bool = Field(
        "auto", description="Secure flag on cookies; auto: when the request came over HTTPS.")
    session_ttl: float = Field(12 * 3600, gt=0, description="Seconds a sign-in lasts.")
    login_pair_failures: int = Field(5, ge=1, description="Failures of one account from "
                                     "one address before that pair backs off.")
    login_account_failures: int = Field(20, ge=1, description="Failures of one account (all "
                                        "addresses) before addresses it has not signed in "
                                        "from back off.")
    login_address_failures: int = Field(20, ge=1, description="Failures from one address "
                                        "before its tries on accounts it has not signed in "
                                        "to back off.")
    login_global_failures: int = Field(200, ge=1, description="Failures of all sign-ins "
                                       "before every pair that has not signed in before "
                                       "backs off (the ceiling of a distributed attack).")
    login_window: float = Field(900.0, gt=0, description="Seconds failed sign-ins count.")
    login_backoff: float = Field(1.0, gt=0, description="First back-off in seconds; doubles "
                                 "with each further failure.")
    login_known_days: float = Field(30.0, gt=0, description="Days a successful sign-in "
                                    "makes its (account, address) pair known.")
    trusted_proxies: str = Field(
        "", description="Comma-separated addresses/CIDR networks of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed [none] (docs/deploy.md).")
    hsts: int | None = Field(
        None, ge=0, le=2 * 365 * 86400, description="Strict-Transport-Security max-age in "
        "seconds on HTTPS responses; 0 = off [1 day with the local CA, 1 year with "
        "--certfile, off without TLS].")

    # Request bodies, refused with 413 before they are read (docs/deploy.md). Feeds
    # (inventory_max_body), uploads (asset_max_upload_bytes) and stories (story_max_bytes)
    # have their own limits.
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body of "
                                "every other route (JSON writes, forms).")

    # Inventory truth and the reconciler (docs/inventory.md).
    inventory_replay_window: float = Field(
        300.0, gt=0, description="Seconds a signed feed request's timestamp may be off.")
    inventory_max_body: int = Field(16 * 1024 * 1024, ge=1024,
                                    description="Largest feed body accepted (bytes).")
    inventory_v1_grace_days: float = Field(
        30.0, ge=0, description="Days after the upgrade to signing v2 (migration 0009) that "
        "feed requests signed the old way (sha256=, without the Idempotency-Key) are still "
        "accepted; 0 refuses them now.")
    inventory_stale_after: float = Field(
        900.0, gt=0, description="Seconds of feed silence before displays show 'unverified'.")
    reconcile_interval: float = Field(10.0, gt=0, description="Seconds between full sweeps.")
    hold_price_change: float = Field(
        50.0, gt=0, description="A price moving more than this percent is held for a curator.")
    breaker_share: float = Field(
        0.5, gt=0, le=1, description="A batch changing more than this share of a market's "
        "items is held whole (circuit breaker).")
    breaker_min: int = Field(10, ge=1, description="Changes a batch needs before the circuit "
                             "breaker can trip.")
    pull_timeout: float = Field(10.0, gt=0, description="Seconds a pull feed request may take.")
    # Verifiable price history (docs/inventory.md).
    witness_interval: float = Field(300.0, ge=1, description="Seconds between polls of the "
                                    "servers this one witnesses (and between its own "
                                    "signed heads).")
    witness_timeout: float = Field(10.0, gt=0, description="Seconds a request to a "
                                   "witnessed server may take.")
    audit_witnesses: str = Field("", description="Comma-separated base URLs of servers "
                                 "that witness this one: `audit verify` also checks the "
                                 "heads they kept.")

    # Asset pipeline (docs/assets.md).
    asset_max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1024,
                                        description="Largest uploaded file (also per zip member).")
    asset_max_edge: int = Field(2048, ge=64, le=8192,
                                description="Largest texture edge of the top level of detail.")
    asset_lod_edge: int = Field(1024, ge=64, le=8192,
                                description="Largest texture edge of lower levels of detail.")
    asset_timeout: float = Field(120.0, gt=0, description="Seconds one asset may process.")
    asset_memory_mb: int = Field(2048, ge=256, description="Memory limit of the worker (MB).")
    asset_workers: int = Field(1, ge=1, description="Assets processed at the same time.")
    asset_store: str = Field(
        "local", description="Where stored assets live: local (<data-dir>/assets, one "
        "node), postgresql (the shared --database-url, every node reads it) or "
        "s3://bucket/prefix (an S3-compatible bucket); docs/deploy.md.")
    asset_s3_endpoint: str | None = Field(
        None, description="Endpoint URL of an S3-compatible store that is not AWS "
        "[AWS_ENDPOINT_URL]; credentials and region: the standard AWS_* variables.")
    display_triangle_budget: int = Field(
        300_000, ge=1, description="Triangles one display may show (mid-range phone).")
    display_byte_budget: int = Field(
        8 * 1024 * 1024, ge=1, description="Bytes of models one display may download.")
    # Stories and recipes (docs/stories.md).
    story_max_bytes: int = Field(256 * 1024, ge=1024, description="Largest story/recipe "
                                 "body or file accepted (API and import).")
    submission_per_hour: float = Field(6.0, gt=0, description="Community submissions per "
                                       "client address per hour.")
    submission_burst: int = Field(3, ge=1, description="Submissions a client may send at once.")
    import_stories: bool = Field(True, description="serve: import <content>/stories files "
                                 "whose slugs are not in the database yet.")
    # Shows (docs/shows.md).
    show_lead_ms: float = Field(
        150.0, ge=0, le=5000, description="How far ahead of its start a cue is sent (ms).")
    osc_port: int | None = Field(
        None, ge=0, le=65535, description="UDP port for OSC show control [off].")
    osc_host: str = Field("127.0.0.1", description="Address the OSC listener binds to.")
    osc_allow: str = Field(
        "127.0.0.1,::1", description="Comma-separated addresses/networks allowed to send OSC.")
    osc_secret: str | None = Field(
        None, min_length=8, max_length=200,
        description="Shared secret, the first argument of every OSC message (required "
                    "with --osc-port).")

    @field_validator("osc_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_osc_allow_list(value)  # raises ValueError naming the bad entry
        return value

    @model_validator(mode="after")
    def _osc_needs_secret(self) -> Settings:
        if self.osc_port is not None and not self.osc_secret:
            raise ValueError("OSC needs a shared secret: set HOLOBAZAAR_OSC_SECRET "
                             "(8+ characters) with --osc-port")
        return self
    # Pulse: visitors' reactions (docs/pulse.md).
    pulse_k: int = Field(5, ge=1, description="Distinct devices below which pulse aggregates "
                         "are never shown (k-anonymity).")
    pulse_retention: float = Field(2 * 3600, gt=0, description="Seconds raw reaction events "
                                   "are kept (per-minute aggregates are kept).")
    pulse_rate: float = Field(1.0, gt=0, description="Reactions/dwell reports per second "
                              "per connection and per device.")
    pulse_burst: int = Field(5, ge=1, description="Burst of reactions allowed.")
    pulse_publish_interval: float = Field(1.0, ge=1.0, description="Seconds between pulse "
                                          "channel updates (at most one per second).")
    pulse_slow_interval: float = Field(10.0, ge=1.0, description="Seconds between updates "
                                       "of the 15-minute and day windows on the pulse channel.")
    pulse_binding_interval: float = Field(5.0, ge=1.0, description="Seconds between display "
                                          "refreshes for pulse bindings.")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_proxies(value)  # raises ValueError naming the bad entry
        return value

    @property
    def hsts_max_age(self) -> int:
        """The HSTS max-age in effect (0: no header)."""
        if self.hsts is not None:
            return self.hsts
        if not self.uses_tls:
            return 0
        return 365 * 86400 if self.certfile is not None else 86400

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        return check_broker_url(value)

    @field_validator("asset_store")
    @classmethod
    def _known_asset_store(cls, value: str) -> str:
        return check_asset_store(value)

    @model_validator(mode="after")
    def _postgresql_store_needs_postgresql(self) -> Settings:
        if self.asset_store == "postgresql" and not self.resolved_database_url.startswith(
                "postgresql"):
            raise ValueError("--asset-store postgresql keeps assets in the shared database: "
                             "give a PostgreSQL --database-url (postgresql+psycopg://...)")
        return self

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value)

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.certfile is not None

    @property
    def trust_port(self) -> int | None:
        """Plain-HTTP port for the CA download, only with a self-generated CA."""
        if not self.tls or self.certfile is not None or self.http_port == 0:
            return None
        if self.http_port is None:
            return self.port + 1 if self.port else None
        return self.http_port

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'holobazaar.db').resolve()}"

    @property
    def scenes_dir(self) -> Path:
        return self.content_dir / "scenes"

    @property
    def stories_dir(self) -> Path:
        return self.content_dir / "stories"

    @property
    def assets_dir(self) -> Path:
        return self.content_dir / "assets"
