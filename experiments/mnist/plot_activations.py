"""Which RIM units were active at each pixel step, for a few test digits, as a PNG.

    python experiments/mnist/plot_activations.py --log_dir runs/rim --size 24 --num 4

Each row shows a digit (as the model saw it) beside a units x steps heatmap of the
activation mask; the steps are in reading order (row-major pixels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from experiments.common import UserError, cli_main
from experiments.mnist.data import load_split, to_sequences
from experiments.mnist.model import load_run


def render(digits: torch.Tensor, masks: torch.Tensor, labels, predictions, size: int, path: Path) -> None:
    """digits (n, size*size) in {0,1}; masks (size*size, n, units) bool."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, units = digits.size(0), masks.size(-1)
    fig, axes = plt.subplots(n, 2, figsize=(12, 1.6 * n + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 8]})
    for i in range(n):
        axes[i, 0].imshow(digits[i].view(size, size), cmap="gray_r")
        axes[i, 0].set_title(f"label {labels[i]}, predicted {predictions[i]}", fontsize=8)
        axes[i, 0].axis("off")
        axes[i, 1].imshow(masks[:, i].T.float(), aspect="auto", cmap="Greys", interpolation="nearest")
        axes[i, 1].set_yticks(range(units))
        axes[i, 1].set_ylabel("unit")
        for row in range(1, size):  # faint marks where a new image row starts
            axes[i, 1].axvline(row * size - 0.5, color="tab:blue", lw=0.3, alpha=0.4)
    axes[-1, 1].set_xlabel(f"pixel step (row-major, {size}x{size}; blue lines: new image row)")
    fig.suptitle("RIM units active per step (black = active)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@cli_main
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log-dir", "--log_dir", required=True, help="a RIM run directory written by main.py")
    p.add_argument("--checkpoint", default="best.pt", help="best.pt or last.pt")
    p.add_argument("--data-dir", "--data_dir", type=Path, default=None,
                   help="MNIST IDX folder (default: as for main.py)")
    p.add_argument("--size", type=int, default=14, help="image size to show (e.g. 14 or an unseen 24)")
    p.add_argument("--num", type=int, default=4, help="how many test digits")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: LOG_DIR/activations_SIZE.png)")
    args = p.parse_args(argv)
    if args.size < 2 or args.num < 1:
        raise UserError("--size must be >= 2 and --num >= 1")
    model, config, _ = load_run(args.log_dir, args.checkpoint)
    if config["model"] != "RIM":
        raise UserError(f"{args.log_dir} holds a {config['model']} model; activations exist only for RIM")
    images, labels = load_split(args.data_dir, "test")
    digits = to_sequences(images[:args.num], args.size)
    model.eval()
    with torch.no_grad():
        logits, masks = model(digits.long(), return_masks=True)
    out = args.out or Path(args.log_dir) / f"activations_{args.size}.png"
    render(digits, masks, labels[:args.num].tolist(), logits.argmax(-1).tolist(), args.size, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
