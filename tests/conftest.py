"""Shared fixtures: ``xp`` (numpy, and cupy where a CUDA device exists), ``dtype``, ``rng``.

Tests written against ``xp`` run on NumPy everywhere and on CuPy where a device is present; the
CuPy parameter is skipped with a reason elsewhere, so a CPU-only run still shows the GPU tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from randnla import _gpu

try:  # property-based tests draw the same examples on every run, so CI never flakes on a new draw
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("randnla", derandomize=True, database=None)
    _hypothesis_settings.load_profile("randnla")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass


def _gpu_reason():
    return "needs CuPy and a CUDA device (" + _gpu.describe() + ")"


@pytest.fixture(
    params=[
        pytest.param("numpy", id="numpy"),
        pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
    ]
)
def xp(request):
    """The array module under test."""
    if request.param == "numpy":
        return np
    if not _gpu.available():
        pytest.skip(_gpu_reason())
    return _gpu.cupy()


@pytest.fixture
def cupy():
    """CuPy itself, for GPU-only tests (skipped without a device)."""
    if not _gpu.available():
        pytest.skip(_gpu_reason())
    return _gpu.cupy()


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    """A fixed-seed generator: tests are reproducible and never flake."""
    return np.random.default_rng(20261129)


def to_numpy(x):
    """Bring an xp array back to NumPy for comparisons against references."""
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def tolerance(dtype, factor: float = 1.0) -> float:
    """A comparison tolerance derived from the dtype's machine epsilon."""
    return factor * float(np.finfo(dtype).eps)
