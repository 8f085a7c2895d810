"""Compare two sequential-MNIST runs: their final parameters (last.pt) and test accuracy.

For example a resumed run against an uninterrupted one (the resume figures in docs/reproducibility.md):

    python scripts/reproduction/compare_runs.py runs/straight runs/resumed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.common import UserError, cli_main, load_checkpoint


def compare_runs(a: Path, b: Path) -> dict:
    """Largest absolute difference over all floating-point parameters, and both runs'
    test accuracy (results.json, when the runs finished)."""
    model_a, model_b = (load_checkpoint(Path(d) / "last.pt")["model"] for d in (a, b))
    if model_a.keys() != model_b.keys() or any(model_a[k].shape != model_b[k].shape for k in model_a):
        raise UserError(f"{a} and {b} hold different models; compare runs of the same architecture")
    difference = max((model_a[k].double() - model_b[k].double()).abs().max().item()
                     for k in model_a if model_a[k].is_floating_point())
    accuracy = [json.loads(p.read_text())["test_accuracy"] if p.is_file() else None
                for p in (Path(a) / "results.json", Path(b) / "results.json")]
    return {"max_parameter_difference": difference, "test_accuracy": accuracy}


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    args = p.parse_args()
    result = compare_runs(args.run_a, args.run_b)
    print(f"max |parameter difference|: {result['max_parameter_difference']:.3g}")
    for run, accuracy in zip((args.run_a, args.run_b), result["test_accuracy"]):
        print(f"{run}: test accuracy {accuracy}")


if __name__ == "__main__":
    main()
