"""Sequential-MNIST data: IDX files -> resized, binarised digits as pixel sequences.

A digit of size s x s becomes a sequence of s*s tokens in {0, 1} (row-major), which the
model embeds. Every split is held in memory as uint8 (60k x 24 x 24 is 35 MB).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from experiments.common import UserError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{path} is truncated: its header declares {ndim} dimensions but ends early")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    payload = data[4 + 4 * ndim:]
    if len(payload) != expected:
        raise UserError(f"{path} is truncated or corrupt: header says {dims}, "
                        f"{len(payload)} bytes of data instead of {expected}")
    return np.frombuffer(payload, dtype=dtype).reshape(dims)


ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = ROOT.parent / "shared" / "data" / "mnist"  # a team's data folder beside the clone
LOCAL_DIR = ROOT / "data" / "mnist"  # where --download puts it


def resolve_data_dir(data_dir: str | Path | None, download: bool = False) -> Path:
    """Where MNIST is read from: ``data_dir`` if given; else ``$MNIST_DIR`` if set (then the
    only place looked); else the shared folder beside the clone where it exists; else
    ``data/mnist`` in the clone, which ``--download`` fills. One-line error naming every
    place looked when none holds the data."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"])
    if download:
        return LOCAL_DIR
    for folder in (SHARED_DIR, LOCAL_DIR):
        if folder.is_dir():
            return folder
    raise UserError(f"no MNIST data found: looked in $MNIST_DIR (not set), {SHARED_DIR} and {LOCAL_DIR}; "
                    "pass --data_dir with the four IDX files, set MNIST_DIR, or --download")


def find_idx(data_dir: Path, name: str) -> Path:
    """Locate ``name`` or ``name.gz`` in ``data_dir`` or torchvision's ``data_dir/MNIST/raw``."""
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise UserError(f"MNIST file {name}[.gz] not found in {data_dir} (nor in {data_dir}/MNIST/raw); "
                    "pass --data_dir with the four IDX files, or --download")


def load_split(data_dir: str | Path | None, split: str,
               download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of the ``train`` or ``test`` split
    (``data_dir=None``: see :func:`resolve_data_dir`)."""
    data_dir = resolve_data_dir(data_dir, download)
    if download:
        from torchvision.datasets import MNIST  # only users with internet get here
        MNIST(str(data_dir), train=split == "train", download=True)
    if not data_dir.is_dir():
        source = " ($MNIST_DIR)" if os.environ.get("MNIST_DIR") == str(data_dir) else ""
        raise UserError(f"data directory {data_dir}{source} does not exist; pass --data_dir with the "
                        "MNIST IDX files, or --download")
    image_file, label_file = FILES[split]
    images = read_idx(find_idx(data_dir, image_file))
    labels = read_idx(find_idx(data_dir, label_file))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"MNIST {split} files in {data_dir} disagree: images {images.shape}, "
                        f"labels {labels.shape}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_sequences(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (n, 28, 28) uint8 digits to size x size by nearest neighbour, binarise at
    half intensity, flatten row-major: (n, size*size) uint8 in {0, 1}."""
    if size < 2:
        raise UserError(f"image size must be >= 2, got {size}")
    resized = F.interpolate(images.unsqueeze(1).float(), size=(size, size), mode="nearest")
    return (resized.flatten(1) >= 128).to(torch.uint8)


def split_train_val(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint train / validation indices of the 60k training digits, from a seeded permutation."""
    if not 0 < val_size < n:
        raise UserError(f"--val_size must be between 1 and {n - 1}, got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


@dataclass
class SequenceSet:
    """Pixel sequences (n, L) uint8 and labels (n,) of one split at one image size."""

    sequences: torch.Tensor
    labels: torch.Tensor
    size: int

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.sequences, self.labels)


@dataclass
class MnistSplits:
    train: SequenceSet
    val: SequenceSet  # at the training size: model selection
    val_resized: dict[int, SequenceSet]  # test size -> the same validation digits at that size
    tests: dict[int, SequenceSet]  # image size -> test set


def load_mnist(data_dir: str | Path | None, size: int, test_sizes: list[int], val_size: int, seed: int,
               train_examples: int | None = None, eval_examples: int | None = None,
               download: bool = False) -> MnistSplits:
    """Training and validation digits at ``size``; the validation digits at every test size
    too; the test digits at ``size`` and every test size.

    ``train_examples`` / ``eval_examples`` keep only the first N training / validation and
    test digits, for quick runs.
    """
    for s in [size, *test_sizes]:
        if s < 2:
            raise UserError(f"image sizes must be >= 2, got {s}")
    train_images, train_labels = load_split(data_dir, "train", download)
    test_images, test_labels = load_split(data_dir, "test", download)
    train_idx, val_idx = split_train_val(len(train_images), val_size, seed)
    train_idx, val_idx = train_idx[:train_examples], val_idx[:eval_examples]
    test_images, test_labels = test_images[:eval_examples], test_labels[:eval_examples]
    val_images, val_labels = train_images[val_idx], train_labels[val_idx]
    return MnistSplits(
        train=SequenceSet(to_sequences(train_images[train_idx], size), train_labels[train_idx], size),
        val=SequenceSet(to_sequences(val_images, size), val_labels, size),
        val_resized={s: SequenceSet(to_sequences(val_images, s), val_labels, s)
                     for s in dict.fromkeys(test_sizes) if s != size},
        tests={s: SequenceSet(to_sequences(test_images, s), test_labels, s)
               for s in dict.fromkeys([size, *test_sizes])},
    )
