"""What the story routes get from the assembled app, declared by type: `stories: Stories`,
`limiter: SubmissionLimiter` (and, with the others here, `engine`, `settings`, `scenes`,
`cluster`). These helpers are the only place the story routes read the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from holobazaar.cluster.dependencies import ClusterDep as ClusterDep  # with the others here
from holobazaar.cluster.limits import RateLimiter
from holobazaar.dependencies import EngineDep as EngineDep
from holobazaar.dependencies import SettingsDep as SettingsDep
from holobazaar.dependencies import app_services, in_place
from holobazaar.scenes.dependencies import Scenes as Scenes
from holobazaar.stories.bindings import StoryBindings


def get_stories(request: Request) -> StoryBindings:
    return app_services(request).stories


def get_submission_limiter(request: Request) -> RateLimiter:
    return app_services(request).submission_limiter


Stories = Annotated[StoryBindings, Depends(in_place(get_stories))]
SubmissionLimiter = Annotated[RateLimiter, Depends(in_place(get_submission_limiter))]
