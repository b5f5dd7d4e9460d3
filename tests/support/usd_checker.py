"""Pixar's ARKit compliance checker (what `usdchecker --arkit` runs) over a USDZ file.

usd-core's wheel ships no shader definitions (usdShaders' shaderDefs.usda), so the check
of shader input types against UsdPreviewSurface, UsdUVTexture and UsdPrimvarReader_float2
would fail on every shader with "invalid shader node". support/usdshaders/ declares those
three shaders' inputs and outputs as the UsdPreviewSurface specification lists them
(written for these tests; no shader code), registered as the `usdShaders` plugin before
the shader registry is first used, so that check runs for real too."""

from __future__ import annotations

import contextlib
from pathlib import Path

SHADERS = Path(__file__).parent / "usdshaders"
_ready = False


def _register() -> None:
    global _ready
    if _ready:
        return
    from pxr import Plug, Sdr, Tf

    Plug.Registry().RegisterPlugins(str(SHADERS))
    # usdHydra's discovery plugin misses its own file: one error, then it is quiet.
    with contextlib.suppress(Tf.ErrorException):
        Sdr.Registry().GetShaderNodeByIdentifier("UsdPreviewSurface")
    assert Sdr.Registry().GetShaderNodeByIdentifier("UsdPreviewSurface"), \
        "the test shader definitions did not register"
    _ready = True


def arkit_problems(path: Path) -> list[str]:
    """Errors and failed checks of UsdUtils.ComplianceChecker(arkit=True); [] is a pass."""
    _register()
    from pxr import UsdUtils

    checker = UsdUtils.ComplianceChecker(arkit=True)
    checker.CheckCompliance(str(path))
    return [*checker.GetErrors(), *checker.GetFailedChecks()]
