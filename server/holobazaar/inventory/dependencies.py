"""What inventory's routes get from the assembled app, declared by type:
`scenes: Scenes`, `reconciler: ReconcilerDep`... These helpers are the only place the
inventory routes read the app's state (set up once by web/app.py's assembly)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.cluster import Cluster
from holobazaar.dependencies import EngineDep as EngineDep  # with the others here
from holobazaar.dependencies import SettingsDep as SettingsDep
from holobazaar.dependencies import in_place
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.replay import ReplayGuard
from holobazaar.scenes.dependencies import Scenes as Scenes  # with the others here
from holobazaar.scenes.dependencies import market_or_404 as market_or_404


def get_reconciler(request: Request) -> Reconciler:
    return request.app.state.reconciler


def get_poller(request: Request) -> Poller:
    return request.app.state.poller


def get_cluster(request: Request) -> Cluster | None:
    return getattr(request.app.state, "cluster", None)  # None before start-up finished


def get_replay_guard(request: Request) -> ReplayGuard:
    """The webhook's replay guard, made at its first use (one per app)."""
    state = request.app.state
    if getattr(state, "replay_guard", None) is None:
        settings = state.settings
        state.replay_guard = ReplayGuard(state.engine, settings.inventory_replay_window,
                                         settings.inventory_v1_grace_days)
    return state.replay_guard


ReconcilerDep = Annotated[Reconciler, Depends(in_place(get_reconciler))]
PollerDep = Annotated[Poller, Depends(get_poller)]
ClusterDep = Annotated[Cluster | None, Depends(get_cluster)]
ReplayGuardDep = Annotated[ReplayGuard, Depends(get_replay_guard)]

