"""The blocked path (query rows a block at a time) and the fused path (torch SDPA) give the
numbers of the whole-matrix path.

The whole-matrix run is the same pipeline with one block (the default block size holds these
small problems whole); the blocked run shrinks the block budget so that every block is one to
three query rows, which puts block edges inside every mask pattern (causal diagonal, window,
explicit mask, fully masked rows).
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.attention import blocks
from attncli.attention.monitor import Monitor
from attncli.config import AttentionConfig, Backend, CausalAlign, Normalize, Score
from attncli.problem import Problem

TOL = 1e-12
rng = np.random.default_rng(7)
SEQ, D = 7, 8
X = rng.normal(size=(SEQ, D))
MEMORY = rng.normal(size=(5, D))
W = {k: rng.normal(size=(D, D)) / 3 for k in ("W_q", "W_k", "W_v", "W_o")}
MASK = rng.random((SEQ, SEQ)) > 0.3
MASK[4] = False  # a fully masked row: zeros, and the warning, in both paths

CASES = {
    "simple": ({"x": X}, {}),
    "projected": ({"x": X, **W}, {}),
    "multihead": ({"x": X, **W}, {"heads": 4}),
    "causal": ({"x": X, **W}, {"causal": True, "heads": 2}),
    "causal-bottom-right": ({"x": X, "memory": MEMORY, **W},
                            {"causal": True, "causal_align": CausalAlign.bottom_right}),
    "window": ({"x": X, **W}, {"window": 1}),
    "causal-window": ({"x": X, **W}, {"window": 2, "causal": True}),
    "mask": ({"x": X, "mask": MASK}, {}),
    "key-padding": ({"x": X, "key_padding_mask": [0, 0, 1, 0, 1, 1, 0]}, {}),
    "batched": ({"x": np.stack([X, X[::-1]]), **W}, {"heads": 2, "causal": True}),
    "cross": ({"x": X, "memory": MEMORY, **W}, {"heads": 2}),
    "general": ({"x": X, "W_a": rng.normal(size=(D, D))}, {"score": Score.general}),
    "additive": ({"x": X, "W_a": rng.normal(size=(D, 3)), "U_a": rng.normal(size=(D, 3)),
                  "v_a": rng.normal(size=3)}, {"score": Score.additive}),
    "hard": ({"x": X}, {"normalize": Normalize.hard}),
    "topk": ({"x": X, **W}, {"normalize": Normalize.top_k, "top_k": 2}),
    "temperature": ({"x": X, **W}, {"temperature": 0.5, "scale": 0.7}),
    "sinks": ({"x": X, **W, "mask": MASK, "sinks": [0.5, -1.0]}, {"heads": 2,
                                                                  "temperature": 0.7}),
}


def _run(arrays, fields, backend, steps=None, monitor=None):
    problem = Problem.from_mapping(arrays, "test")
    return attend(problem, AttentionConfig(backend=backend, **fields), steps=steps,
                  monitor=monitor)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few rows: 3 × 7 keys × 8 bytes holds 3 rows of one head's scores."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 3 * SEQ * 8)


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
@pytest.mark.parametrize("case", CASES)
def test_blocked_steps_equal_the_whole_matrices(case, backend, request, tiny_blocks):
    if backend is Backend.torch:
        request.getfixturevalue("torch")
    arrays, fields = CASES[case]
    blocked = _run(arrays, fields, backend)
    assert blocked.run.path.startswith("query blocks of")
    blocks.BLOCK_BYTES = 2**30  # the fixture restores the real value afterwards
    whole = _run(arrays, fields, backend)
    assert whole.run.path == "whole matrices"
    assert blocked.names() == whole.names()
    for step in whole:
        np.testing.assert_allclose(blocked[step.name], step.data, rtol=TOL, atol=TOL,
                                   err_msg=step.name)
        assert blocked.step(step.name).axes == step.axes
        assert blocked.step(step.name).formula == step.formula
    assert blocked.warnings == whole.warnings


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
@pytest.mark.parametrize("case", CASES)
def test_only_the_context_asked_for_keeps_no_n_by_n_step(case, backend, request, tiny_blocks):
    if backend is Backend.torch:
        request.getfixturevalue("torch")
    arrays, fields = CASES[case]
    wanted = ["context", "output"]
    blocked = _run(arrays, fields, backend, steps=wanted)
    expected = ["context", "output"] if "W_o" in arrays else ["context"]
    assert blocked.names() == expected
    assert blocked.run.path.startswith(("query blocks", "fused"))
    blocks.BLOCK_BYTES = 2**30
    whole = _run(arrays, fields, Backend.numpy)
    for name in expected:
        np.testing.assert_allclose(blocked[name], whole[name], rtol=TOL, atol=TOL)


def test_fully_masked_row_is_zero_in_blocks(tiny_blocks):
    trace = _run({"x": X, "mask": MASK}, {}, Backend.numpy, steps=["context"])
    np.testing.assert_array_equal(trace["context"][4], np.zeros(D))
    assert any("1 query row(s) have no key" in w for w in trace.warnings)


FUSED = ["simple", "projected", "multihead", "causal", "batched", "cross", "temperature"]


@pytest.mark.parametrize("case", FUSED)
def test_torch_fused_path_matches_the_whole_matrices(case, torch):
    arrays, fields = CASES[case]
    fused = _run(arrays, fields, Backend.torch, steps=["context", "output"])
    assert fused.run.path == ("fused: torch.nn.functional.scaled_dot_product_attention")
    whole = _run(arrays, fields, Backend.numpy)
    for name in fused.names():
        np.testing.assert_allclose(fused[name], whole[name], rtol=1e-10, atol=1e-10)


CASES["values-narrower"] = ({"x": X, **W, "W_v": W["W_v"][:, :4], "W_o": W["W_o"][:4]}, {})


@pytest.mark.parametrize("case", ["window", "mask", "causal-bottom-right", "additive", "hard",
                                  "values-narrower"])
def test_torch_takes_blocks_where_sdpa_does_not_fit(case, torch):
    """Masks SDPA's is_causal cannot say, other scores and normalisations, and d_v ≠ d_k (for
    which torch's CPU kernel choice falls back to its n×n math path) go through blocks."""
    arrays, fields = CASES[case]
    trace = _run(arrays, fields, Backend.torch, steps=["context"])
    assert not trace.run.path.startswith("fused")


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
@pytest.mark.parametrize("case", CASES)
def test_one_query_row_alone_is_that_row_of_the_whole_run(case, backend, request):
    if backend is Backend.torch:
        request.getfixturevalue("torch")
    arrays, fields = CASES[case]
    whole = _run(arrays, fields, backend)
    for row in (0, 4, SEQ - 1):
        alone = attend(Problem.from_mapping(arrays, "test"),
                       AttentionConfig(backend=backend, **fields), query=row)
        narrowed = whole.at_query(row)
        assert alone.run.path == "one query row"
        assert alone.focus == row and alone.names() == narrowed.names()
        for step in narrowed:
            np.testing.assert_allclose(alone[step.name], step.data, rtol=TOL, atol=TOL,
                                       err_msg=f"{case} row {row} {step.name}")
        assert alone.to_dict()["steps"].keys() == narrowed.to_dict()["steps"].keys()


