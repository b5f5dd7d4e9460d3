"""The running app's services as one typed object (`Services`), built once by
web/assembly.py's `assemble` and kept as `app.state.services`; `services(request)` is how
the pages of web/ read it. Domains never import this module (web/ is above them): their
`dependencies.py` helpers read the field they need (holobazaar.dependencies.app_services).
Types only at import time here, so that every page may import this module."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from holobazaar.accounts.preview_links import PreviewLinks
    from holobazaar.accounts.service import TokenCache
    from holobazaar.accounts.stream import StreamAuth
    from holobazaar.assets.jobs import AssetJobs
    from holobazaar.assets.storage import AssetFiles
    from holobazaar.audit.witness import WitnessService
    from holobazaar.cluster import Cluster
    from holobazaar.cluster.limits import RateLimiter
    from holobazaar.config import Settings
    from holobazaar.inventory.pull import Poller
    from holobazaar.inventory.reconciler import Reconciler
    from holobazaar.inventory.replay import ReplayGuard
    from holobazaar.inventory.truth_feed import TruthFeed
    from holobazaar.pulse.bindings import PulseBindings
    from holobazaar.pulse.service import PulseService
    from holobazaar.quicklook.service import QuickLook
    from holobazaar.redis_connection import RedisConnection
    from holobazaar.scenes.scheduler import Scheduler
    from holobazaar.scenes.service import SceneService
    from holobazaar.shows.clustered import SharedShows
    from holobazaar.shows.osc import OscControl
    from holobazaar.shows.service import ShowService
    from holobazaar.shows.starts import ShowStarts
    from holobazaar.stories.bindings import StoryBindings
    from holobazaar.stream.connection import StreamLimits
    from holobazaar.stream.hub import Hub
    from holobazaar.web.client import ClientBuild


@dataclass(frozen=True)
class Services:
    """Everything a running app's routes and pages use, built once by `assemble`. Domains
    do not import this class (web/ is above them): their `dependencies.py` helpers read
    the one field they need through `holobazaar.dependencies.app_services`."""

    settings: Settings
    engine: Engine
    hub: Hub
    cluster: Cluster
    scenes: SceneService
    stories: StoryBindings
    shows: ShowService
    pulse: PulseService
    pulse_bindings: PulseBindings
    reconciler: Reconciler
    poller: Poller
    replay_guard: ReplayGuard
    witness: WitnessService
    truth_feed: TruthFeed
    show_starts: ShowStarts
    scheduler: Scheduler
    asset_files: AssetFiles
    asset_jobs: AssetJobs
    quicklook: QuickLook
    submission_limiter: RateLimiter
    token_cache: TokenCache
    preview_links: PreviewLinks
    stream_auth: StreamAuth
    stream_limits: StreamLimits
    client: ClientBuild
    osc: OscControl | None = None
    shared_shows: SharedShows | None = None  # with Redis: the shows every node shares
    osc_address: Any = None  # the OSC socket's (host, port), when --osc-port is set
    # What /metrics collects beyond the stream's own figures; what the stream counts.
    metric_collectors: list[Any] = field(default_factory=list)
    stream_metrics: dict[str, int] = field(default_factory=dict)
    # What `shutdown` stops: the background duties' event, tasks and closers.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    redis: RedisConnection | None = None
    osc_close: Callable[[], Awaitable[None]] | None = None

    @property
    def reaction_sink(self) -> PulseService:
        """Where the stream hands visitors' reactions (stream/routes.py)."""
        return self.pulse


def services(conn: HTTPConnection) -> Services:
    """The running app's services, typed, for the pages of web/ (domains use their own
    dependencies.py helpers instead)."""
    return conn.app.state.services
