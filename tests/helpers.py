"""What several test modules use: small MNIST files, and the arguments of tiny MNIST,
copying and MiniGrid runs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# experiments/mnist/main.py arguments for a model and data small enough for a test
MNIST_TINY = ["--train_examples", "192", "--eval_examples", "64", "--batch_size", "32", "--input_size", "8",
              "--hidden_size", "12", "--num_units", "4", "--k", "2", "--key_size_input", "8",
              "--query_size_input", "8", "--value_size_input", "16", "--key_size_comm", "8",
              "--query_size_comm", "8", "--value_size_comm", "8", "--num_comm_heads", "2",
              "--size", "6", "--test_sizes", "7", "9", "--no-compile"]

# experiments/copying/main.py arguments for a RIM, data and a run small enough for a test
COPYING_TINY = ["--input-size", "8", "--hidden-size", "8", "--num-units", "4", "--k", "2",
                "--key-size-input", "8", "--query-size-input", "8", "--value-size-input", "8",
                "--key-size-comm", "8", "--query-size-comm", "8", "--value-size-comm", "8",
                "--num-comm-heads", "2", "--train-len", "4", "--test-lens", "4", "9",
                "--eval-examples", "16", "--batch-size", "8", "--updates", "6", "--eval-every", "3"]

MINIGRID_ENV = "MiniGrid-Empty-5x5-v0"


def minigrid_train_args(storage: Path, model: str, *extra: str, algo: str = "ppo",
                        frames: int = 32) -> list[str]:
    """experiments/minigrid/train.py arguments for a tiny agent (2 environments, 16 frames per
    update, hidden size 8), saved after every update."""
    return ["--algo", algo, "--env", MINIGRID_ENV, "--model", model, "--storage", str(storage),
            "--procs", "2", "--frames-per-proc", "8", "--recurrence", "4", "--batch-size", "8",
            "--epochs", "1", "--hidden-size", "8", "--frames", str(frames), "--save-interval", "1",
            "--no-progress", *extra]


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file of uint8 data, as MNIST's are (gzip-compressed if asked)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
