"""The content folder as the server reads it: the scene files (holobazaar.scenes.loader)
with each market's shows (holobazaar.shows.loader) and the sample values of the template
bindings the stories and pulse domains provide, so that validation renders templates
that use them. The entry points (cli.py, web/) use this; scenes/ knows no other domain,
and a domain's own command gets it from cli.py (commands.content_loader)."""

from __future__ import annotations

from pathlib import Path

from holobazaar.pulse.bindings import sample_binding as pulse_sample
from holobazaar.scenes import loader
from holobazaar.scenes.loader import Content, SampleBinding, StoredAssets
from holobazaar.shows.loader import load_shows
from holobazaar.stories.bindings import sample_binding as stories_sample

# Template variables other domains bind at run time (SceneService.add_provider), with sample
# values. A domain with a binding provider adds its line.
SAMPLE_BINDINGS: dict[str, SampleBinding] = {"stories": stories_sample, "pulse": pulse_sample}


def load_content(content_dir: Path, stored: StoredAssets | None = None) -> Content:
    """The content folder, checked, with its shows and every binding's sample values.
    `stored`: each market's ready uploads (the server passes its stored assets, so a display
    may name an asset uploaded through the pipeline)."""
    return loader.load_content(content_dir, shows=load_shows, samples=SAMPLE_BINDINGS,
                               stored=stored)
