"""What inventory's routes get from the assembled app, declared by type:
`scenes: Scenes`, `reconciler: ReconcilerDep`... These helpers are the only place the
inventory routes read the app's state (set up once by web/app.py's assembly)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.cluster.dependencies import ClusterDep as ClusterDep  # with the others here
from holobazaar.dependencies import EngineDep as EngineDep  # with the others here, in_place
from holobazaar.dependencies import SettingsDep as SettingsDep
from holobazaar.dependencies import app_services, in_place
from holobazaar.inventory.pull import Poller
from holobazaar.inventory.reconciler import Reconciler
from holobazaar.inventory.replay import ReplayGuard
from holobazaar.scenes.dependencies import Scenes as Scenes  # with the others here
from holobazaar.scenes.dependencies import market_or_404 as market_or_404


def get_reconciler(request: Request) -> Reconciler:
    return app_services(request).reconciler


def get_poller(request: Request) -> Poller:
    return app_services(request).poller


def get_replay_guard(request: Request) -> ReplayGuard:
    """The webhook's replay guard (one per app)."""
    return app_services(request).replay_guard


ReconcilerDep = Annotated[Reconciler, Depends(in_place(get_reconciler))]
PollerDep = Annotated[Poller, Depends(in_place(get_poller))]
ReplayGuardDep = Annotated[ReplayGuard, Depends(in_place(get_replay_guard))]