def test_one_query_row_keeps_the_dropout_mask_of_the_whole_run():
    fields = {"dropout": 0.5, "seed": 11}
    whole = _run({"x": X, **W}, fields, Backend.numpy)
    alone = attend(Problem.from_mapping({"x": X, **W}, "test"), AttentionConfig(**fields),
                   query="3")
    # The dropout pattern is integer data: equal exactly. The kept weights come from a matmul
    # of another shape, whose BLAS kernel may round the last bit differently (5.6e-17 seen with
    # OpenBLAS's AVX-512 kernels): equal within float noise.
    np.testing.assert_array_equal(alone["dropped_weights"] == 0,
                                  whole["dropped_weights"][3:4] == 0)
    np.testing.assert_allclose(alone["dropped_weights"], whole["dropped_weights"][3:4],
                               rtol=1e-12, atol=1e-15)


def test_dropout_and_slips_run_as_one_block(tiny_blocks):
    trace = _run({"x": X}, {"dropout": 0.5, "seed": 3}, Backend.numpy, steps=["context"])
    assert trace.run.path == "whole matrices"


class _Files(Monitor):
    """Keeps every block-filled step in a memory-mapped file and remembers what it was told."""

    def __init__(self, folder):
        self.folder, self.notes, self.progress = folder, [], []

    def note(self, text):
        self.notes.append(text)

    def advance(self, done, total):
        self.progress.append((done, total))

    def place(self, name, shape, dtype):
        return str(self.folder / f"{name}.npy")


