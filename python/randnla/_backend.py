"""Which array library an input belongs to, and "output follows input".

CuPy is never imported here: array-api-compat recognises CuPy arrays by their type's module,
so a CPU-only user never pays for (or needs) CuPy.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import is_cupy_array, is_numpy_array

__all__ = ["is_cupy", "namespace_of", "asnumpy", "is_scipy_sparse", "is_linear_operator", "is_dask"]


def is_cupy(x) -> bool:
    """True for a CuPy ndarray (or a cupyx.scipy.sparse matrix)."""
    if is_cupy_array(x):
        return True
    module = type(x).__module__
    return module.startswith("cupyx.scipy.sparse") or module.startswith("cupy.")


def namespace_of(*arrays):
    """The array module (numpy or cupy) the inputs belong to.

    Mixing NumPy and CuPy arrays raises ``TypeError``: randnla never moves large data between
    host and device behind the caller's back. Python scalars, lists and None are neutral.
    """
    found = None
    for x in arrays:
        if x is None or isinstance(x, (int, float, complex, bool, list, tuple, np.generic)):
            continue
        if is_cupy(x):
            import cupy

            module = cupy
        elif is_numpy_array(x) or is_scipy_sparse(x) or is_linear_operator(x) or hasattr(x, "__array__"):
            module = np
        else:
            continue
        if found is not None and found is not module:
            raise TypeError("inputs mix NumPy and CuPy arrays; move them to one device first")
        found = module
    return np if found is None else found


def asnumpy(x):
    """A NumPy view or copy of ``x`` (device-to-host only when ``x`` is a CuPy array)."""
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


def is_scipy_sparse(x) -> bool:
    module = type(x).__module__
    return module.startswith("scipy.sparse") and hasattr(x, "tocsr")


def is_linear_operator(x) -> bool:
    """A scipy/cupyx LinearOperator, or any duck-typed operator with shape and matvec."""
    if isinstance(x, np.ndarray) or is_cupy_array(x) or is_scipy_sparse(x):
        return False
    return hasattr(x, "shape") and hasattr(x, "matvec") and hasattr(x, "dtype")


def is_dask(x) -> bool:
    """True for a ``dask.array.Array`` (recognised by its type's module: Dask is never imported here)."""
    module = type(x).__module__
    return (module == "dask.array" or module.startswith("dask.array.")) and hasattr(x, "to_delayed")
