"""The model directory ``<storage>/<model>/``: paths, ``status.pt``, and the training logs
(``log.txt``, ``log.csv``, TensorBoard events)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import tensorboardX
from tqdm import tqdm

from experiments.common import UserError, atomic_write_bytes, load_checkpoint, save_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
STATUS_FILE = "status.pt"


def storage_root(override: str | os.PathLike | None = None) -> Path:
    """``--storage`` if given, else ``$PROJECT_STORAGE`` (rl-starter-files' variable), else
    ``<repo>/storage``: the same folder whether a script runs from the root or its folder
    (``./storage`` when the package is installed outside a checkout)."""
    if override is not None:
        return Path(override)
    if "PROJECT_STORAGE" in os.environ:
        return Path(os.environ["PROJECT_STORAGE"])
    in_checkout = (REPO_ROOT / "setup.py").is_file()
    return (REPO_ROOT if in_checkout else Path.cwd()) / "storage"


def add_storage_argument(parser) -> None:
    """The ``--storage`` option every MiniGrid script shares; :func:`storage_root` reads it."""
    parser.add_argument("--storage", default=None,
                        help="folder holding the model directories (default: $PROJECT_STORAGE, "
                             "else storage/ at the repository root)")


def model_dir(name: str, storage: str | os.PathLike | None = None) -> Path:
    if not name or Path(name).name != name or name in (".", ".."):
        raise UserError(f"model name {name!r} must be a plain folder name (no '/')")
    return storage_root(storage) / name


def existing_model_dir(name: str, storage: str | os.PathLike | None = None) -> Path:
    """The directory of a trained model, or a one-line error."""
    path = model_dir(name, storage)
    if not (path / STATUS_FILE).is_file():
        what = "has no " + STATUS_FILE if path.is_dir() else "does not exist"
        raise UserError(f"model directory {path} {what}; train it first with "
                        f"train.py --model {name} (or pass the right --storage)")
    return path


def save_status(path: Path, status: dict) -> None:
    """Atomic: an interrupted save leaves the previous ``status.pt`` intact."""
    save_checkpoint(status, path / STATUS_FILE)


def load_status(path: Path, resume: bool = False) -> dict:
    """``status.pt``, with a one-line error where it is damaged or lacks what the model needs
    (and, to ``resume`` training, what the optimiser and the RNGs need)."""
    required = ("model_state", "model_config", "num_frames", "update")
    if resume:
        required += ("optimizer_state", "rng_state")
    return load_checkpoint(path / STATUS_FILE, required=required)


def synthesize(values) -> dict[str, float]:
    """Mean, std, min and max of a list of per-episode numbers."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()),
            "min": float(array.min()), "max": float(array.max())}


class TrainingLog:
    """Writes each update's row to ``log.csv`` and TensorBoard, and messages to ``log.txt``
    and the terminal (through ``tqdm.write``, so the progress bar stays intact).

    Resuming appends to the existing files. ``log.csv`` first loses the rows after
    ``resume_update``, the update ``status.pt`` was saved at: the resumed run redoes those.
    """

    def __init__(self, path: Path, echo: bool = True, resume_update: int = 0) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        csv_path = path / "log.csv"
        if csv_path.is_file():  # first: a damaged log.csv stops the run before any file is opened
            _drop_rows_after(csv_path, resume_update)
        self._txt = open(path / "log.txt", "a", encoding="utf-8")
        self._write_header = not csv_path.is_file() or csv_path.stat().st_size == 0
        self._csv_file = open(csv_path, "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._tb = tensorboardX.SummaryWriter(str(path))

    def info(self, message: str) -> None:
        self._txt.write(message + "\n")
        self._txt.flush()
        if self.echo:
            tqdm.write(message)

    def row(self, row: dict[str, float], step: int) -> None:
        if self._write_header:
            self._csv.writerow(row.keys())
            self._write_header = False
        self._csv.writerow(row.values())
        self._csv_file.flush()
        for key, value in row.items():
            self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._tb.close()
        self._csv_file.close()
        self._txt.close()


def _drop_rows_after(csv_path: Path, update: int) -> None:
    """Keep the header and the complete rows up to ``update``; a row cut off by a crash goes too."""
    try:
        text = csv_path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)
        raise UserError(f"{csv_path} is not a table written by train.py ({reason}); move it away to "
                        "resume (the resumed run starts a new one)") from None
    if not rows:
        return
    if "update" not in rows[0]:
        raise UserError(f"{csv_path} has no 'update' column; it was not written by train.py "
                        "(move it away to resume)")
    column, width = rows[0].index("update"), len(rows[0])

    def keep(row: list[str]) -> bool:
        try:
            return len(row) == width and int(float(row[column])) <= update
        except ValueError:
            return False

    kept = [rows[0]] + [r for r in rows[1:] if keep(r)]
    if len(kept) < len(rows) or not text.endswith("\n"):
        def write(f) -> None:
            out = io.StringIO()
            csv.writer(out).writerows(kept)
            f.write(out.getvalue().encode("utf-8"))
        atomic_write_bytes(csv_path, write)
