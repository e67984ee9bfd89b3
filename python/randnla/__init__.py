"""randnla: randomized numerical linear algebra with a C++ core.

Areas, one public module each (imported on first use, so ``import randnla`` stays fast):

- :mod:`randnla.random`  -- Philox4x64-10 streams, bit-identical to ``numpy.random.Philox``
- :mod:`randnla.sketch`  -- sketching operators, coordinated sampling, sketched least squares
- :mod:`randnla.linalg`  -- randomized Jacobi eigen/singular value decompositions
- :mod:`randnla.dpp`     -- exact DPP and k-DPP samplers
- :mod:`randnla.cones`   -- projections onto spectral matrix cones
- :mod:`randnla.ot`      -- Sinkhorn-Newton-Sparse optimal transport

NumPy in gives NumPy out; CuPy in gives CuPy out, computed on the GPU. Every randomized
function takes ``rng=`` (None, int, SeedSequence, BitGenerator or Generator).
"""

import importlib as _importlib

__version__ = "0.1.0"

_SUBMODULES = ("random", "sketch", "linalg", "dpp", "cones", "ot")

__all__ = list(_SUBMODULES) + ["__version__", "show_config"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = _importlib.import_module(f"randnla.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'randnla' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def show_config():
    """Print how this randnla was built: OpenMP, threads, BLAS/LAPACK source, GPU availability."""
    from randnla import _core, _gpu

    print(f"randnla {__version__}")
    print(f"  OpenMP: {'yes' if _core.have_openmp else 'no (serial fallback)'}; threads for n_threads=None: {_core.max_threads()}")
    print("  BLAS/LAPACK: SciPy's (scipy.linalg.cython_blas / cython_lapack)")
    print(f"  GPU: {_gpu.describe()}")
