"""The cluster as routes get it from the assembled app: `cluster: ClusterDep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.cluster import Cluster
from holobazaar.dependencies import app_services, in_place


def get_cluster(request: Request) -> Cluster:
    return app_services(request).cluster


ClusterDep = Annotated[Cluster, Depends(in_place(get_cluster))]
