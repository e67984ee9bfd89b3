"""The one place that turns bad input into a clear error.

Every public function validates through these helpers, so messages are uniform: they name the
argument and say what was expected. Dtype policy: float32 and float64 are kept; integers and
bools become float64; complex input raises ``TypeError`` where unsupported; anything else
(object, strings) raises ``TypeError``.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from randnla._backend import is_cupy, namespace_of

__all__ = [
    "as_float_array",
    "check_finite",
    "check_square",
    "check_symmetric",
    "check_shape",
    "check_int",
    "check_positive",
    "check_choice",
    "check_n_threads",
    "result_dtype",
    "symmetry_tolerance",
]


def result_dtype(*dtypes) -> np.dtype:
    """float32 only when every floating input is float32; float64 otherwise."""
    kept = [np.dtype(d) for d in dtypes if d is not None]
    if kept and all(d == np.float32 for d in kept):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_array(x, name: str, *, xp=None, ndim=None, min_ndim=None, allow_complex: bool = False, copy=None, dtype=None):
    """Convert ``x`` to a real floating array of its own library (NumPy or CuPy).

    Parameters
    ----------
    x : array_like
    name : str
        The argument's name, used in error messages.
    xp : module, optional
        Force the array library (numpy or cupy); default: the library of ``x``.
    ndim, min_ndim : int, optional
        Required exact / minimum number of dimensions.
    allow_complex : bool
        Keep complex64/complex128 instead of raising ``TypeError``.
    dtype : dtype, optional
        Cast to this floating dtype after the checks.
    """
    if xp is None:
        xp = namespace_of(x)
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    try:
        arr = xp.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__} ({err})") from None
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(xp.float64)
    elif kind == "c":
        if not allow_complex:
            raise TypeError(f"{name} is complex ({arr.dtype}); only real float32/float64 input is supported here")
    elif kind == "f":
        if arr.dtype == np.float16:
            arr = arr.astype(xp.float32)
        elif arr.dtype.itemsize > 8:
            raise TypeError(f"{name} has dtype {arr.dtype}; use float32 or float64")
    else:
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(arr.shape)}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(arr.shape)}")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    if copy:
        arr = arr.copy()
    return arr


def check_finite(x, name: str):
    """Raise ``ValueError`` if ``x`` holds NaN or infinity."""
    xp = namespace_of(x)
    if x.size and not bool(xp.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def check_square(x, name: str):
    """The last two dimensions must be equal."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square (shape (..., n, n)), got shape {tuple(x.shape)}")
    return x


def symmetry_tolerance(dtype) -> float:
    """Relative asymmetry accepted as round-off: ~100 units in the last place."""
    return 100.0 * float(np.finfo(dtype).eps)


def check_symmetric(x, name: str, rtol: float | None = None):
    """``max|x - x^T| <= rtol * max|x|`` for every matrix of the batch (``ValueError`` otherwise)."""
    check_square(x, name)
    if rtol is None:
        rtol = symmetry_tolerance(x.dtype)
    xp = namespace_of(x)
    if x.size == 0:
        return x
    if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
        # one pass over mirrored tiles in C++, no n x n temporaries
        from randnla import _core

        n = x.shape[-1]
        stack = np.ascontiguousarray(x).reshape(-1, n, n)
        asymmetry, scale = getattr(_core, f"asymmetry_{x.dtype.name}")(stack, 0)
    else:
        asymmetry = xp.abs(x - xp.swapaxes(x, -1, -2)).max(axis=(-2, -1))
        scale = xp.abs(x).max(axis=(-2, -1))
    bad = asymmetry > rtol * scale
    if bool(bad.any()):
        worst = float((asymmetry / xp.where(scale > 0, scale, 1)).max())
        raise ValueError(f"{name} must be symmetric: relative asymmetry {worst:.2e} exceeds {rtol:.1e}")
    return x


def check_shape(x, name: str, expected: tuple):
    """``expected`` may hold None for 'any size' in a dimension."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        pretty = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {pretty}, got {shape}")
    return x


def check_int(value, name: str, *, minimum=None, maximum=None) -> int:
    """An integer (not bool, not float) within [minimum, maximum]."""
    if type(value) is int:  # the common case, without the abstract-base-class checks
        pass
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, (bool, np.bool_, float)):
                raise TypeError
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive(value, name: str, *, strict: bool = True) -> float:
    """A finite real number > 0 (or >= 0 with strict=False)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'positive' if strict else 'non-negative'} and finite, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; expected one of {options}")
    return value


def check_n_threads(n_threads) -> int:
    """None means all cores (returned as 0 for the C++ core)."""
    if n_threads is None:
        return 0
    return check_int(n_threads, "n_threads", minimum=1)


def is_gpu(x) -> bool:
    return is_cupy(x)