def test_big_steps_are_streamed_to_npy_files(tmp_path, tiny_blocks, monkeypatch):
    monkeypatch.setattr(blocks, "ANNOUNCE_BYTES", 100)  # 7 × 7 × 8 = 392 bytes each
    monitor = _Files(tmp_path)
    trace = _run({"x": X, **W}, {"causal": True}, Backend.numpy,
                 steps=["weights", "context"], monitor=monitor)
    assert isinstance(trace["weights"], np.memmap)
    on_disk = np.load(tmp_path / "weights.npy")
    np.testing.assert_array_equal(on_disk, trace["weights"])
    np.testing.assert_allclose(on_disk.sum(axis=-1), np.ones(SEQ), rtol=1e-12)
    assert np.all(np.triu(on_disk, k=1) == 0)  # causal: nothing above the diagonal
    assert monitor.notes == [f"weights is 7 × 7 float64 = 392 B, streamed to "
                             f"{tmp_path / 'weights.npy'}"]
    # 7 rows in blocks of 3: three blocks, reported one by one
    assert monitor.progress == [(1, 3), (2, 3), (3, 3)]
    assert trace.names() == ["weights", "context"]


@pytest.mark.parametrize("steps", [None, ["context"]])
def test_overflow_is_named_with_or_without_the_n_by_n_steps(steps, tiny_blocks):
    from attncli.config import DType
    from attncli.errors import InputError

    big = np.full((4, 2), 1e20)  # x·x = 2e40 > float32's 3.4e38
    with pytest.raises(InputError, match=r"^the scores \(\d.*overflow float32"):
        _run({"x": big}, {"dtype": DType.float32}, Backend.numpy, steps=steps)
    # an overflow to −∞ leaves a finite context (a weight of 0): found all the same.
    # q_0 = −x_0 = (−1e155, 0), k_0 = x_0: q_0·k_0 = −1e310, past float64's 1.8e308
    minus = {"x": [[1e155, 0], [0, 1]], "W_q": [[-1, 0], [0, -1]], "W_k": np.eye(2),
             "W_v": np.eye(2)}
    with pytest.raises(InputError, match=r"^the scores \(1, 1, 2, 2\) overflow float64"):
        _run(minus, {"score": Score.dot}, Backend.numpy, steps=steps)
    # finite scores, overflowing once divided by a tiny temperature: the weights' error
    with pytest.raises(InputError, match="--temperature 1e-38 is too small"):
        _run({"x": np.full((4, 2), 1e10)}, {"dtype": DType.float32, "temperature": 1e-38},
             Backend.numpy, steps=steps)


def test_one_query_row_with_dropout_is_computed_alone():
    # Dropout draws the whole run's keep mask at each call, so a run of many rows is one call
    # (whole matrices); one --query row is still that row alone, with its row of the mask.
    arrays, _ = CASES["key-padding"]
    fields = {"dropout": 0.5, "seed": 3}
    whole = _run(arrays, fields, Backend.numpy)
    alone = attend(Problem.from_mapping(arrays, "test"),
                   AttentionConfig(backend=Backend.numpy, **fields), query="2")
    assert whole.run.path == "whole matrices"
    assert alone.run.path == "one query row"
    np.testing.assert_allclose(alone["dropped_weights"][0], whole["dropped_weights"][2],
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(alone["context"][0], whole["context"][2], rtol=1e-12, atol=0)
