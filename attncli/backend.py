"""Backend, device and dtype selection; torch is imported only here and only when asked for.

Like einops' ``_backends.py``, nothing here imports torch to find out whether it is wanted.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from attncli.config import Backend, DType
from attncli.errors import BackendError

INSTALL_TORCH = "pip install 'attncli[torch]' (or: pip install torch==2.13.0)"


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _import_torch():
    if not torch_installed():
        raise BackendError(f"the torch backend needs PyTorch, which is not installed: "
                           f"{INSTALL_TORCH}")
    import torch

    return torch


@dataclass(frozen=True)
class Runtime:
    """Where the math runs: the array namespace, the device and the dtype.

    ``xp`` is an array-API namespace: numpy itself (NumPy ≥ 2 implements the standard) or
    array_api_compat.torch.
    """

    backend: Backend
    device: str
    dtype: DType
    xp: Any

    def asarray(self, array: np.ndarray | None, *, boolean: bool = False):
        """A numpy array moved to this runtime (None stays None)."""
        if array is None:
            return None
        if self.backend is Backend.numpy:
            return np.asarray(array, dtype=bool if boolean else self.dtype.value)
        torch = _import_torch()
        dtype = torch.bool if boolean else getattr(torch, self.dtype.value)
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:  # torch wants writable memory (broadcast views are not)
            array = array.copy()
        return torch.as_tensor(array, dtype=dtype, device=self.device)

    def to_numpy(self, array) -> np.ndarray:
        """Back to numpy: the one place arrays leave the device."""
        if self.backend is Backend.numpy:
            return np.asarray(array)
        return array.detach().cpu().numpy()

    def float_dtype(self):
        if self.backend is Backend.numpy:
            return np.dtype(self.dtype.value)
        return getattr(_import_torch(), self.dtype.value)


#: ``--backend auto`` runs on torch (when installed) from this many matmul FLOPs, by dtype:
#: below it, importing torch (about 2.5 s on a 2-core machine) costs more than its kernels
#: save. Measured with bench/auto_threshold.py, end to end, numpy against torch, on problems
#: of d_model 512 and 8 heads; the crossover was about 5e10 FLOPs in float64 and 1e11 in
#: float32 (bench/README.md).
AUTO_TORCH_FLOPS = {DType.float64: 5 * 10**10, DType.float32: 10**11}


def resolve(backend: Backend | None, device: str | None, dtype: DType,
            flops: int = 0) -> Runtime:
    """Pick the backend and check the device.

    ``backend=None`` or ``auto`` means numpy on the CPU, or torch when ``device`` is anything
    but ``cpu``; ``auto`` also takes torch, when it is installed, for a problem of at least
    :data:`AUTO_TORCH_FLOPS` matmul FLOPs (``flops``) in its ``dtype``.
    ``device='auto'`` means the best device torch has (cuda, then mps, then cpu), or numpy on
    the CPU when torch is not installed.

    Raises:
        BackendError: torch missing for the torch backend, numpy asked for a non-CPU device,
            or a device that is not there; each message says how to fix it.
    """
    device = (device or "cpu").strip().lower()
    if backend is Backend.auto:
        backend = (Backend.torch if device == "cpu" and flops >= AUTO_TORCH_FLOPS[dtype]
                   and torch_installed() else None)
    if device == "auto":
        if backend is Backend.numpy or (backend is None and not torch_installed()):
            return _numpy_runtime(dtype)
        torch = _import_torch()
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
        backend = Backend.torch
    if backend is None:
        backend = Backend.numpy if device == "cpu" else Backend.torch
    if backend is Backend.numpy:
        if device != "cpu":
            raise BackendError(f"the numpy backend runs only on the CPU, not {device!r}: "
                               "use --backend torch for another device")
        return _numpy_runtime(dtype)
    torch = _import_torch()
    _check_device(torch, device)
    if device == "mps" and dtype is DType.float64:
        raise BackendError("the mps device has no float64: add --dtype float32")
    import array_api_compat.torch as xp

    return Runtime(Backend.torch, device, dtype, xp)


def _numpy_runtime(dtype: DType) -> Runtime:
    # NumPy ≥ 2 implements the array API in its main namespace; array_api_compat.numpy would
    # add only a copy of that namespace, whose building imports numpy.f2py, numpy.ma and
    # numpy.testing and so doubles a small run's start-up.
    return Runtime(Backend.numpy, "cpu", dtype, np)


def _check_device(torch, device: str) -> None:
    if device == "cpu":
        return
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise BackendError("device 'mps' is not available on this machine: use --device cpu")
        return
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BackendError(f"device {device!r} is not available (torch {torch.__version__} "
                               "sees no CUDA GPU): use --device cpu")
        if ":" in device:
            index = device.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise BackendError(f"device {device!r} is not available: this machine has "
                                   f"{torch.cuda.device_count()} CUDA device(s), cuda:0 …")
        return
    raise BackendError(f"unknown device {device!r}: use cpu, cuda, cuda:N, mps or auto")


def dropout_keep(runtime: Runtime, shape: tuple[int, ...], p: float, seed: int):
    """A boolean keep-mask of ``shape``: True with probability 1 − p.

    On torch it is the mask torch.nn.Dropout(p) draws for a tensor of this shape, dtype and
    device right after torch.manual_seed(seed) (the global RNG state is restored afterwards).
    On numpy it comes from numpy.random.default_rng(seed), so it differs from torch's.
    """
    if runtime.backend is Backend.numpy:
        return np.random.default_rng(seed).random(shape) >= p
    torch = _import_torch()
    devices = [runtime.device] if runtime.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        ones = torch.ones(shape, dtype=runtime.float_dtype(), device=runtime.device)
        return torch.nn.functional.dropout(ones, p=p, training=True) != 0
