"""What the user gave: :class:`Problem`, and every check on it.

Loaders (JSON, CSV, NPY/NPZ) all end here, in :meth:`Problem.from_mapping`; nothing downstream
knows which format a key came from. Values, ranks and key names are checked here; shapes,
which depend on the options, in :func:`attncli.shapes.prepare`. Every error names the file and
the key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attncli.config import Layout, coerce_fields
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
    "W_o": (2,),
    "b_o": (1,),
    "W_a": (2,),
    "U_a": (2,),
    "v_a": (1,),
    "b_a": (1,),
}
#: Boolean (or 0/1) keys and the ranks they may have.
MASK_KEYS: dict[str, tuple[int, ...]] = {
    "mask": (2, 3),  # True = may attend (torch SDPA's polarity)
    "key_padding_mask": (1, 2),  # True = padding, ignored (nn.MultiheadAttention's polarity)
    "dropout_mask": (2, 3, 4),  # 1 = kept, 0 = dropped; the shape of the weights step
}
LABEL_KEYS = ("tokens", "memory_tokens")
#: weight_layout: 'in_out' | 'out_in'; config: option defaults (see attncli.config.coerce_fields);
#: about: a description; expected: reference numbers for some steps (samples carry them).
OTHER_KEYS = ("weight_layout", "config", "about", "expected")
KNOWN_KEYS = (*ARRAY_KEYS, *MASK_KEYS, *LABEL_KEYS, *OTHER_KEYS)
#: nn.MultiheadAttention's names of its inputs, and attncli's keys for them.
MHA_INPUTS = {"query": "x", "key": "key_memory", "value": "value_memory"}
_DIGITS = str.maketrans("0134", "oiea")  # W_0 → W_o, …: digits typed for the letters they resemble
_WORDS = (("query", "q"), ("key", "k"), ("value", "v"), ("output", "o"))


def folded(key: str) -> str:
    """A key as look-alikes are compared: lower case, without ``_ - .`` or spaces, digits read
    as the letters they resemble, query/key/value/output shortened to q/k/v/o.
    ``W_q``, ``Wq``, ``w_q``, ``w_query`` all fold to ``wq``; ``W_0`` and ``W_o`` to ``wo``."""
    text = re.sub(r"[\s_.\-]", "", key.lower()).translate(_DIGITS)
    for word, letter in _WORDS:
        text = text.replace(word, letter)
    return text


_FOLDED_KEYS = {folded(key): key for key in KNOWN_KEYS}


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


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

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def where(self, key: str) -> str:
        """'file: key' for messages."""
        return f"{self.origin.get(key, '<input>')}: {key}"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str) -> Problem:
        """Validate a mapping of keys (from JSON, NPZ or options) into a Problem.

        Raises:
            InputError: a value that is not a finite numeric array of an accepted rank, a mask
                that is not boolean/0-1, token labels that are not a list of strings, an unknown
                weight_layout; nn.MultiheadAttention's ``query``/``key``/``value`` (with the keys
                to use instead), and a key that looks like a known one (``w_q``, ``Wq``,
                ``W_0``, ``w_query``: case, underscores, digits for letters), naming it. Other
                unknown keys only warn, naming the closest known key.
        """
        problem = cls()
        for key, value in raw.items():
            problem.origin[key] = source
            if key in ARRAY_KEYS:
                problem.arrays[key] = _numeric(value, key, source, ARRAY_KEYS[key])
            elif key in MASK_KEYS:
                problem.arrays[key] = _boolean(value, key, source, MASK_KEYS[key])
            elif key in LABEL_KEYS:
                setattr(problem, key, _labels(value, key, source))
            elif key == "weight_layout":
                try:
                    problem.weight_layout = Layout(value)
                except ValueError:
                    raise InputError(
                        f"{source}: weight_layout: expected 'in_out' or 'out_in', got {value!r}"
                    ) from None
            elif key == "config":
                if not isinstance(value, dict):
                    raise InputError(f"{source}: config: expected an object of option values")
                problem.config = coerce_fields(value, source)
            elif key == "about":
                problem.about = str(value)
            elif key == "expected":
                if not isinstance(value, dict):
                    raise InputError(f"{source}: expected: expected an object of step → array")
                problem.expected = value
            else:
                problem.warnings.append(_unknown_key(key, source))
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
        )


def _unknown_key(key: str, source: str) -> str:
    """The warning for a key attncli does not know.

    Raises: InputError for a key that folds (:func:`folded`) to a known key, or that is one of
    nn.MultiheadAttention's input names: a run that ignored it would silently compute
    something else (K = x for a misspelt W_k).
    """
    plain = re.sub(r"[\s_.\-]", "", key.lower())
    if plain in MHA_INPUTS:
        ours = MHA_INPUTS[plain]
        raise InputError(
            f"{source}: key {key!r} is nn.MultiheadAttention's name of an input; attncli's are "
            f"x (query), key_memory (key) and value_memory (value), or memory for keys and "
            f"values from one sequence: write {ours!r}")
    known = _FOLDED_KEYS.get(folded(key))
    if known is not None:
        raise InputError(f"{source}: unknown key {key!r} looks like {known!r}; write it "
                         f"{known!r} (key names are exact)")
    lower = {k.lower(): k for k in KNOWN_KEYS}
    close = difflib.get_close_matches(key.lower(), lower, n=1, cutoff=0.75)
    hint = f"; did you mean {lower[close[0]]!r}?" if close else ""
    return f"{source}: unknown key {key!r} ignored{hint}"


def _array(value: Any, key: str, source: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:
        if "maximum number of dimension" in str(exc):
            raise InputError(f"{source}: {key}: arrays nested more than 64 deep; expected "
                             "rows of numbers") from None
        raise InputError(
            f"{source}: {key}: ragged array (rows of different lengths); every row must have "
            "the same length"
        ) from None
    if array.size == 0:
        raise InputError(f"{source}: {key}: empty array, shape {fmt_shape(array.shape)}")
    return array


def _numeric(value: Any, key: str, source: str, ranks: tuple[int, ...]) -> np.ndarray:
    array = _array(value, key, source)
    if array.dtype.kind in "US":
        raise InputError(f"{source}: {key}: numbers expected, found the string "
                         f"{_first_string(value)!r}; write numbers without quotes")
    if array.dtype.kind == "b":
        raise InputError(f"{source}: {key}: numbers expected, found true/false")
    if array.dtype.kind == "c":
        raise InputError(f"{source}: {key}: real numbers expected, found complex numbers")
    if array.dtype.kind == "O":  # JSON: null, an object, or an integer numpy cannot hold
        array = _from_objects(value, key, source)
    if array.dtype.kind not in "iuf":
        raise InputError(f"{source}: {key}: numbers expected, found values of type "
                         f"{array.dtype}")
    if isinstance(value, list) and _has_bool(value):
        raise InputError(f"{source}: {key}: numbers expected, found true/false among them")
    with np.errstate(over="ignore", invalid="ignore"):  # long doubles past float64: inf/nan,
        array = array.astype(np.float64)                 # refused just below (no warning line)
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{source}: {key}: {array[where]} at index {list(where)}; "
                         "every value must be finite")
    if array.ndim not in ranks:
        raise InputError(f"{source}: {key}: expected {' or '.join(f'{r}-D' for r in ranks)}, "
                         f"got shape {fmt_shape(array.shape)}")
    return array


def _from_objects(value: Any, key: str, source: str) -> np.ndarray:
    """Nested lists that numpy could only hold as objects: floats when every leaf is a number
    (integers past 64 bits), else an InputError naming the first leaf that is not."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif item is None:
            raise InputError(f"{source}: {key}: numbers expected, found null")
        elif isinstance(item, dict):
            raise InputError(f"{source}: {key}: numbers expected, found an object {{…}}")
        elif not isinstance(item, int | float) or isinstance(item, bool):
            raise InputError(f"{source}: {key}: numbers expected, found {type(item).__name__} "
                             "values mixed with numbers")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{source}: {key}: an integer too large for a 64-bit float (more "
                         "than 1.8e308)") from None


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


def _boolean(value: Any, key: str, source: str, ranks: tuple[int, ...]) -> np.ndarray:
    array = _array(value, key, source)
    if array.dtype.kind != "b":
        if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
            raise InputError(f"{source}: {key}: expected true/false or 0/1 values")
        array = array != 0
    if array.ndim not in ranks:
        raise InputError(f"{source}: {key}: expected {' or '.join(f'{r}-D' for r in ranks)}, "
                         f"got shape {fmt_shape(array.shape)}")
    return array


def _labels(value: Any, key: str, source: str) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(t, str | int | float) for t in value):
        raise InputError(f"{source}: {key}: expected a list of strings")
    return [str(t) for t in value]
