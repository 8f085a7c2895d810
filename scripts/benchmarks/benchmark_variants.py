"""What RIM options cost, in a training step (forward + backward), on the CPU by default.

1. ``comm_update``: the gated, bounded update (default) against the plain residual.
2. A packed batch (``PackedSequence``) whose lengths are drawn uniformly from [T/2, T]
   against a padded batch of length T.
3. ``variant="authors"`` (the step of the authors' released code) against the default, in a
   training step and in evaluation (forward only, no dropout, no gradient).
4. Within the authors' preset, dropout on the read vector's features (theirs) against dropout
   on the attention probabilities: the first needs the read vector itself in training, so
   the input side cannot be multiplied into the RNN's input gates once per sequence.

Shapes as in scripts/benchmarks/benchmark.py: ``RIM(64, 100, num_units=6, k=4)`` on (T=196, B=64, 64).
The two variants of each pair are timed in alternation, so that a load that comes and
goes on the machine affects both; every figure is the median of ``--repeats`` runs.

    python scripts/benchmarks/benchmark_variants.py          # writes runs/benchmark_variants.json
    python scripts/benchmarks/benchmark_variants.py --out results/benchmark_variants.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from experiments.common import environment_info
from rim_core import RIM
from rim_core.authors import AUTHORS_OPTIONS


def step(model: RIM, x) -> None:
    model.zero_grad(set_to_none=True)
    out, state = model(x)
    (out.data if hasattr(out, "batch_sizes") else out).sum().backward()


@torch.no_grad()
def forward(model: RIM, x) -> None:
    model(x)


def build(cell: str, device: torch.device, **kwargs) -> RIM:
    torch.manual_seed(0)
    return RIM(64, 100, num_units=6, k=4, rnn_cell=cell, **kwargs).to(device)


def alternate(a, b, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median seconds of ``a()`` and of ``b()``, timed in turn after one warm-up each."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeats + 1):
        for fn, out in ((a, times[0]), (b, times[1])):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first round warms up
                out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seq-len", type=int, default=196)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark_variants.json"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this PyTorch")
    device = torch.device(args.device)
    x = torch.randn(args.seq_len, args.batch, 64, device=device)
    rows = []
    for cell in ("LSTM", "GRU"):
        models = {update: build(cell, device, comm_update=update) for update in ("gated", "residual")}
        gated, residual = alternate(partial(step, models["gated"], x), partial(step, models["residual"], x),
                                    device, args.repeats)
        rows.append({"cell": cell, "comparison": "gated / residual comm_update", "a_s": gated,
                     "b_s": residual, "ratio": gated / residual})

        generator = torch.Generator().manual_seed(0)
        lengths = torch.randint(args.seq_len // 2, args.seq_len + 1, (args.batch,), generator=generator)
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        model = models["gated"]
        t_packed, t_padded = alternate(partial(step, model, packed), partial(step, model, x), device,
                                       args.repeats)
        rows.append({"cell": cell, "comparison": f"packed (lengths U[{args.seq_len // 2}, {args.seq_len}]) "
                     f"/ padded (length {args.seq_len})", "a_s": t_packed, "b_s": t_padded,
                     "ratio": t_packed / t_padded})

        authors, default = build(cell, device, variant="authors"), models["gated"]
        for mode, fn in (("train", step), ("eval", forward)):
            authors.train(mode == "train")
            default.train(mode == "train")
            a, b = alternate(partial(fn, authors, x), partial(fn, default, x), device, args.repeats)
            rows.append({"cell": cell, "comparison": f"authors preset / default ({mode})", "a_s": a, "b_s": b,
                         "ratio": a / b})
        read_vector = build(cell, device, variant="authors")
        probabilities = build(cell, device, variant="authors",
                              options=dataclasses.replace(AUTHORS_OPTIONS, dropout_on="attention"))
        a, b = alternate(partial(step, read_vector.train(), x), partial(step, probabilities.train(), x),
                         device, args.repeats)
        rows.append({"cell": cell, "comparison": "authors: dropout on read vector / on attention (train)",
                     "a_s": a, "b_s": b, "ratio": a / b})
        default.train()

    env = environment_info()
    print(f"torch {env['torch']}; {env['cpu']}, {env['cpu_threads']} threads; device {args.device}; "
          f"T={args.seq_len}, B={args.batch}, median of {args.repeats}")
    for r in rows:
        print(f"{r['cell']:4} {r['comparison']:55} {r['a_s']:7.3f} s / {r['b_s']:7.3f} s = {r['ratio']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"environment": env, "device": args.device, "seq_len": args.seq_len, "batch": args.batch,
            "repeats": args.repeats}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
