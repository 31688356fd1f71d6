"""What the user gave: :class:`Problem`, and every check on it.

Loaders (JSON, CSV, NPY/NPZ) all end here, in :meth:`Problem.from_mapping`; nothing downstream
knows which format a key came from. Values, ranks and key names are checked here; shapes,
which depend on the options, in :func:`attncli.shapes.prepare`. Every error names the file and
the key.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attncli.config import FILE_FIELDS, Layout, coerce_fields
from attncli.errors import InputError

#: Numeric keys and the ranks they may have.
ARRAY_KEYS: dict[str, tuple[int, ...]] = {
    "x": (2, 3),
    "memory": (2, 3),
    "key_memory": (2, 3),  # separate key and value sequences (nn.MultiheadAttention's key and
    "value_memory": (2, 3),  # value inputs, kdim ≠ vdim): keys from one, values from the other
    "W_q": (2, 3),
    "W_k": (2, 3),
    "W_v": (2, 3),
    "b_q": (1, 2),
    "b_k": (1, 2),
    "b_v": (1, 2),
    "q_norm": (1,),  # --qk-norm's RMSNorm weights: (d_head,) per head, (H·d_head,) whole
    "k_norm": (1,),  # … (d_head,) per head, (G·d_head,) whole (G KV heads)
    "W_o": (2,),
    "b_o": (1,),
    "W_a": (2,),
    "U_a": (2,),
    "v_a": (1,),
    "b_a": (1,),
    "alibi_slopes": (1,),  # --alibi's slopes m_h, (H,) (default: Press et al.'s for H heads)
    "bias": (2, 3, 4),  # a float bias added to the scores: (seq_q, seq_k), (H, …), (B, H, …)
    "sinks": (1,),  # per-head sink logits (H,), gpt-oss: one more softmax column, dropped
    "positions": (1, 2),  # RoPE: each query's position, integers, (seq_q,) or (batch, seq_q)
    "key_positions": (1, 2),  # … each key's, (seq_k,) or (batch, seq_k)
}
#: Numeric keys where JSON's null (or -inf in NPZ) means −∞ (torch SDPA's float attn_mask).
MINUS_INF_KEYS = ("bias",)
#: Boolean (or 0/1) keys and the ranks they may have.
MASK_KEYS: dict[str, tuple[int, ...]] = {
    "mask": (2, 3),  # True = may attend (torch SDPA's polarity)
    "key_padding_mask": (1, 2),  # True = padding, ignored (nn.MultiheadAttention's polarity)
    "dropout_mask": (2, 3, 4),  # 1 = kept, 0 = dropped; the shape of the weights step
}
LABEL_KEYS = ("tokens", "memory_tokens")
#: weight_layout: 'in_out' | 'out_in'; config: option defaults (see attncli.config.coerce_fields);
#: about: a description; expected: reference numbers for some steps (samples carry them).
#: rope_scaling: Hugging Face's rope parameters object ({"rope_type": "llama3", …}) for --rope.
OTHER_KEYS = ("weight_layout", "config", "about", "expected", "rope_scaling")
KNOWN_KEYS = (*ARRAY_KEYS, *MASK_KEYS, *LABEL_KEYS, *OTHER_KEYS)
#: nn.MultiheadAttention's names of its inputs, and attncli's keys for them.
MHA_INPUTS = {"query": "x", "key": "key_memory", "value": "value_memory"}
#: Other libraries' names of a mask (as :func:`plain` writes them), and what attncli takes
#: instead, with its polarity.
FOREIGN_MASKS = {
    "attnmask": "torch's name; attncli's is 'mask', True (1) = may attend, as torch SDPA's "
                "boolean attn_mask (nn.MultiheadAttention's boolean attn_mask is the inverse, "
                "True = masked: negate it)",
    "attentionmask": "Hugging Face's name (1 = a real token, 0 = padding); attncli's is "
                     "'key_padding_mask', the inverse: True (1) = padding, ignored; write "
                     "1 − attention_mask",
}
#: torch's names of options (as :func:`plain` writes them), and attncli's.
FOREIGN_OPTIONS = {"iscausal": "causal", "numheads": "heads", "dropoutp": "dropout"}
_DIGITS = str.maketrans("0134", "oiea")  # W_0 → W_o, …: digits typed for the letters they resemble
# output before out: W_output, W_out and W_0 all fold to wo
_WORDS = (("query", "q"), ("key", "k"), ("value", "v"), ("output", "o"), ("out", "o"))


def plain(key: str) -> str:
    """A key in lower case, without ``_ - .`` or spaces: ``attn_mask`` → ``attnmask``."""
    return re.sub(r"[\s_.\-]", "", key.lower())


def folded(key: str) -> str:
    """A key as look-alikes are compared: :func:`plain`, digits read as the letters they
    resemble, query/key/value/output/out shortened to q/k/v/o.
    ``W_q``, ``Wq``, ``w_q``, ``w_query`` all fold to ``wq``; ``W_0``, ``W_out`` and ``W_o``
    to ``wo``."""
    text = plain(key).translate(_DIGITS)
    for word, letter in _WORDS:
        text = text.replace(word, letter)
    return text


_FOLDED_KEYS = {folded(key): key for key in KNOWN_KEYS}
#: The options a file sets in its "config" object, as :func:`plain` writes them.
_OPTIONS = {plain(name): name for name in (*FILE_FIELDS, "variant")}


def fmt_shape(shape: tuple[int | None, ...], unknown: str = "?") -> str:
    """A shape as Python writes a tuple: ``(3, 4)``, ``(3,)``, ``()``; a size None (not known
    yet, e.g. the d_att of an additive score) is written ``unknown``: ``(3, ?)``, ``(3, d_att)``.
    The one formatter of shapes in messages.
    """
    sizes = [unknown if size is None else str(size) for size in shape]
    return "(" + ", ".join(sizes) + (",)" if len(sizes) == 1 else ")")


@dataclass
class Problem:
    """The validated input of one attention computation.

    Shapes (in the default ``in_out`` layout; see :func:`prepare` for all accepted forms):
        x       (seq_q, d_in) or (batch, seq_q, d_in)   token embeddings, the queries' source
        memory  (seq_k, d_mem) or (batch, seq_k, d_mem) keys' and values' source (cross-attention)
        key_memory (seq_k, d_kmem), value_memory (seq_k, d_vmem) (or batched): separate sources
                of the keys and of the values, instead of memory
        W_q     (d_in, H·d_head) or (H, d_in, d_head);  b_q (H·d_head,) or (H, d_head)
        W_k, W_v likewise, from d_mem, d_kmem / d_vmem (d_in without memory); all three or none
        W_o (H·d_v, d_out), b_o (d_out,)
        mask    (seq_q, seq_k) bool, True = may attend; key_padding_mask (seq_k,) True = padding
    Attributes:
        arrays: key → numpy array (float64, or bool for masks).
        origin: key → where it came from (a file name, or an option), for error messages.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    tokens: list[str] | None = None
    memory_tokens: list[str] | None = None
    weight_layout: Layout | None = None
    origin: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    about: str = ""
    expected: dict[str, Any] = field(default_factory=dict)
    rope_scaling: dict[str, Any] | None = None

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def where(self, key: str) -> str:
        """'file: key' for messages."""
        return f"{self.origin.get(key, '<input>')}: {key}"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], origin: str) -> Problem:
        """Validate a mapping of keys (from JSON, NPZ or options) into a Problem.

        Args:
            raw: problem key → value (nested lists, numpy arrays, strings, an object).
            origin: where ``raw`` came from (a file name, ``<stdin>``, ``sample NAME``): each
                key's :attr:`origin`, and the start of every message.
        Raises:
            InputError: a value that is not a finite numeric array of an accepted rank, a mask
                that is not boolean/0-1, token labels that are not a list of strings, an unknown
                weight_layout; a key :func:`refusal` refuses: one that looks like a known one
                (``w_q``, ``Wq``, ``W_0``, ``W_out``, ``w_query``: case, underscores, digits
                for letters), nn.MultiheadAttention's ``query``/``key``/``value``, torch's and
                Hugging Face's ``attn_mask``/``attention_mask``/``is_causal``, an option
                outside ``config`` (``causal``, ``heads``), a fused ``W_qkv``, each with what
                to write instead. Other unknown keys only warn, naming the closest known key.
        """
        problem = cls()
        for key, value in raw.items():
            problem.origin[key] = origin
            if key in ARRAY_KEYS:
                problem.arrays[key] = _numeric(value, key, origin, ARRAY_KEYS[key])
            elif key in MASK_KEYS:
                problem.arrays[key] = _boolean(value, key, origin, MASK_KEYS[key])
            elif key in LABEL_KEYS:
                setattr(problem, key, _labels(value, key, origin))
            elif key == "weight_layout":
                try:
                    problem.weight_layout = Layout(value)
                except ValueError:
                    raise InputError(
                        f"{origin}: weight_layout: expected 'in_out' or 'out_in', got {value!r}"
                    ) from None
            elif key == "config":
                if not isinstance(value, dict):
                    raise InputError(f"{origin}: config: expected an object of option values")
                problem.config = coerce_fields(value, origin)
            elif key == "rope_scaling":
                if not isinstance(value, dict):
                    raise InputError(f"{origin}: rope_scaling: expected an object such as "
                                     '{"rope_type": "linear", "factor": 2.0}')
                problem.rope_scaling = dict(value)
            elif key == "about":
                problem.about = str(value)
            elif key == "expected":
                if not isinstance(value, dict):
                    raise InputError(f"{origin}: expected: expected an object of step → array")
                problem.expected = value
            else:
                problem.warnings.append(_unknown_key(key, origin, value))
        return problem

    def merged(self, other: Problem) -> Problem:
        """A new Problem: self's keys, with other's keys winning (command-line options)."""
        return Problem(
            arrays={**self.arrays, **other.arrays},
            tokens=other.tokens if other.tokens is not None else self.tokens,
            memory_tokens=other.memory_tokens if other.memory_tokens is not None
            else self.memory_tokens,
            weight_layout=other.weight_layout or self.weight_layout,
            origin={**self.origin, **other.origin},
            warnings=[*self.warnings, *other.warnings],
            config={**self.config, **other.config},
            about=other.about or self.about,
            expected={**self.expected, **other.expected},
            rope_scaling=(other.rope_scaling if other.rope_scaling is not None
                          else self.rope_scaling),
        )


