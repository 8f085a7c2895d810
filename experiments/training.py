"""The training-loop bookkeeping that the supervised trainers (MNIST, copying/adding) share.

A run directory holds ``config.json``, ``last.pt`` and ``best.pt``. A checkpoint carries
everything an exact resume needs: every stateful part (model, optimiser, grad scaler),
the progress counters and every process's RNG state. What happens when a run is stopped:

* Ctrl-C (SIGINT) and SIGTERM (what a cluster scheduler sends before it kills a job)
  both raise :class:`Interrupted`; the trainer saves ``last.pt`` and exits (130 / 143).
* Inside :func:`signals_held_back` such a signal waits until the block ends, so that a
  checkpoint never pairs stepped parameters with the counters of the step before.
* ``--save-every N`` bounds what a kill -9 loses to N updates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch

from experiments.common import (
    UserError,
    check_finite_loss,
    load_checkpoint,
    load_state,
    save_checkpoint,
    set_rng_state,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached the training loop; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # only it may set handlers


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Around a training loop: SIGTERM stops it the way Ctrl-C does (raises :class:`Interrupted`)."""
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_held_back() -> Iterator[None]:
    """Delay a SIGINT or SIGTERM that arrives inside the block to its end."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        raise Interrupted(pending[0])


def exit_interrupted(err: KeyboardInterrupt, saved: Path | None) -> SystemExit:
    """Say what was saved and return the exit (``raise exit_interrupted(...) from None``)."""
    signum = getattr(err, "signum", signal.SIGINT)
    if saved is not None:
        print(f"\n{signal.Signals(signum).name}: saved {saved}; resume with --loadsaved", file=sys.stderr)
    return SystemExit(EXIT_CODES.get(signum, 130))


def saved_args(log_dir: str | Path) -> dict:
    """The arguments a run directory's config.json records ({} where there is none)."""
    path = Path(log_dir) / "config.json"
    return json.loads(path.read_text())["args"] if path.is_file() else {}


def check_resumable(args: argparse.Namespace, saved: dict, options: tuple[str, ...],
                    saved_defaults: dict | None = None) -> None:
    """One-line errors when ``--loadsaved`` would continue a run under different options.

    ``saved`` is the run's config.json ``args``; ``saved_defaults`` gives the value of an
    option that runs saved before it existed used.
    """
    defaults = saved_defaults or {}
    if not saved:
        raise UserError(f"--loadsaved: no run to resume in {args.log_dir} (no config.json); "
                        "train without --loadsaved first")
    for option in options:
        before = saved.get(option, defaults.get(option))
        if before != getattr(args, option):
            raise UserError(f"--loadsaved: --{option.replace('_', '-')} is {getattr(args, option)!r} but "
                            f"the run in {args.log_dir} used {before!r}; use the same value or a new "
                            "--log-dir")


class Stateful(Protocol):
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> Any: ...


class Checkpoints:
    """The checkpoints of one run directory.

    ``parts`` are saved and restored by name (``{"model": m, "optimizer": o, ...}``);
    ``progress`` (plain counters) is updated in place on resume. Only the writer process
    (``write=True``; rank 0 under torchrun) writes files.
    """

    def __init__(self, log_dir: str | Path, parts: dict[str, Stateful], progress: dict, config: dict,
                 write: bool = True) -> None:
        self.log_dir, self.parts, self.progress, self.config = Path(log_dir), parts, progress, config
        self.write = write
        self.saved: dict | None = None  # the progress that last.pt holds, once known

    @property
    def last(self) -> Path:
        return self.log_dir / "last.pt"

    def save(self, name: str, rng: list[dict]) -> Path:
        """Write ``log_dir/name`` atomically; ``rng`` holds every process's RNG state."""
        path = self.log_dir / name
        if self.write:
            state = {key: part.state_dict() for key, part in self.parts.items()}
            save_checkpoint({**state, "rng": rng, "progress": dict(self.progress), "config": self.config},
                            path)
        if name == "last.pt":
            self.saved = dict(self.progress)
        return path

    def refuse_overwrite(self) -> None:
        if self.last.exists():
            raise UserError(f"{self.log_dir} already holds a run; resume it with --loadsaved or pick a "
                            "new --log-dir")

    def resume(self, device: torch.device | str, rank: int = 0, world_size: int = 1) -> None:
        """Restore every part, the progress and this process's RNG from ``last.pt``."""
        state = load_checkpoint(self.last, device, required=(*self.parts, "progress", "rng"))
        if len(state["rng"]) != world_size:
            raise UserError(f"--loadsaved: {self.last} was written by {len(state['rng'])} process(es); "
                            f"resume it with as many (got {world_size})")
        for key, part in self.parts.items():
            load_state(part, state[key], self.last)
        self.progress.update(state["progress"])
        self.saved = dict(self.progress)
        set_rng_state(state["rng"][rank])

    def kept(self, where: Callable[[dict], str]) -> Callable[[], str]:
        """For :func:`check_finite_loss`: names ``last.pt`` and where it stands
        (``where(its progress)``), or says there is none yet."""
        return lambda: f"{self.last} ({where(self.saved)})" if self.saved is not None else "none"


def clipped_step(params: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None, clip: float, update: int, log_dir: str | Path,
                 kept: Callable[[], str], record: bool = True) -> float | None:
    """Unscale (with a ``scaler``), clip the gradients' global L2 norm to ``clip`` (0: off), step.

    Returns the norm before clipping (None without clipping). A non-finite norm stops the
    run (:func:`check_finite_loss`) before the step, unless fp16 loss scaling is on: there
    an inf norm is expected now and then, and the scaler skips that step by itself.
    """
    grad_norm = None
    if clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip).item()
        if scaler is None or not scaler.is_enabled():
            check_finite_loss({"grad_norm": grad_norm}, update, log_dir, kept, record)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return grad_norm


def load_run(log_dir: str | Path, build: Callable[[dict], torch.nn.Module], checkpoint: str = "best.pt",
             map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict, dict]:
    """Rebuild a trained model from a run directory with ``build(config)``: returns
    (model, config, checkpoint), the model on ``map_location``."""
    log_dir = Path(log_dir)
    config_path = log_dir / "config.json"
    if not config_path.is_file():
        raise UserError(f"{log_dir} is not a run directory (no config.json); train with --log-dir first")
    config = json.loads(config_path.read_text())["args"]
    state = load_checkpoint(log_dir / checkpoint, map_location, required=("model", "progress"))
    model = build(config)
    load_state(model, state["model"], log_dir / checkpoint)
    return model.to(map_location), config, state
