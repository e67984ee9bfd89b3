"""The house: import cost, backends, validation messages, the tour's command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from randnla import _backend, _validate


def test_import_is_fast_and_does_not_import_cupy():
    code = (
        "import time, sys; t = time.perf_counter(); import randnla; "
        "print(time.perf_counter() - t); print('cupy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 0.5
    assert out[1] == "False"


def test_public_modules_load_lazily():
    import randnla

    assert "random" in dir(randnla)
    with pytest.raises(AttributeError):
        randnla.no_such_module  # noqa: B018


def test_namespace_of_numpy_and_neutral_inputs():
    assert _backend.namespace_of(np.ones(3), 2.0, None, [1, 2]) is np
    assert _backend.namespace_of() is np
    import scipy.sparse

    assert _backend.namespace_of(scipy.sparse.eye(3)) is np
    assert not _backend.is_cupy(np.ones(2))


def test_as_float_array_dtype_policy():
    assert _validate.as_float_array([1, 2], "x").dtype == np.float64
    assert _validate.as_float_array(np.array([True]), "x").dtype == np.float64
    assert _validate.as_float_array(np.ones(2, np.float32), "x").dtype == np.float32
    assert _validate.as_float_array(np.ones(2, np.float16), "x").dtype == np.float32
    with pytest.raises(TypeError, match="x is complex"):
        _validate.as_float_array(np.ones(2, complex), "x")
    with pytest.raises(TypeError, match="numeric"):
        _validate.as_float_array(np.array(["a"]), "x")
    with pytest.raises(ValueError, match="2-dimensional"):
        _validate.as_float_array(np.ones(3), "A", ndim=2)


def test_checks_name_the_argument():
    with pytest.raises(ValueError, match="A contains NaN"):
        _validate.check_finite(np.array([1.0, np.nan]), "A")
    with pytest.raises(ValueError, match="A must be square"):
        _validate.check_square(np.ones((2, 3)), "A")
    with pytest.raises(ValueError, match="L must be symmetric"):
        _validate.check_symmetric(np.array([[1.0, 2.0], [0.0, 1.0]]), "L")
    _validate.check_symmetric(np.array([[1.0, 2.0], [2.0 + 1e-15, 1.0]]), "L")
    with pytest.raises(ValueError, match=r"b must have shape \(3, any\)"):
        _validate.check_shape(np.ones((2, 2)), "b", (3, None))
    with pytest.raises(TypeError, match="k must be an integer"):
        _validate.check_int(2.0, "k")
    with pytest.raises(TypeError, match="k must be an integer"):
        _validate.check_int(True, "k")
    with pytest.raises(ValueError, match="k must be >= 1"):
        _validate.check_int(0, "k", minimum=1)
    assert _validate.check_int(np.int64(3), "k") == 3
    with pytest.raises(ValueError, match="reg must be positive"):
        _validate.check_positive(0.0, "reg")
    with pytest.raises(ValueError, match="unknown method 'x'"):
        _validate.check_choice("x", "method", ("a", "b"))
    assert _validate.check_n_threads(None) == 0
    assert _validate.result_dtype(np.float32, np.float32) == np.float32
    assert _validate.result_dtype(np.float32, np.float64) == np.float64


def test_tour_help_and_random_section():
    help_text = subprocess.run([sys.executable, "-m", "randnla", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--quick" in help_text and "--area" in help_text
    done = subprocess.run([sys.executable, "-m", "randnla", "--quick", "--area", "random"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bit-identical" in done.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 31, 32, 33, 70])
def test_check_symmetric_matches_dense_reference(dtype, n):
    rng = np.random.default_rng(n)
    stack = rng.standard_normal((3, 2, n, n)).astype(dtype)
    stack = stack + np.swapaxes(stack, -1, -2)
    _validate.check_symmetric(stack, "A")  # exactly symmetric batch passes
    _validate.check_symmetric(np.swapaxes(stack, 0, 1), "A")  # non-contiguous view
    if n == 1:
        return
    i, j = rng.integers(0, n, 2)
    j = (i + 1) % n if i == j else j
    bad = stack.copy()
    bad[2, 1, i, j] += 1.0  # one entry of one matrix of the batch
    reference = np.abs(bad - np.swapaxes(bad, -1, -2)).max(axis=(-2, -1)) / np.abs(bad).max(axis=(-2, -1))
    with pytest.raises(ValueError, match="A must be symmetric") as info:
        _validate.check_symmetric(bad, "A")
    assert f"{reference.max():.2e}" in str(info.value)
    # round-off-sized asymmetry is accepted
    tiny = stack.copy()
    tiny[0, 0, i, j] *= 1 + 10 * np.finfo(dtype).eps
    _validate.check_symmetric(tiny, "A")


def test_fill_upper_from_lower_against_numpy():
    from randnla import _core

    rng = np.random.default_rng(1)
    for n in (1, 31, 32, 33, 100):
        a = np.asfortranarray(rng.standard_normal((n, n)))
        expected = np.tril(a) + np.tril(a, -1).T
        _core.fill_upper_from_lower_float64(a)
        np.testing.assert_array_equal(a, expected)
    with pytest.raises(ValueError, match="Fortran-ordered"):
        _core.fill_upper_from_lower_float64(np.zeros((4, 4)))  # C order would be written as a copy


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"])
def test_philox_key_equals_full_range_integers(bit_generator):
    from randnla._rng import philox_key

    make = getattr(np.random, bit_generator)
    ours, reference = np.random.Generator(make(7)), np.random.Generator(make(7))
    for _ in range(3):
        key = philox_key(ours)
        assert key.dtype == np.uint64 and key.shape == (2,)
        np.testing.assert_array_equal(key, reference.integers(0, 2**64, size=2, dtype=np.uint64))
    np.testing.assert_array_equal(ours.random(5), reference.random(5))  # same state afterwards
