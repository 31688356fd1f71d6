"""Open a local model: a Hugging Face model directory or a .gguf file, read by transformers.

attncli never downloads: the path must be on this machine. transformers, torch (and, for GGUF
files, gguf) are imported here, when ``attncli model`` runs, never by the rest of attncli.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attncli.errors import InputError
from attncli.models.families import Family, family_of

INSTALL = 'pip install "attncli[model]" torch==2.13.0'
#: A Hugging Face Hub model's name, owner/name (meta-llama/Llama-3-8B), given where a path is.
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass
class Source:
    """Where a model's files are: ``directory`` (config.json, tokenizer files, weights) and,
    for a GGUF model, ``gguf`` (the file's name inside it). ``shown``: the path as given."""

    directory: Path
    gguf: str | None
    shown: str

    @property
    def where(self) -> dict[str, Any]:
        """from_pretrained's arguments that point at these files, offline."""
        more = {"gguf_file": self.gguf} if self.gguf else {}
        return {"pretrained_model_name_or_path": str(self.directory),
                "local_files_only": True, **more}


@dataclass
class Model:
    """An opened model: its config and family; after :func:`load`, its base model (the
    layers up to the last one asked for) and its tokenizer (None when it has none)."""

    source: Source
    config: Any
    family: Family
    module: Any = None
    tokenizer: Any = None

    @property
    def layers(self) -> int:
        """The model's number of layers (as its config says, before any truncation)."""
        return self._layers

    def __post_init__(self) -> None:
        self._layers = int(self.config.num_hidden_layers)

    @property
    def name(self) -> str:
        """The model's name: the GGUF file's, or its directory's (the folder above a folder
        named just "model", as a package keeps its files)."""
        folder = self.source.directory.resolve()
        if folder.name.lower() in ("model", "models") and folder.parent.name:
            folder = folder.parent
        return self.source.gguf or folder.name or self.source.shown


def locate(path: str) -> Source:
    """The model's files at ``path``: a directory with config.json (or with one .gguf file),
    or a .gguf file.

    Raises: InputError for a path that does not exist (attncli never downloads: it says how to
    download the model first), a file that is not .gguf, a directory without config.json.
    """
    target = Path(path).expanduser()
    if not target.exists():
        hint = (f"; attncli never downloads a model: download it first (hf download {path} "
                "--local-dir DIR) and pass DIR") if HUB_NAME.fullmatch(path) else ""
        raise InputError(f"{path}: no such model directory or .gguf file{hint}")
    if target.is_file():
        if target.suffix.lower() != ".gguf":
            raise InputError(f"{path}: not a model: give a Hugging Face model directory "
                             "(config.json, *.safetensors, tokenizer files) or a .gguf file")
        return Source(target.parent, target.name, path)
    if (target / "config.json").is_file():
        return Source(target, None, path)
    ggufs = sorted(p.name for p in target.glob("*.gguf"))
    if len(ggufs) == 1:
        return Source(target, ggufs[0], path)
    more = f" (it holds {len(ggufs)} .gguf files: give one)" if ggufs else ""
    raise InputError(f"{path}: not a model directory: no config.json{more}")


def libraries():
    """transformers and torch, imported now, quietly: no progress bars unless stderr is a
    terminal, no warnings of theirs (attncli says what matters), and never the network.

    Raises: InputError with the install command when they are missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise InputError(f"attncli model needs transformers and torch ({exc.name} is missing): "
                         f"{INSTALL}") from None
    transformers.logging.set_verbosity_error()
    if not sys.stderr.isatty():
        transformers.logging.disable_progress_bar()
    return transformers, torch


def open_model(path: str) -> Model:
    """The model's config and family, without its weights (``--info`` needs no more).

    Raises: InputError (:func:`locate`; a config or a .gguf file transformers cannot read,
    or a .gguf file without the gguf package; an architecture attncli does not read, listing
    those it does).
    """
    source = locate(path)
    transformers, _ = libraries()
    if source.gguf is not None and importlib.util.find_spec("gguf") is None:
        raise InputError(f"{path}: reading a .gguf file needs the gguf package: {INSTALL}")
    try:
        with _quiet(gguf=source.gguf is not None):
            config = transformers.AutoConfig.from_pretrained(**source.where)
    except Exception as exc:  # a foreign file: transformers' reason, on one line
        what = "not a GGUF file, or a damaged one" if source.gguf else "unreadable config.json"
        raise InputError(f"{path}: cannot load the model: {what} ({_reason(exc)})") from None
    config = getattr(config, "text_config", None) or config  # a multimodal wrapper's text model
    return Model(source, config, family_of(getattr(config, "model_type", None), path))


def load(model: Model, last_layer: int, device_map: str | None = None,
         say: Callable[[str], None] | None = None) -> Model:
    """Load ``model``'s layers 0 … ``last_layer`` (the later ones are never loaded or run),
    in the checkpoint's dtype, with eager attention (whose weights are the model's own).
    ``device_map`` ("auto") lets accelerate place or offload the layers.

    Raises: InputError when transformers cannot load the weights (a GGUF it cannot
    dequantize, a damaged file), with its reason; for --device-map without accelerate.
    """
    transformers, _ = libraries()
    config = _truncated(model.config, last_layer + 1)
    if say is not None:
        kind = "GGUF file, dequantized by transformers" if model.source.gguf else "safetensors"
        say(f"loading {model.name} ({model.family.name}, {kind}), layers 0 … {last_layer} of "
            f"{model.layers}")
    if device_map and importlib.util.find_spec("accelerate") is None:
        raise InputError(f"--device-map {device_map} needs accelerate: {INSTALL}")
    more = {"device_map": device_map} if device_map else {}
    try:
        with _quiet(gguf=model.source.gguf is not None):
            module, loaded = transformers.AutoModel.from_pretrained(
                **model.source.where, config=config, dtype="auto",
                attn_implementation="eager", output_loading_info=True, **more)
    except Exception as exc:
        raise InputError(f"{model.source.shown}: cannot load the model's weights: "
                         f"{_reason(exc)}") from None
    finally:  # the file is read: its parsed header (~160 MiB for SmolLM2) is not needed now
        _READERS.clear()
    missing = _missing(loaded.get("missing_keys") or (), model.family, last_layer)
    if missing:  # transformers would run them as random numbers, and attncli would agree
        raise InputError(f"{model.source.shown}: the checkpoint has no {', '.join(missing[:3])}"
                         f"{f' (and {len(missing) - 3} more)' if len(missing) > 3 else ''}: "
                         "transformers would fill them with random numbers, not the model's")
    module.eval()
    model.module = module
    return model


def _missing(keys, family: Family, last_layer: int) -> list[str]:
    """The missing weights that the forward pass up to ``last_layer`` uses: those of the
    layers 0 … last_layer and the embeddings (any name with "embed", GPT-2's wte and wpe);
    weights after the layers (a final norm, BERT's pooler) never run."""
    layer = re.compile(rf"(?:.*\.)?{re.escape(family.layers)}\.(\d+)\.")
    used = []
    for key in sorted(keys):
        match = layer.match(key)
        if (int(match[1]) <= last_layer if match else
                "embed" in key or re.search(r"(?:^|\.)(?:wte|wpe)\.", key)):
            used.append(key)
    return used


def load_tokenizer(model: Model) -> Model:
    """Give ``model`` its tokenizer (None when its files have none), before its weights:
    a text or a --query that does not fit is said in a second, not after the load."""
    transformers, _ = libraries()
    model.tokenizer = _tokenizer(transformers, model.source)
    return model


def _truncated(config: Any, layers: int) -> Any:
    """A copy of ``config`` with only its first ``layers`` layers (per-layer lists cut too)."""
    import copy

    config = copy.deepcopy(config)
    config.num_hidden_layers = layers
    for name in ("layer_types",):
        value = getattr(config, name, None)
        if isinstance(value, list):
            setattr(config, name, value[:layers])
    return config


#: The files of a saved tokenizer (one is enough). Without any, transformers 5 still builds the
#: family's tokenizer class with an empty vocabulary, whose tokens are all None.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model", "sentencepiece.bpe.model", "merges.txt")


def _tokenizer(transformers, source: Source):
    """The model's tokenizer, or None when its directory has none (a model saved without one:
    --input-ids then gives the tokens)."""
    if source.gguf is None and not any((source.directory / name).is_file()
                                       for name in TOKENIZER_FILES):
        return None
    try:
        with _quiet(gguf=source.gguf is not None):
            return transformers.AutoTokenizer.from_pretrained(**source.where)
    except Exception:
        return None


@contextlib.contextmanager
def _quiet(gguf: bool = False):
    """Inside: what transformers prints to stdout (some loaders do) goes nowhere; stdout is
    attncli's results only. With ``gguf``: a GGUF file's header is parsed once for the config,
    the tokenizer and the weights (:func:`_read_once`), the map of its tensors' names built
    once, not for each module of the model (transformers' get_gguf_hf_weights_map, seconds
    for a small model); and unless stderr is a terminal, no
    dequantization progress bar: transformers draws it with tqdm itself, not through its
    logging (whose bars :func:`libraries` turns off), and in a log it is a line per update."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        if gguf:
            import functools
            from unittest import mock

            import gguf as library

            stack.enter_context(mock.patch.object(library, "GGUFReader",
                                                  _read_once(library.GGUFReader)))
            if hasattr(library, "get_tensor_name_map"):  # built anew for each of 395 modules
                stack.enter_context(mock.patch.object(library, "get_tensor_name_map",
                                                      functools.cache(library.get_tensor_name_map)))
            try:  # where transformers 5 keeps its GGUF loader; elsewhere, its bar stays
                reader = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
            except ImportError:
                reader = None
            if reader is not None and not sys.stderr.isatty() and hasattr(reader, "tqdm"):
                stack.enter_context(mock.patch.object(
                    reader, "tqdm", functools.partial(reader.tqdm, disable=True)))
        yield


#: The last GGUF file parsed: (path, mtime, size) → its gguf.GGUFReader (read-only).
_READERS: dict[tuple[str, int, int], Any] = {}


def _read_once(reader: type) -> Callable[..., Any]:
    """gguf.GGUFReader, parsing a file's header (its fields: the tokenizer's 49 152 tokens and
    merges, for SmolLM2, take seconds) once: transformers parses it anew for the config, the
    tokenizer and the weights, importing GGUFReader each time."""

    def read(path, mode: str = "r"):
        if mode != "r":
            return reader(path, mode)
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
        if key not in _READERS:
            _READERS.clear()
            _READERS[key] = reader(path, mode)
        return _READERS[key]

    return read


def _reason(exc: Exception) -> str:
    """An exception as one line: its type and its message's first line."""
    lines = str(exc).strip().splitlines()
    kind = type(exc).__name__
    if kind.islower() and type(exc).__module__ != "builtins":  # struct.error, not "error"
        kind = f"{type(exc).__module__}.{kind}"
    return f"{kind}: {lines[0] if lines else ''}".rstrip(": ")
