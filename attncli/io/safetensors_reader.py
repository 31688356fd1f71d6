"""safetensors checkpoints: the tensors of a real model layer, read by name, lazily.

A safetensors file is a JSON header (names, dtypes, shapes, offsets) followed by raw bytes; it
never holds code, so reading one executes nothing. Only the tensors asked for are read, so a
checkpoint of several GB costs the size of those tensors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import numpy as np

from attncli.errors import InputError
from attncli.io import reading
from attncli.problem import ARRAY_KEYS, MASK_KEYS, require_key

#: The problem keys a tensor can fill: the numeric and the boolean keys.
TENSOR_KEYS = (*ARRAY_KEYS, *MASK_KEYS)
#: safetensors dtypes that numpy holds; the others (BF16, F8_*, …) need torch.
_NUMPY_DTYPES = {"BOOL", "U8", "I8", "U16", "I16", "F16", "U32", "I32", "F32", "U64", "I64",
                 "F64", "C64"}


def read_safetensors(path: str, tensors: Mapping[str, str] | None = None
                     ) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, under their problem keys.

    Args:
        path: a ``.safetensors`` file.
        tensors: problem key → the checkpoint's tensor name, e.g.
            ``{"W_q": "model.layers.0.self_attn.q_proj.weight"}``; only these are read. None
            (or empty) takes the tensors whose names are already problem keys (``x``, ``W_q``,
            ``mask``, …).
    Shapes:
        as stored. Checkpoints keep ``nn.Linear`` weights as (out, in), i.e. W_q (d_out, d_in):
        that is attncli's ``out_in`` layout (``--weight-layout out_in``, ``Q = x @ W_q.T``).
        Nothing is transposed here.
    Returns: key → numpy array; BF16/FP8 tensors (which numpy cannot hold) are read through
        torch and returned as float32.
    Raises:
        InputError, naming the file and the tensor: safetensors not installed, a missing file,
        a file that is not safetensors (damaged or truncated header), a key that is not a
        problem key, a name not in the file (with the closest names), a BF16/FP8 tensor
        without torch, or no tensor named like a problem key when ``tensors`` is empty.
    Source: the safetensors format, https://github.com/huggingface/safetensors
    """
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise InputError(f"{path}: reading .safetensors needs the safetensors package: "
                         "pip install 'attncli[safetensors]'") from None
    for key, name in (tensors or {}).items():
        require_tensor_key(key, f"{path}: {key}={name}")
    try:
        with reading(path):
            # opened by Python first, whose errors name the cause: safe_open says "No such
            # device" for a folder and "No such file" for a file it may not read
            open(path, "rb").close()
            with safe_open(path, framework="numpy") as handle:
                names = list(handle.keys())
                wanted = _wanted(path, names, tensors)
                arrays, later = {}, {}
                for key, name in wanted.items():
                    dtype = handle.get_slice(name).get_dtype()
                    if dtype in _NUMPY_DTYPES:
                        arrays[key] = handle.get_tensor(name)  # this tensor's bytes only
                    else:
                        later[key] = (name, dtype)
    except SafetensorError as exc:
        reason = str(exc).removeprefix("Error while deserializing header: ")
        raise InputError(f"{path}: not a safetensors file (damaged or truncated header: "
                         f"{reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if later:
        arrays.update(_through_torch(path, later))
    return {key: arrays[key] for key in wanted}


def require_tensor_key(key: str, where: str) -> None:
    """The one check of the KEY of a KEY=NAME mapping (``--tensor``, or the ``tensors`` of
    :func:`read_safetensors`): a key a tensor can fill, one of :data:`TENSOR_KEYS`.

    Raises: InputError starting with ``where`` (``--tensor 'w_q=NAME'``, ``FILE: w_q=NAME``):
    :func:`attncli.problem.require_key`'s reason, or the closest key.
    """
    require_key(key, TENSOR_KEYS, where, "a key a tensor can fill")


def _wanted(path: str, names: list[str], tensors: Mapping[str, str] | None) -> dict[str, str]:
    """Key → tensor name, every name checked to be in the file."""
    if not tensors:
        wanted = {name: name for name in names if name in TENSOR_KEYS}
        if not wanted:
            example = f" (its tensors: {_some(names)})" if names else " (it holds no tensors)"
            raise InputError(f"{path}: no tensor named like a problem key (x, W_q, …){example}; "
                             "map names with --tensor KEY=NAME")
        return wanted
    present = set(names)
    for key, name in tensors.items():
        if name not in present:
            close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
            hint = f"closest: {', '.join(close)}" if close else f"it holds {_some(names)}"
            raise InputError(f"{path}: {key}={name}: no tensor {name!r} in the file; {hint}")
    return dict(tensors)


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f", … ({len(names)} tensors)" if len(names) > 5 else "")


def _through_torch(path: str, later: dict[str, tuple[str, str]]) -> dict[str, np.ndarray]:
    """BF16/FP8 tensors, which numpy cannot hold: read by torch, widened to float32."""
    key, (name, dtype) = next(iter(later.items()))
    try:
        import torch  # noqa: F401 - only to know that safetensors' "pt" framework works
    except ImportError:
        raise InputError(f"{path}: {key}={name}: the tensor is {dtype}, which numpy cannot "
                         "hold; install torch to read it: pip install 'attncli[torch]'") from None
    from safetensors import safe_open

    arrays = {}
    with safe_open(path, framework="pt") as handle:
        for key, (name, dtype) in later.items():
            try:
                arrays[key] = handle.get_tensor(name).float().numpy()
            except (TypeError, RuntimeError, ValueError) as exc:
                raise InputError(f"{path}: {key}={name}: cannot read a {dtype} tensor with this "
                                 f"torch: {str(exc).splitlines()[0]}") from None
    return arrays