def _unknown_key(key: str, origin: str, value: Any = None) -> str:
    """The warning for a key attncli does not know.

    Raises: InputError for a key :func:`refusal` refuses: a run that ignored it would silently
    compute something else (K = x for a misspelt W_k, no mask for attn_mask).
    """
    reason = refusal(key, value)
    if reason is not None:
        raise InputError(f"{origin}: {reason}")
    hint = _closest(key, KNOWN_KEYS)
    return f"{origin}: unknown key {key!r} ignored" + (f"; did you mean {hint!r}?" if hint
                                                      else "")


def refusal(key: str, value: Any = None) -> str | None:
    """Why an unknown ``key`` is refused rather than ignored, or None: it looks like a known
    key (:func:`folded`), or is another library's name of an input, a mask or an option, or a
    fused projection (``W_qkv``). ``value``, the key's value, fills the suggested option.

    Returns: the reason, a message naming the key and what to write instead.
    """
    flat = plain(key)
    if flat in MHA_INPUTS:
        return (f"key {key!r} is nn.MultiheadAttention's name of an input; attncli's are "
                "x (query), key_memory (key) and value_memory (value), or memory for keys and "
                f"values from one sequence: write {MHA_INPUTS[flat]!r}")
    known = _FOLDED_KEYS.get(folded(key))
    if known is not None and known != key:  # a known key itself: refused (or not) by its context
        return f"unknown key {key!r} looks like {known!r}; write it {known!r} (key names are exact)"
    if flat in FOREIGN_MASKS:
        return f"key {key!r} is {FOREIGN_MASKS[flat]}"
    fused = re.fullmatch(r"([wb])(q?k?v?)", folded(key))
    if fused and len(fused[2]) > 1:
        names = [f"{'W' if fused[1] == 'w' else 'b'}_{letter}" for letter in fused[2]]
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        return (f"key {key!r} looks like a fused projection, {listed} side by side; attncli "
                f"takes them one by one: split it into {listed} (blocks of columns in the "
                "in_out layout, of rows in nn.Linear's out_in), in that order")
    if flat in _OPTIONS:
        return _as_option(key, "an option, not an input", _OPTIONS[flat], value)
    if flat in FOREIGN_OPTIONS:
        option = FOREIGN_OPTIONS[flat]
        return _as_option(key, f"torch's name of the option {option}", option, value)
    return None


