"""A real model's attention, layer by layer: ``attncli model``.

transformers loads the model (a local directory or a .gguf file) and runs it up to the last
asked layer; hooks capture each asked layer's attention input and the model's own results
(:mod:`~attncli.models.capture`); each layer becomes a Problem and an AttentionConfig
(:mod:`~attncli.models.layer`, with the family's data from :mod:`~attncli.models.families`);
attncli's own stages compute every step, and :mod:`~attncli.models.agreement` compares them
with the model's. transformers and torch are imported only here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attncli.errors import InputError


@dataclass
class LayerRun:
    """One layer: its input (``problem``, ``config``), attncli's ``trace`` of it and the
    ``agreement`` with the model."""

    index: int
    problem: Any
    config: Any
    trace: Any
    agreement: Any
    about: dict  # the model: name, family, path, input_ids

    def described(self) -> dict:
        """JSON's "model": the model, the layer, the tokens' ids and the agreement."""
        return {**self.about, "layer": self.index, "agreement": self.agreement.to_dict()}


def parse_layers(text: str, count: int) -> list[int]:
    """--layer: a number (``3``, ``-1`` for the last), a range (``0-5``, both ends
    included), a list of them (``0,4-6``) or ``all``.

    Raises: InputError for anything else, or a layer outside 0 … count − 1 (saying how many).
    """
    text = text.strip()
    if text.lower() == "all":
        return list(range(count))
    chosen: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InputError(f"--layer {text!r}: expected a layer number, a range such as 0-5, "
                             "or all")
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if first < 0 and match[2] is None:
            first = last = first + count
        for index in (first, last):
            if not 0 <= index < count:
                raise InputError(f"--layer {text}: layer {match[1] if index == first else index}"
                                 f" is out of range: the model has {count} layers, 0 … "
                                 f"{count - 1}")
        if last < first:
            raise InputError(f"--layer {part}: the range ends before it starts")
        chosen.extend(i for i in range(first, last + 1) if i not in chosen)
    return chosen


def token_ids(model, text: str | None, input_ids: str | None) -> tuple[list[int], list[str]]:
    """The token ids of ``text`` (the model's tokenizer, its special tokens included) or of
    --input-ids "1,2,3", and their readable, unique labels.

    Raises: InputError for neither or both, empty text, ids that are not integers or outside
    the vocabulary, text longer than the model's positions, no tokenizer for --text.
    """
    from attncli.models.tokens import labels

    if (text is None) == (input_ids is None):
        raise InputError("give the tokens: --text TEXT or --input-ids 1,2,3 (one of them)")
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if text is not None:
        if not text.strip():
            raise InputError("--text is empty: give a sentence")
        if model.tokenizer is None:
            raise InputError(f"{model.source.shown}: no tokenizer files: give --input-ids")
        ids = list(model.tokenizer(text)["input_ids"])
    else:
        try:
            ids = [int(i) for i in input_ids.replace(" ", ",").split(",") if i.strip()]
        except ValueError:
            raise InputError(f"--input-ids {input_ids!r}: expected integers such as "
                             "101,7592,102") from None
        if not ids:
            raise InputError("--input-ids is empty: give at least one token id")
        bad = [i for i in ids if not 0 <= i < vocab] if vocab else []
        if bad:
            raise InputError(f"--input-ids: {', '.join(map(str, bad[:5]))} outside the "
                             f"vocabulary, 0 … {vocab - 1}")
    most = _positions(model.config)
    if most is not None and len(ids) > most:
        raise InputError(f"the text is {len(ids)} tokens, longer than the model's "
                         f"{most} positions (max_position_embeddings)")
    # an id the tokenizer has no token for (a vocabulary padded beyond the tokenizer's, or no
    # tokenizer at all) is labelled by the id itself
    tokens = (model.tokenizer.convert_ids_to_tokens(ids) if model.tokenizer is not None
              else [None] * len(ids))
    return ids, labels([str(i) if t is None else str(t) for i, t in zip(ids, tokens, strict=True)],
                       bytes_level=_byte_level(model.tokenizer))


def _byte_level(tokenizer) -> bool:
    """Whether ``tokenizer`` is a byte-level BPE (GPT-2's scheme: its tokens spell bytes)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return type(decoder).__name__ == "ByteLevel" or "ByteLevel" in repr(decoder)


def query_row(tokens: list[str], query: str) -> int:
    """--query's row: a label (``␣cat``), the word with a typed space (`` cat``), without its
    space mark (``cat``) or in another case (``Cat`` for an uncased model's ``cat``) when one
    token matches so, or an index.

    Raises: InputError naming the tokens when none matches.
    """
    from attncli.models.tokens import SPACE
    from attncli.trace import Trace

    if query not in tokens:
        typed = query.replace(" ", SPACE)  # a space typed as itself
        for same in (lambda t: t == typed, lambda t: t.lstrip(SPACE) == query.strip(),
                     lambda t: t.lstrip(SPACE).casefold() == query.strip().casefold()):
            found = [i for i, token in enumerate(tokens) if same(token)]
            if len(found) == 1:
                return found[0]
    return Trace(query_tokens=tokens).query_index(query)


def check_head(model, layers: list[int], head: int) -> None:
    """--head: a query head that each of ``layers`` has.

    Raises: InputError for a head outside 0 … H − 1 (saying H).
    """
    from attncli.models.layer import facts

    for index in layers:
        heads = facts(model.config, model.family, index).heads
        if not 0 <= head < heads:
            raise InputError(f"--head {head}: out of range: layer {index} has {heads} heads, "
                             f"0 … {heads - 1}")


def _positions(config) -> int | None:
    """The most tokens the model has positions for; None when it has no limit (ALiBi)."""
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def run_model(path: str, layers: str, *, text: str | None = None, input_ids: str | None = None,
              steps: list[str] | None = None, query: str | None = None,
              device_map: str | None = None, options: dict | None = None,
              monitor=None, say: Callable[[str], None] | None = None,
              check: Callable[[Any, list[int]], None] | None = None) -> list[LayerRun]:
    """Every asked layer of the model at ``path``, recomputed by attncli and compared.

    Args:
        layers: --layer (:func:`parse_layers`). steps, query, monitor: as for
            :func:`attncli.attention.pipeline.attend`. options: AttentionConfig fields
            that set how attncli computes (backend, device, dtype). say: progress lines.
        check: called with the opened model (its config, no weights yet) and the chosen
            layers, before the weights load: the caller's checks of what it will do with
            them (one layer for a one-layer format, a head the model has).
    Raises: InputError (and ConfigError) as :func:`~attncli.models.loading.open_model`,
        :func:`~attncli.models.loading.load`, :func:`parse_layers`, :func:`token_ids` and
        ``check`` say, before anything long runs where possible.
    """
    from attncli.attention.pipeline import attend
    from attncli.models.agreement import agreement
    from attncli.models.capture import run_layers
    from attncli.models.layer import facts, layer_problem
    from attncli.models.loading import load, load_tokenizer, open_model

    model = open_model(path)
    chosen = parse_layers(layers, model.layers)
    for index in chosen:  # what attncli cannot compute is said before the load
        facts(model.config, model.family, index)
    ids, tokens = token_ids(load_tokenizer(model), text, input_ids)
    row = None if query is None else query_row(tokens, query)
    if check is not None:
        check(model, chosen)
    query = row  # the index: a label may be a number (ids without a tokenizer)
    load(model, max(chosen), device_map=device_map, say=say)
    if say is not None:
        say(f"running {len(ids)} tokens through layers 0 … {max(chosen)}")
    captured = run_layers(model.module, model.family, ids, chosen, row,
                          keep_weights=steps is None or "weights" in steps)
    runs = []
    about = {"name": model.name, "family": model.family.name, "path": model.source.shown,
             "input_ids": ids}
    for index in chosen:
        problem, config, _ = layer_problem(model.config, model.family, index, captured[index],
                                           tokens)
        config = config.replace(**(options or {}))
        # context and output (n·d numbers each) are always compared with the model's, and
        # shown only when asked for
        extra = [] if steps is None else [s for s in ("context", "output") if s not in steps]
        trace = attend(problem, config, steps=None if steps is None else [*steps, *extra],
                       monitor=monitor, query=query)
        agreed = agreement(trace, captured[index], row)
        if extra:
            trace = dataclasses.replace(trace, steps=[s for s in trace.steps
                                                      if s.name not in extra])
        runs.append(LayerRun(index, problem, config, trace, agreed, about))
        captured[index] = None  # the model's copy of this layer is no longer needed
    return runs
