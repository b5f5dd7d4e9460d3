"""The repository, and private copies of its demo content for a server to run on."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_content(target: Path) -> Path:
    """A writable copy of the demo content (scenes, stories, assets incl. built models)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("scenes", "stories", "assets"):
        source = REPO / name
        if source.exists():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
    return target