def _as_option(key: str, what: str, option: str, value: Any) -> str:
    """An option given as a key: where it goes, with its value (`"config": {"heads": 2}`) and
    its flag (--heads 2; --causal for true, none for false)."""
    text = _json(value)
    flag = f"--{option.replace('_', '-')}" + (
        "" if text in ("…", "true") else f" {text.strip(chr(34))}")
    return (f"key {key!r} is {what}; options go in the file's config: write "
            f'"config": {{"{option}": {text}}}' + ("" if text == "false" else
                                                   f" (or the flag {flag})"))


def require_key(key: str, keys: tuple[str, ...], where: str, what: str = "a problem key") -> None:
    """Refuse a key named on the command line (--set KEY=FILE, --tensor KEY=NAME) that is not
    one of ``keys``: there a key that would be ignored is a mistake, never a warning.

    Raises: InputError starting with ``where``: :func:`refusal`'s reason, or the key is not
    ``what``, with the closest of ``keys`` (or all of them).
    """
    if key in keys:
        return
    reason = refusal(key)
    if reason is not None:
        raise InputError(f"{where}: {reason}")
    close = _closest(key, keys)
    hint = f"; did you mean {close!r}?" if close else f" (one of {', '.join(keys)})"
    raise InputError(f"{where}: {key!r} is not {what}{hint}")


