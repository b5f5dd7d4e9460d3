"""What the asset routes get from the assembled app, declared by type: `files: AssetFilesDep`,
`jobs: AssetJobsDep` (and, with the others here, `engine`, `settings`, `scenes`, `cluster`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.assets.jobs import AssetJobs
from holobazaar.assets.storage import AssetFiles
from holobazaar.cluster.dependencies import ClusterDep as ClusterDep  # with the others here
from holobazaar.dependencies import EngineDep as EngineDep
from holobazaar.dependencies import SettingsDep as SettingsDep
from holobazaar.dependencies import app_services, in_place
from holobazaar.scenes.dependencies import Scenes as Scenes


def get_asset_files(request: Request) -> AssetFiles:
    return app_services(request).asset_files


def get_asset_jobs(request: Request) -> AssetJobs:
    return app_services(request).asset_jobs


AssetFilesDep = Annotated[AssetFiles, Depends(in_place(get_asset_files))]
AssetJobsDep = Annotated[AssetJobs, Depends(in_place(get_asset_jobs))]
