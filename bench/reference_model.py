"""The plain transformers script that bench/model.py times `attncli model` against.

What a user writes by hand to see a GGUF model's attention: the tokenizer and the model from
the same file, eager attention, one forward pass with ``output_attentions=True``, and the
asked layers' weights saved with ``np.savez`` (key ``layer{L}``, shape (heads, n, n)).

Usage: python bench/reference_model.py MODEL.gguf OUT.npz --layers 0,1,2
           (--text "..." | --text-file FILE)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import transformers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", required=True, help="comma-separated layer numbers")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--text-file", type=Path)
    args = parser.parse_args()
    text = args.text if args.text is not None else args.text_file.read_text()

    where = {"pretrained_model_name_or_path": str(args.gguf.parent), "gguf_file": args.gguf.name}
    tokenizer = transformers.AutoTokenizer.from_pretrained(**where)
    # the base model: no language-model head (its logits would be n × 49152 numbers and
    # 2·n·d_model·vocab FLOPs that attncli never computes; a stricter reference without them)
    model = transformers.AutoModel.from_pretrained(**where, attn_implementation="eager")
    model.eval()
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        result = model(**inputs, output_attentions=True)
    layers = [int(layer) for layer in args.layers.split(",")]
    np.savez(args.out, **{f"layer{layer}": result.attentions[layer][0].numpy()
                          for layer in layers})


if __name__ == "__main__":
    main()