def _closest(key: str, keys: tuple[str, ...]) -> str | None:
    """The known key most like ``key``, compared in lower case (difflib, ratio ≥ 0.75)."""
    lower = {k.lower(): k for k in keys}
    close = difflib.get_close_matches(key.lower(), lower, n=1, cutoff=0.75)
    return lower[close[0]] if close else None


def _json(value: Any) -> str:
    """A short scalar as JSON (true, 2, "causal"); … for anything else or nothing."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool | int | float | str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) <= 30:
            return text
    return "…"


def _array(value: Any, key: str, origin: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:
        if "maximum number of dimension" in str(exc):
            raise InputError(f"{origin}: {key}: arrays nested more than 64 deep; expected "
                             "rows of numbers") from None
        raise InputError(
            f"{origin}: {key}: ragged array (rows of different lengths); every row must have "
            "the same length"
        ) from None
    if array.size == 0:
        raise InputError(f"{origin}: {key}: empty array, shape {fmt_shape(array.shape)}")
    return array


def _numeric(value: Any, key: str, origin: str, ranks: tuple[int, ...]) -> np.ndarray:
    array = _array(value, key, origin)
    if array.dtype.kind in "US":
        raise InputError(f"{origin}: {key}: numbers expected, found the string "
                         f"{_first_string(value)!r}; write numbers without quotes")
    if array.dtype.kind == "b":
        raise InputError(f"{origin}: {key}: numbers expected, found true/false")
    if array.dtype.kind == "c":
        raise InputError(f"{origin}: {key}: real numbers expected, found complex numbers")
    if array.dtype.kind == "O" and key in MINUS_INF_KEYS:  # null = −∞
        array = _from_objects(_nulls_to_minus_inf(value), key, origin)
    elif array.dtype.kind == "O":  # JSON: null, an object, or an integer numpy cannot hold
        array = _from_objects(value, key, origin)
    if array.dtype.kind not in "iuf":
        raise InputError(f"{origin}: {key}: numbers expected, found values of type "
                         f"{array.dtype}")
    if isinstance(value, list) and _has_bool(value):
        raise InputError(f"{origin}: {key}: numbers expected, found true/false among them")
    with np.errstate(over="ignore", invalid="ignore"):  # long doubles past float64: inf/nan,
        array = array.astype(np.float64)                 # refused just below (no warning line)
    bad = ~np.isfinite(array)
    if key in MINUS_INF_KEYS:
        bad &= array != -np.inf
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        allowed = " (or null, for −∞)" if key in MINUS_INF_KEYS else ""
        raise InputError(f"{origin}: {key}: {array[where]} at index {list(where)}; "
                         f"every value must be finite{allowed}")
    _check_rank(array, key, origin, ranks)
    return array


def _check_rank(array: np.ndarray, key: str, origin: str, ranks: tuple[int, ...]) -> None:
    """Raises: InputError when ``array`` has none of the ``ranks`` (numbers and masks alike)."""
    if array.ndim not in ranks:
        raise InputError(f"{origin}: {key}: expected {' or '.join(f'{r}-D' for r in ranks)}, "
                         f"got shape {fmt_shape(array.shape)}")


def _from_objects(value: Any, key: str, origin: str) -> np.ndarray:
    """Nested lists that numpy could only hold as objects: floats when every leaf is a number
    (integers past 64 bits), else an InputError naming the first leaf that is not."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif item is None:
            raise InputError(f"{origin}: {key}: numbers expected, found null")
        elif isinstance(item, dict):
            raise InputError(f"{origin}: {key}: numbers expected, found an object {{…}}")
        elif not isinstance(item, int | float) or isinstance(item, bool):
            raise InputError(f"{origin}: {key}: numbers expected, found {type(item).__name__} "
                             "values mixed with numbers")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{origin}: {key}: an integer too large for a 64-bit float (more "
                         "than 1.8e308)") from None


