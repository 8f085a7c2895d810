"""What the experiments share: checkpoints, RNG state, seeding, run metadata and CLI errors.

Kept deliberately small; anything used by only one experiment lives in its folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import io
import json
import math
import os
import platform
import random
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UserError(Exception):
    """A problem with the user's input (arguments, files): reported as one line, no traceback."""


def cli_main(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Decorate a script's ``main``: a ``UserError`` prints ``error: ...`` and exits with 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except RuntimeError as err:  # torch.OutOfMemoryError is one too
            match = re.search(r"tried to allocate ([\d.]+ ?[GMK]?i?B|\d+ bytes)", str(err))
            if match is None:
                raise
            print(f"error: not enough memory for this run (it tried to allocate {match.group(1)}); use "
                  "smaller sizes (--hidden-size, image sizes, sequence lengths) or batches", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as err:  # a log line or a TensorBoard event that could not be written
            if err.errno not in WRITE_ERRORS:
                raise
            print(f"error: {write_failure(err.filename or 'a log file', err)}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def check_seed(seed: int) -> None:
    """numpy takes seeds in [0, 2**32): anything else is a traceback deep in its seeding."""
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed must be between 0 and 2**32 - 1, got {seed}")


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite; the run stopped before it was saved."""


DIVERGED_FILE = "diverged.json"


def check_finite_loss(losses: dict[str, float], update: int, run_dir: str | os.PathLike,
                      kept: Callable[[], str], record: bool = True) -> None:
    """Stop a run whose loss is no longer finite, before its parameters are stepped or saved.

    Writes ``diverged.json`` (what went wrong and where) into ``run_dir`` so that tables
    built from the run can say it stopped, and raises :class:`TrainingDiverged`; ``kept()``
    names the last good checkpoint, which is left as it was (called only on a bad loss).
    ``record=False`` (every process but the first under torchrun) skips the file.
    """
    bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
    if not bad:
        return
    what, kept = ", ".join(f"{name} {value}" for name, value in bad.items()), kept()
    if record:  # NaN and inf as strings: JSON has no numbers for them
        shown = {name: value if math.isfinite(value) else str(value) for name, value in losses.items()}
        write_json(Path(run_dir) / DIVERGED_FILE, {"update": update, "losses": shown, "kept": kept})
    raise TrainingDiverged(f"training diverged at update {update} ({what}); stopped without saving, "
                           f"{kept} is the last good checkpoint; lower --lr or clip gradients harder")


# ---------------------------------------------------------------- checkpoints


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; done once, at import,
    os.umask(mask)      # before any thread could create a file meanwhile
    return mask


_UMASK = _read_umask()


# What a full disk, a file-size limit (ulimit -f), a read-only folder or a quota raise
WRITE_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def write_failure(path: str | os.PathLike, err: OSError) -> UserError:
    """The one-line error for a file that could not be written."""
    reason = err.strerror or type(err).__name__
    return UserError(f"could not write {path} ({reason}); free space on its disk, raise the file-size "
                     "limit or choose a writable folder (the files written before are intact)")


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write a file via a temporary file in the same folder and ``os.replace``.

    A crash or Ctrl-C mid-write leaves the previous file intact, never a truncated one; a
    write that fails (full disk, file-size limit, read-only folder) is a one-line
    :class:`UserError`.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if hasattr(os, "fchmod"):  # POSIX; mkstemp makes 0600, and others may read our results
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in WRITE_ERRORS:
            raise write_failure(path, err) from None
        raise


def check_writable(folder: str | os.PathLike) -> None:
    """Write and remove one byte in ``folder``: a one-line error now, before a long
    evaluation, instead of a lost result after it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        raise write_failure(folder, err) from None


LOCK_FILE = ".lock"
_held_locks: dict[Path, int] = {}  # folder -> open descriptor: a lock lasts as long as its process


def hold_run_dir(folder: str | os.PathLike, flag: str) -> None:
    """Make ``folder`` this process's own until it exits (however it exits): a run in another
    process pointed at it stops with a one-line error that names ``flag`` before it writes
    anything. The same process may take it again (a resume in a notebook, the tests)."""
    folder = Path(folder)
    if folder.resolve() in _held_locks:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    except OSError as err:
        raise write_failure(folder / LOCK_FILE, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise UserError(f"{folder} is in use by another run (process {holder or 'unknown'}); wait for it "
                        f"to end or choose another {flag}") from None
    pid = f"{os.getpid()}\n".encode()
    try:  # the holder's pid, for the message above; the file changes only if this succeeds
        os.pwrite(fd, pid, 0)
        os.ftruncate(fd, len(pid))
    except OSError as err:
        os.close(fd)
        raise write_failure(folder / LOCK_FILE, err) from None
    _held_locks[folder.resolve()] = fd


def save_checkpoint(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save`` atomically. ``obj`` must hold only tensors and plain Python data, so
    that :func:`load_checkpoint` can read it with ``weights_only=True``. Serialised in
    memory first: torch.save into a file reports a failed write without its reason."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                    required: tuple[str, ...] = ()) -> dict:
    """``torch.load(weights_only=True)`` with one-line errors for missing or corrupt files,
    and for a checkpoint that lacks any of the ``required`` keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train a model first or check the path")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        # The message alone can be cryptic (a text file gives just "101"): say what it means.
        reason = "unreadable, truncated, or holding objects other than tensors and plain data"
        text = str(err).strip()
        if text and "Weights only load failed" not in text:
            reason += f"; {type(err).__name__}: {text.splitlines()[0]}"
        raise UserError(f"checkpoint {path} is corrupt or not a checkpoint of this project "
                        f"({reason[:200]}); delete it or point to another run") from None
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {path} does not hold a dict; it was not written by this project")
    missing = set(required) - set(obj)
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(sorted(missing))}; it was not written "
                        "by this script")
    return obj


def load_state(target: Any, state: dict, source: str | os.PathLike) -> None:
    """``target.load_state_dict(state)`` (a model or an optimiser), with a one-line error
    naming ``source`` (where the state came from) when it does not fit."""
    try:
        target.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        reason = lines[-1] if lines[0].startswith("Error(s) in loading") else lines[0]  # skip the heading
        raise UserError(f"{source} does not fit the model it is loaded into ({reason[:200]}); "
                        "it was saved with another configuration") from None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Indented, sorted JSON, written atomically: a crash leaves the previous file, never half of one."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


# ---------------------------------------------------------------- randomness


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def flush_denormals() -> None:
    """Compute subnormal floats as zero on the CPU, for the rest of the process.

    Late in training some of a RIM's values become subnormal (below 1.2e-38 in float32),
    and x86 CPUs compute with those many times slower: a copying RIM's update at update
    2,800 took 2.29x as long as with flushing, which gave back a fresh model's speed
    (``scripts/benchmarks/benchmark_denormals.py``). No float32 result above 1e-38 changes.
    """
    torch.set_flush_denormal(True)


def rng_state() -> dict:
    """Every RNG the experiments draw from, as tensors and plain data (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].cpu().numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    torch.set_rng_state(state["torch"].cpu())  # .cpu(): the checkpoint may have been loaded onto a GPU
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ---------------------------------------------------------------- run metadata


def cpu_name() -> str:
    """The CPU's model name where Linux gives one, else the architecture, and the libraries
    LD_PRELOAD asks for: the same step's speed, and even which matrix library is faster,
    differ between CPUs, and build/libmkl_on_amd.so changes MKL's (see docs/performance.md)."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), name)
    preloaded = preloaded_libraries()
    if preloaded:
        name += ", LD_PRELOAD=" + " ".join(Path(p).name for p in preloaded)
    return name


def preloaded_libraries() -> list[str]:
    """The entries of LD_PRELOAD (the loader separates them by spaces or colons)."""
    return [p for p in re.split(r"[:\s]+", os.environ.get("LD_PRELOAD", "")) if p]


def environment_info() -> dict:
    """Versions and hardware, recorded next to every run's configuration (plain strings:
    ``torch.__version__`` is a str subclass that ``weights_only`` loading refuses)."""
    info = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    try:
        import rim_core
        info["rim_core"] = rim_core.__version__
    except ImportError:  # pragma: no cover - rim_core is always installed with the experiments
        pass
    return info
