"""Hypothesis budgets of the fuzzers: small in `make test`, large in `make fuzz`.

`HOLOBAZAAR_FUZZ=deep` (what `make fuzz` sets) selects the deep profile, with new random
examples on every run; the quick profile is derandomized, so `make test` tries the same
examples every time (a failure there is reproducible, never a flake).
`HOLOBAZAAR_FUZZ_EXAMPLES=N` sets every fuzz test's example count. The profiles are
applied per test (`fuzz_settings`), never loaded globally, so the other property tests of
the suite keep their own settings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

DEEP = os.environ.get("HOLOBAZAAR_FUZZ", "").lower() == "deep"
PROFILE = "holobazaar-fuzz-deep" if DEEP else "holobazaar-fuzz"

_COMMON = {
    "deadline": None,  # a live server on two busy cores: latency is not the property
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                              HealthCheck.data_too_large,
                              HealthCheck.function_scoped_fixture],
    "print_blob": True,  # a failure prints the @reproduce_failure blob to save
}
settings.register_profile("holobazaar-fuzz", max_examples=10, derandomize=True, **_COMMON)
settings.register_profile("holobazaar-fuzz-deep", max_examples=500, **_COMMON)
EXAMPLES = int(os.environ.get("HOLOBAZAAR_FUZZ_EXAMPLES", "0"))


def fuzz_settings(quick: int, deep: int | None = None) -> settings:
    """The fuzz profile with `quick` examples (`make test`), `deep` under `make fuzz`
    (default: 50 times `quick`)."""
    examples = EXAMPLES or ((deep or quick * 50) if DEEP else quick)
    return settings(settings.get_profile(PROFILE), max_examples=examples)
