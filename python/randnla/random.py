"""Philox4x64-10 random streams, identical to ``numpy.random.Philox`` and the same on CPU and GPU.

These are the streams every randomized function in randnla draws from. They are exposed for
users who want the same guarantees for their own random blocks: a value is a pure function of
(key, counter, index), so a sub-block regenerated alone equals the slice of the whole, the
result does not depend on the number of threads, and CuPy output equals NumPy output bit for bit.
"""

from __future__ import annotations

import numpy as np

from randnla import _core, _gpu
from randnla._backend import is_cupy
from randnla._rng import counter_array, key_array, philox_key
from randnla._validate import check_choice, check_int, check_n_threads

__all__ = ["uniform", "standard_normal", "raw", "Stream"]


class Stream:
    """A Philox4x64-10 stream: a 128-bit key and a 256-bit starting counter.

    ``Stream(key=k, counter=c).uniform(n)`` equals
    ``numpy.random.Generator(numpy.random.Philox(key=k, counter=c)).random(n)`` bit for bit.

    Parameters
    ----------
    key : int or array of two uint64, optional
        The key. Exactly one of ``key`` and ``rng`` may be given.
    counter : int or array of four uint64
        The starting counter (NumPy's convention: the first block uses counter + 1).
    rng : None, int, SeedSequence, BitGenerator or Generator
        Draw a fresh key from this generator instead.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.random import Stream
    >>> s = Stream(key=7)
    >>> bool(np.array_equal(s.uniform(5), np.random.Generator(np.random.Philox(key=7)).random(5)))
    True
    """

    def __init__(self, key=None, counter=0, *, rng=None):
        if key is not None and rng is not None:
            raise ValueError("give either key or rng, not both")
        self.key = key_array(key) if key is not None else philox_key(rng)
        self.counter = counter_array(counter)

    def __repr__(self):
        key = int(self.key[0]) | (int(self.key[1]) << 64)
        return f"Stream(key={key:#x}, counter={self.counter.tolist()})"

    def _fill(self, kind, shape, dtype, offset, n_threads, like, out):
        offset = check_int(offset, "offset", minimum=0)
        n_threads = check_n_threads(n_threads)
        if out is not None:
            if shape is not None and tuple(np.atleast_1d(shape)) != tuple(out.shape):
                raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(np.atleast_1d(shape))}")
            if out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous:
                raise ValueError("out must be a C-contiguous float32 or float64 array")
            target = out
        else:
            dtype = np.dtype(dtype)
            if dtype not in (np.float32, np.float64):
                raise TypeError(f"dtype must be float32 or float64, got {dtype}")
            if np.ndim(shape) == 0:
                shape = (check_int(shape, "shape", minimum=0),)
            else:
                shape = tuple(check_int(s, "shape", minimum=0) for s in shape)
            if like is not None and is_cupy(like):
                n = int(np.prod(shape, dtype=np.int64))
                return _fill_gpu(kind, self.key, self.counter, offset, n, dtype).reshape(shape)
            target = np.empty(shape, dtype=dtype)
        if is_cupy(target):
            target[...] = _fill_gpu(kind, self.key, self.counter, offset, target.size, target.dtype).reshape(target.shape)
            return target
        fill = _core.philox_fill_float64 if target.dtype == np.float64 else _core.philox_fill_float32
        distribution = _core.Distribution.uniform if kind == "uniform" else _core.Distribution.normal
        fill(distribution, self.key, self.counter, offset, target, n_threads)
        return target

    def uniform(self, shape=None, *, dtype=np.float64, offset=0, n_threads=None, like=None, out=None):
        """Uniform values on [0, 1): values ``offset, offset + 1, ...`` of the stream.

        float64 uses 53 bits of one 64-bit draw; float32 uses 24 bits of one 32-bit half (low
        half first), both exactly as NumPy does. ``like`` = a CuPy array generates on its device;
        ``out`` = a C-contiguous float32/float64 array (NumPy or CuPy) to fill in place.
        """
        return self._fill("uniform", shape, dtype, offset, n_threads, like, out)

    def standard_normal(self, shape=None, *, dtype=np.float64, offset=0, n_threads=None, like=None, out=None):
        """Standard normal values (Box-Muller on pairs of 64-bit draws, same bits on CPU and GPU).

        These are *not* NumPy's ziggurat normals: NumPy's algorithm consumes a variable number
        of draws, which would break indexing by position.
        """
        return self._fill("normal", shape, dtype, offset, n_threads, like, out)

    def raw(self, n, *, offset=0, n_threads=None, like=None):
        """Raw 64-bit outputs, as ``numpy.random.Philox(...).random_raw(n)`` gives them."""
        n = check_int(n, "n", minimum=0)
        offset = check_int(offset, "offset", minimum=0)
        if like is not None and is_cupy(like):
            return _fill_gpu("raw", self.key, self.counter, offset, n, np.dtype(np.uint64))
        return _core.philox_raw(self.key, self.counter, offset, n, check_n_threads(n_threads))


def _fill_gpu(kind, key, counter, offset, n, dtype):
    cp = _gpu.cupy()
    out = cp.empty(n, dtype=dtype)
    name = "philox_raw" if kind == "raw" else f"philox_{kind}_{np.dtype(dtype).name}"
    kernel = _gpu.get_kernel("philox_fill.cu", name)
    args = tuple(np.uint64(w) for w in key) + tuple(np.uint64(w) for w in counter) + (np.uint64(offset), out, np.int64(n))
    _gpu.launch_1d(kernel, n, args)
    return out


def uniform(shape, *, rng=None, dtype=np.float64, n_threads=None, like=None, out=None):
    """Uniform [0, 1) values from a fresh Philox stream keyed by ``rng``.

    Parameters
    ----------
    shape : int or tuple of int
    rng : None, int, SeedSequence, BitGenerator or Generator
    dtype : float32 or float64
    n_threads : int, optional
        Threads to use (None: all cores). The values do not depend on it.
    like : array, optional
        A CuPy array to generate on the GPU (output follows ``like``).
    out : array, optional
        Fill this C-contiguous float32/float64 array in place (its dtype wins over ``dtype``).

    Examples
    --------
    >>> from randnla.random import uniform
    >>> x = uniform((2, 3), rng=0)
    >>> x.shape, bool(((0 <= x) & (x < 1)).all())
    ((2, 3), True)
    """
    return Stream(rng=rng).uniform(shape, dtype=dtype, n_threads=n_threads, like=like, out=out)


def standard_normal(shape, *, rng=None, dtype=np.float64, n_threads=None, like=None, out=None):
    """Standard normal values from a fresh Philox stream keyed by ``rng``.

    Examples
    --------
    >>> from randnla.random import standard_normal
    >>> standard_normal(4, rng=0).shape
    (4,)
    """
    return Stream(rng=rng).standard_normal(shape, dtype=dtype, n_threads=n_threads, like=like, out=out)


def raw(n, *, rng=None, n_threads=None, like=None):
    """Raw 64-bit Philox outputs from a fresh stream keyed by ``rng``."""
    return Stream(rng=rng).raw(n, n_threads=n_threads, like=like)
