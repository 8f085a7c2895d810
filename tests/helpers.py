"""What several test modules use: small MNIST files and a tiny MNIST configuration."""

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
              "--size", "6", "--test_sizes", "7", "9"]


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file of uint8 data, as MNIST's are (gzip-compressed if asked)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
