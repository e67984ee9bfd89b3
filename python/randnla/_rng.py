"""The one random-number contract: ``rng=`` (SPEC 7) to a 128-bit Philox4x64-10 key.

The C++ core and the CUDA kernels generate every random quantity from Philox4x64-10 with a key
drawn here from the caller's generator, so the C++ stream equals ``numpy.random.Philox`` bit for
bit, and each quantity is addressed by a counter derived from its logical index (entry (i, j), sample
s), never from a thread: results are the same for any thread count and on CPU and GPU.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["normalize_rng", "philox_key", "zero_counter"]


def normalize_rng(rng, name: str = "rng") -> np.random.Generator:
    """Turn ``rng`` into a ``numpy.random.Generator`` following SPEC 7.

    Accepts None (fresh OS entropy), a non-negative int, a ``SeedSequence``, a ``BitGenerator`` or a
    ``Generator`` (used as is, so its state advances). Anything else raises ``TypeError``.
    """
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator, np.random.Generator)):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if int(rng) < 0:
            raise ValueError(f"{name} must be a non-negative integer seed, got {int(rng)}")
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            f"{name} must be None, an int, a SeedSequence, a BitGenerator or a Generator; got a legacy "
            "RandomState (use numpy.random.default_rng instead)"
        )
    raise TypeError(
        f"{name} must be None, an int, a SeedSequence, a BitGenerator or a Generator, got {type(rng).__name__}"
    )


def philox_key(rng, name: str = "rng") -> np.ndarray:
    """Draw a fresh 128-bit Philox key (uint64[2]) from ``rng``.

    Calling this advances a passed ``Generator``, so two calls with the same Generator give two
    independent streams, while the same int seed always gives the same stream.
    """
    generator = normalize_rng(rng, name)
    bit_generator = generator.bit_generator
    if type(bit_generator) in _RAW_IS_UINT64:
        # these emit one full 64-bit word per raw draw, which is exactly what the full-range
        # integers() call returns (same values, same state afterwards) at a tenth of the cost
        return bit_generator.random_raw(2)
    return generator.integers(0, 2**64, size=2, dtype=np.uint64)


# Bit generators whose raw output is their next_uint64 (MT19937's raw output is 32-bit).
_RAW_IS_UINT64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64)


def zero_counter() -> np.ndarray:
    return np.zeros(4, dtype=np.uint64)


def counter_array(counter) -> np.ndarray:
    """A 256-bit counter given as an int (like numpy.random.Philox) or four uint64 words."""
    if isinstance(counter, numbers.Integral):
        value = int(counter)
        if value < 0 or value >= 2**256:
            raise ValueError("counter must be in [0, 2**256)")
        return np.array([(value >> (64 * i)) & (2**64 - 1) for i in range(4)], dtype=np.uint64)
    words = np.asarray(counter, dtype=np.uint64)
    if words.shape != (4,):
        raise ValueError(f"counter must be an int or four uint64 words, got shape {words.shape}")
    return words


def key_array(key) -> np.ndarray:
    """A 128-bit key given as an int or two uint64 words."""
    if isinstance(key, numbers.Integral):
        value = int(key)
        if value < 0 or value >= 2**128:
            raise ValueError("key must be in [0, 2**128)")
        return np.array([value & (2**64 - 1), value >> 64], dtype=np.uint64)
    words = np.asarray(key, dtype=np.uint64)
    if words.shape != (2,):
        raise ValueError(f"key must be an int or two uint64 words, got shape {words.shape}")
    return words
