"""Shared test fixtures: synthetic MNIST, so that a clone with no data passes the tests.

Every test reads MNIST from a small synthetic set of IDX files (``MNIST_DIR`` points to
it), except the tests that take the ``real_mnist_dir`` fixture: those run on the real
files where the data lookup finds them (``$MNIST_DIR``, then ``../shared/data/mnist``,
then ``data/mnist``) and are skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.common import UserError
from experiments.mnist.data import FILES, find_idx, resolve_data_dir
from tests.helpers import write_idx


def synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 images and (n,) labels: faint noise plus a bright bar whose row
    and column depend on the label, so that a model can learn something from them."""
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 100, (n, 28, 28))
    for i, label in enumerate(labels):
        row, col = 2 + 2 * label, 4 + (label % 5) * 4
        images[i, row:row + 4, col:col + 8] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def _real_mnist() -> Path | None:
    """The real data as the scripts would find it, looked up before any test changes MNIST_DIR."""
    try:
        folder = resolve_data_dir(None)
        for names in FILES.values():
            for name in names:
                find_idx(folder, name)
    except UserError:
        return None
    return folder


REAL_MNIST = _real_mnist()


@pytest.fixture(scope="session")
def synthetic_mnist_dir(tmp_path_factory) -> Path:
    """6,000 training and 1,000 test digits in the four MNIST IDX files."""
    folder = tmp_path_factory.mktemp("synthetic_mnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6000), ("test", 1000)):
        images, labels = synthetic_digits(n, rng)
        image_file, label_file = FILES[split]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
    return folder


@pytest.fixture(autouse=True)
def _mnist_dir_is_synthetic(synthetic_mnist_dir, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DIR", str(synthetic_mnist_dir))  # subprocesses inherit it


@pytest.fixture
def real_mnist_dir() -> Path:
    if REAL_MNIST is None:
        pytest.skip("the real MNIST files are not here (set MNIST_DIR or see ../shared/data/README.md)")
    return REAL_MNIST
