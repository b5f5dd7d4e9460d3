"""The layout check of issue 19 at the laptop size (1440x900): every demo display and every
display of the hostile market, measured from the live three.js scene (layout_check.py; the
phone size is test_display_layout.py)."""

from __future__ import annotations

import pytest

from layout_check import ALL, IDS, check_display, layout_fixtures

SIZE = "laptop"
demo_server, sized, artifacts = layout_fixtures(SIZE)


@pytest.mark.parametrize(("market", "display"), ALL, ids=IDS)
def test_display_reads_well(sized, demo_server, artifacts, market: str, display: str):
    check_display(sized, SIZE, demo_server, artifacts, market, display)
