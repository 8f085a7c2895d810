"""Check the opt-in MKL library for AMD CPUs (``scripts/contrib/mkl_on_amd.c``): same results, faster.

Runs one float32 RIM training step (the benchmark's shapes, dropout off) and times MKL's
``bmm`` on the RIM's communication product in two child processes, one with
``build/libmkl_on_amd.so`` preloaded and one without. Prints both products' throughput
and the largest difference in the step's outputs and gradients. (MKL_VERBOSE's banner is
no guide here: it names the generic path either way.)

    make mkl-on-amd && python scripts/contrib/check_mkl_on_amd.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from experiments.common import UserError, cli_main, preloaded_libraries
from rim_core import RIM

LIBRARY = Path(__file__).resolve().parents[2] / "build" / "libmkl_on_amd.so"


def child(out: Path, library: Path) -> None:
    """One training step's outputs and gradients, saved to ``out``, one product's speed, and
    whether ``library`` is loaded in this process."""
    torch.manual_seed(0)
    model = RIM(64, 100, num_units=6, k=4, input_dropout=0.0, comm_dropout=0.0)
    x = torch.randn(196, 64, 64)
    output, (h, c) = model(x)
    (output.square().mean() + h.square().mean() + c.square().mean()).backward()
    tensors = [output, h, c, *(p.grad for p in model.parameters())]

    a, w = torch.randn(6, 64, 100), torch.randn(6, 100, 656)  # the communication q/k/v product
    for _ in range(10):
        torch.bmm(a, w)
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(100):
            torch.bmm(a, w)
        runs.append((time.perf_counter() - start) / 100)
    loaded = str(library.resolve()) in Path("/proc/self/maps").read_text()
    torch.save({"tensors": tensors, "gmacs": a.numel() * w.size(-1) / statistics.median(runs) / 1e9,
                "loaded": loaded}, out)


def run_child(out: Path, library: Path, preload: bool) -> dict:
    # the user's own LD_PRELOAD stays, except this library in the run without it
    others = [p for p in preloaded_libraries() if Path(p).name != library.name]
    env = dict(os.environ, LD_PRELOAD=" ".join([str(library)] * preload + others))
    try:
        subprocess.run([sys.executable, __file__, "--child", str(out), "--library", str(library)], env=env,
                       check=True)
    except subprocess.CalledProcessError as e:
        raise UserError(f"the run {'with' if preload else 'without'} {library.name} failed "
                        f"(exit code {e.returncode}); its error is above") from None
    result = torch.load(out, weights_only=True)
    if result["loaded"] != preload:
        raise UserError(f"{library} was {'not ' if preload else ''}loaded in the run "
                        f"{'with' if preload else 'without'} it; is it a library for this machine?")
    return result


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--library", type=Path, default=LIBRARY,
                   help="the library to preload (default: %(default)s)")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.library)
        return
    if not args.library.is_file():
        raise UserError(f"{args.library} does not exist; build it first with `make mkl-on-amd`")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preload in (False, True):
            results[preload] = run_child(Path(tmp) / f"{preload}.pt", args.library.resolve(), preload)
            print(f"{'with' if preload else 'without'} the library: {results[preload]['gmacs']:.1f} "
                  f"G multiply-adds/s on (6, 64, 100) x (6, 100, 656), {torch.get_num_threads()} threads")
    plain, preloaded = results[False]["tensors"], results[True]["tensors"]
    difference = max(((a - b).abs().max() / a.abs().max().clamp_min(1e-30)).item()
                     for a, b in zip(plain, preloaded))
    print(f"largest difference in outputs and gradients of a training step, relative to each "
          f"tensor's largest value: {difference:.1e}")


if __name__ == "__main__":
    main()