def _nulls_to_minus_inf(value: Any) -> Any:
    """Nested lists with each null (None) replaced by −∞ (a float bias's "no attention")."""
    if value is None:
        return -math.inf
    if isinstance(value, list | tuple):
        return [_nulls_to_minus_inf(item) for item in value]
    return value


def _has_bool(value: list) -> bool:
    """Whether nested lists hold a bool (numpy reads [1, True] as integers)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def _first_string(value: Any) -> str:
    """The first string leaf of nested lists (numpy turns a mixed array all into strings)."""
    stack = [value]
    while stack:
        item = stack.pop(0)
        if isinstance(item, str):
            return item
        if isinstance(item, list | tuple):
            stack[:0] = list(item)
        elif isinstance(item, np.ndarray) and item.dtype.kind in "US":
            return str(item.flat[0])
    return "?"


def _boolean(value: Any, key: str, origin: str, ranks: tuple[int, ...]) -> np.ndarray:
    array = _array(value, key, origin)
    if array.dtype.kind != "b":
        if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
            raise InputError(f"{origin}: {key}: expected true/false or 0/1 values")
        array = array != 0
    _check_rank(array, key, origin, ranks)
    return array


def _labels(value: Any, key: str, origin: str) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(t, str | int | float) for t in value):
        raise InputError(f"{origin}: {key}: expected a list of strings")
    return [str(t) for t in value]
