"""Lazy CuPy access: compile the kernels in ``cpp/cuda`` with NVRTC at first use.

Nothing here imports CuPy until a CuPy array actually reaches randnla. Kernel sources and the
headers they include (``randnla/philox.hpp`` and friends) ship as package data, so a CPU-only
install never needs nvcc. Kernels launch on CuPy's current stream.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

__all__ = ["cupy", "available", "describe", "get_kernel", "cuda_dir", "include_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent
# Installed wheel: randnla/_cuda and randnla/_include. Editable/source checkout: cpp/cuda, cpp/include.
_SOURCE_ROOT = _PACKAGE_DIR.parent.parent / "cpp"


def cuda_dir() -> Path:
    installed = _PACKAGE_DIR / "_cuda"
    return installed if installed.is_dir() else _SOURCE_ROOT / "cuda"


def include_dir() -> Path:
    installed = _PACKAGE_DIR / "_include"
    return installed if installed.is_dir() else _SOURCE_ROOT / "include"


def cupy():
    """Import and return CuPy (raises ImportError with a hint when missing)."""
    try:
        import cupy as cp
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError("CuPy is needed for GPU arrays: pip install 'randnla[gpu]'") from err
    return cp


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        cp = cupy()
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any CUDA/driver failure means "no GPU"
        return False


def describe() -> str:
    if importlib.util.find_spec("cupy") is None:
        return "CuPy not installed"
    if not available():
        return "CuPy installed, no CUDA device"
    cp = cupy()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"CuPy {cp.__version__} on {name}"


@functools.lru_cache(maxsize=None)
def _module(filename: str, name_expressions: tuple = ()):
    cp = cupy()
    source = (cuda_dir() / filename).read_text()
    options = (
        f"-I{include_dir()}",
        "--std=c++17",
        "--fmad=false",  # the host never fuses multiply-adds either: CPU and GPU agree bit for bit
    )
    return cp.RawModule(code=source, options=options, name_expressions=name_expressions or None)


def get_kernel(filename: str, kernel_name: str, name_expressions: tuple = ()):
    """A compiled kernel from ``cpp/cuda/<filename>`` (cached per process)."""
    module = _module(filename, tuple(name_expressions))
    return module.get_function(kernel_name)


def launch_1d(kernel, n: int, args, threads_per_block: int = 256):
    """Launch ``kernel`` over ``n`` work items on CuPy's current stream (no-op for n == 0)."""
    if n <= 0:
        return
    blocks = (n + threads_per_block - 1) // threads_per_block
    kernel((blocks,), (threads_per_block,), args)
