"""The layout check of issue 19 at the phone size (390x844): every demo display and every
display of the hostile market (tests/browser/layout_market/), measured from the live
three.js scene; the check itself, and what it asserts, is in layout_check.py. The laptop
size (1440x900) is test_display_layout_laptop.py: its own module, so that the two test
processes of `make test` each run one size."""

from __future__ import annotations

import pytest

from layout_check import ALL, IDS, check_display, layout_fixtures

# Re-exported: test_languages_browser.py checks its pages with these.
from layout_check import SETTLED as SETTLED
from layout_check import layout_problems as layout_problems

SIZE = "phone"
demo_server, sized, artifacts = layout_fixtures(SIZE)


@pytest.mark.parametrize(("market", "display"), ALL, ids=IDS)
def test_display_reads_well(sized, demo_server, artifacts, market: str, display: str):
    check_display(sized, SIZE, demo_server, artifacts, market, display)
