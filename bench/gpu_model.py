"""attncli model on a GPU: the model placed by transformers (--device-map auto) and attncli's
recomputation on the GPU (--device cuda), checked against the model's own attention.

Run on a machine with CUDA: ``python bench/gpu_model.py``. It builds random models with
transformers (nothing is downloaded), saves them to a temporary folder and runs the command
line on them, printing each run's agreement line, exit status and wall time. On a machine
without CUDA it says so and stops.

Cases: a tiny Llama (GQA) and Gemma 2 (soft-capping, sliding layers) in float32, recomputed
with --device cuda; a Llama of about 1.2 B parameters in bfloat16 (its checkpoint's dtype),
placed by --device-map auto, 2048 tokens, --steps output, recomputed on the CPU and on the GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(folder: Path, kind: str) -> Path:
    """Save a random model of ``kind`` to ``folder / kind``."""
    import torch
    import transformers

    torch.manual_seed(0)
    if kind == "llama-tiny":
        config = transformers.LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                          num_attention_heads=8, num_key_value_heads=2,
                                          intermediate_size=128, max_position_embeddings=256)
    elif kind == "gemma2-tiny":
        config = transformers.Gemma2Config(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=2,
                                           head_dim=16, intermediate_size=128,
                                           sliding_window=4, query_pre_attn_scalar=32,
                                           attn_logit_softcapping=5.0,
                                           max_position_embeddings=256)
    else:  # about 1.2 B parameters
        config = transformers.LlamaConfig(vocab_size=32000, hidden_size=2048,
                                          num_hidden_layers=16, num_attention_heads=32,
                                          num_key_value_heads=8, intermediate_size=5632,
                                          max_position_embeddings=4096,
                                          dtype="bfloat16")
    model = transformers.AutoModel.from_config(config)
    if kind == "llama-1b":
        model = model.to(torch.bfloat16)
    path = folder / kind
    model.save_pretrained(path)
    return path


def run(args: list[str]) -> None:
    """One attncli model command: its status, time, and each layer's agreement."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "attncli", "model", *args, "--json"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    shown = [a if len(a) < 40 else f"<{a.count(',') + 1} ids>" for a in args[1:]]
    print(f"$ attncli model MODEL {' '.join(shown)}\n  exit {done.returncode}, {seconds:.1f} s")
    if done.returncode not in (0, 1):
        print("  " + done.stderr.strip().replace("\n", "\n  "))
        return
    document = json.loads(done.stdout)
    layers = document["layers"] if "layers" in document else {"": document}
    for layer in layers.values():
        agreement = layer["model"]["agreement"]
        deltas = ", ".join(f"{k} {v:.1e} (of {agreement['max_abs_model'][k]:.2g})"
                           for k, v in agreement["max_abs_delta"].items())
        print(f"  layer {layer['model']['layer']}: agrees={agreement['agrees']} "
              f"({agreement['dtype']}) {deltas}; backend {layer['backend']}, "
              f"device {layer['device']}, dtype {layer['dtype']}")


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure here")
        return
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ids = ",".join(str(i % 97 + 1) for i in range(12))
        for kind in ("llama-tiny", "gemma2-tiny"):
            path = str(build(folder, kind))
            run([path, "--input-ids", ids, "--layer", "0-1", "--device", "cuda",
                 "--backend", "torch"])
            run([path, "--input-ids", ids, "--layer", "1", "--device-map", "auto",
                 "--device", "cuda", "--backend", "torch", "--dtype", "float32"])
        path = str(build(folder, "llama-1b"))
        long = ",".join(str(i * 7 % 31999 + 1) for i in range(2048))
        run([path, "--input-ids", long, "--layer", "8", "--steps", "output",
             "--device-map", "auto"])
        run([path, "--input-ids", long, "--layer", "8", "--steps", "output",
             "--device-map", "auto", "--device", "cuda", "--backend", "torch"])
        short = ",".join(long.split(",")[:300])
        run([path, "--input-ids", short, "--layer", "15", "--query", "-1",
             "--steps", "weights,output", "--device-map", "auto", "--device", "cuda"])


if __name__ == "__main__":
    main()
