"""Backend, device and dtype selection (attncli.backend), and torch staying an optional import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from attncli import attend, backend
from attncli.backend import Runtime, dropout_keep, resolve
from attncli.config import AttentionConfig, Backend, DType
from attncli.errors import BackendError
from attncli.problem import Problem


def test_numpy_on_the_cpu_by_default():
    runtime = resolve(None, None, DType.float64)
    assert (runtime.backend, runtime.device) == (Backend.numpy, "cpu")
    assert resolve(None, " CPU ", DType.float32).backend is Backend.numpy


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_numpy_refuses_other_devices(device):
    with pytest.raises(BackendError, match="--backend torch"):
        resolve(Backend.numpy, device, DType.float64)


def test_numpy_runtime_converts_dtypes():
    runtime = resolve(Backend.numpy, "cpu", DType.float32)
    a = runtime.asarray(np.array([[1, 2], [3, 4]]))
    assert a.dtype == np.float32
    assert runtime.asarray(np.array([1, 0]), boolean=True).dtype == np.bool_
    assert runtime.asarray(None) is None
    assert runtime.float_dtype() == np.float32
    assert runtime.to_numpy(a).dtype == np.float32


def test_torch_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backend, "torch_installed", lambda: False)
    with pytest.raises(BackendError, match=r"pip install"):
        resolve(Backend.torch, "cpu", DType.float64)
    with pytest.raises(BackendError, match=r"pip install"):
        resolve(None, "cuda", DType.float64)
    # 'auto' falls back to numpy when torch is absent
    assert resolve(None, "auto", DType.float64).backend is Backend.numpy


def test_torch_runtime_on_the_cpu(torch):
    runtime = resolve(Backend.torch, "cpu", DType.float64)
    assert (runtime.backend, runtime.device) == (Backend.torch, "cpu")
    t = runtime.asarray(np.arange(6.0).reshape(2, 3))
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    assert runtime.asarray(np.array([1, 0]), boolean=True).dtype == torch.bool
    back = runtime.to_numpy(t * 2)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, np.arange(6.0).reshape(2, 3) * 2)
    assert resolve(Backend.torch, "cpu", DType.float32).float_dtype() == torch.float32


def test_auto_device_picks_torch(torch):
    runtime = resolve(None, "auto", DType.float32)
    assert runtime.backend is Backend.torch
    expected = ("cuda" if torch.cuda.is_available() else
                "mps" if torch.backends.mps.is_available() else "cpu")
    assert runtime.device == expected
    assert resolve(Backend.numpy, "auto", DType.float64).backend is Backend.numpy


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu"])
def test_unknown_or_malformed_devices(torch, device):
    with pytest.raises(BackendError, match=repr(device)):
        resolve(Backend.torch, device, DType.float64)


def test_missing_cuda_is_reported(torch):
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(BackendError, match="not available"):
            resolve(Backend.torch, f"cuda:{n}", DType.float64)
    else:
        with pytest.raises(BackendError, match="--device cpu"):
            resolve(Backend.torch, "cuda", DType.float64)
        with pytest.raises(BackendError, match="--device cpu"):
            resolve(None, "cuda:0", DType.float64)


def test_mps_has_no_float64(torch):
    if not torch.backends.mps.is_available():
        with pytest.raises(BackendError, match="mps"):
            resolve(Backend.torch, "mps", DType.float64)
    else:
        with pytest.raises(BackendError, match="float32"):
            resolve(Backend.torch, "mps", DType.float64)


@pytest.mark.parametrize("be", [Backend.numpy, Backend.torch])
def test_dropout_keep_is_seeded_boolean_and_about_1_minus_p(torch, be):
    runtime = resolve(be, "cpu", DType.float64)
    keep = runtime.to_numpy(dropout_keep(runtime, (40, 50), 0.3, 11))
    assert keep.shape == (40, 50) and keep.dtype == np.bool_
    assert abs(keep.mean() - 0.7) < 0.04  # 2000 draws: σ ≈ 0.01
    again = runtime.to_numpy(dropout_keep(runtime, (40, 50), 0.3, 11))
    other = runtime.to_numpy(dropout_keep(runtime, (40, 50), 0.3, 12))
    assert np.array_equal(keep, again)
    assert not np.array_equal(keep, other)


@pytest.mark.parametrize("dtype", [DType.float64, DType.float32])
def test_torch_dropout_keep_is_nn_dropouts_mask(torch, dtype):
    runtime = resolve(Backend.torch, "cpu", dtype)
    keep = dropout_keep(runtime, (2, 3, 4, 5), 0.4, 2024)
    torch.manual_seed(2024)
    dropped = torch.nn.Dropout(0.4)(torch.ones(2, 3, 4, 5, dtype=runtime.float_dtype()))
    assert torch.equal(keep, dropped != 0)


def test_trace_records_backend_device_dtype(torch):
    problem = Problem.from_mapping({"x": [[1.0, 0.0], [0.0, 1.0]]}, "t")
    trace = attend(problem, AttentionConfig(backend=Backend.torch, dtype=DType.float32))
    assert (trace.backend, trace.device, trace.dtype) == ("torch", "cpu", "float32")
    assert all(isinstance(step.data, np.ndarray) for step in trace)
    assert trace["weights"].dtype == np.float32


def test_numpy_runs_never_import_torch():
    code = (
        "import sys\n"
        "import attncli, attncli.cli\n"
        "from attncli import attend\n"
        "from attncli.problem import Problem\n"
        "attend(Problem.from_mapping({'x': [[1.0, 2.0], [3.0, 4.0]]}, 't'))\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_runtime_is_frozen():
    runtime = resolve(Backend.numpy, "cpu", DType.float64)
    assert isinstance(runtime, Runtime)
    with pytest.raises(AttributeError):
        runtime.device = "cuda"  # type: ignore[misc]
