"""Query blocks: how many query rows to compute at a time, so memory grows with n·d, not n².

Every query row of attention depends on all keys and values but on no other query, so the rows
can be computed a block at a time: scores (B, H, rows, seq_k) exist for one block only. The
steps of shape (…, seq_q, seq_k) are kept only when asked for, and then filled block by block
(:class:`attncli.attention.recorder.Recorder`).
"""

from __future__ import annotations

from attncli.trace import N_BY_N

__all__ = ["ANNOUNCE_BYTES", "BLOCK_BYTES", "N_BY_N", "block_rows"]

#: About this many bytes per (B, H, rows, seq_k) block array. A few such arrays are alive at
#: once; 32 MiB keeps them in a few hundred MiB and each matmul large enough to run at speed.
BLOCK_BYTES = 32 * 2**20
#: Steps bigger than this are announced (Monitor.note) before they are allocated.
ANNOUNCE_BYTES = 256 * 2**20


def block_rows(shape: tuple[int, int, int, int], itemsize: int, width: int = 1) -> int:
    """Query rows per block for scores of ``shape`` (B, H, seq_q, seq_k): about BLOCK_BYTES per
    block array, at least one row. ``width`` multiplies the per-row size (the additive score's
    (…, seq_k, d_att) intermediate)."""
    batch, heads, seq_q, seq_k = shape
    per_row = max(1, batch * heads * seq_k * width * itemsize)
    return max(1, min(seq_q, BLOCK_BYTES // per_row))
