"""The training-loop bookkeeping that the supervised trainers (MNIST, copying/adding) share.

A run directory holds ``config.json``, ``last.pt`` and ``best.pt``. A checkpoint carries
everything an exact resume needs: every stateful part (model, optimiser, grad scaler),
the progress counters and every process's RNG state. What happens when a run is stopped:

* Ctrl-C (SIGINT) and SIGTERM (what a cluster scheduler sends before it kills a job)
  both raise :class:`Interrupted`; the trainer saves ``last.pt`` and exits (130 / 143).
* Inside :func:`signals_held_back` such a signal waits until the block ends, so that a
  checkpoint never pairs stepped parameters with the counters of the step before.
* ``--save-every N`` bounds what a kill -9 loses to N updates.

A damaged file of a run directory (config.json, a checkpoint) is a one-line error that
names it (:func:`read_config`, ``load_checkpoint``), raised before anything is written.
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


def exit_interrupted(err: KeyboardInterrupt, saved: Path | None,
                     resume: str = "resume with --loadsaved") -> SystemExit:
    """Say what was saved and how to ``resume``, and return the exit (``raise
    exit_interrupted(...) from None``)."""
    signum = getattr(err, "signum", signal.SIGINT)
    if saved is not None:
        print(f"\n{signal.Signals(signum).name}: saved {saved}; {resume}", file=sys.stderr)
    return SystemExit(EXIT_CODES.get(signum, 130))


CONFIG_FILE = "config.json"


def damaged_config(path: Path, what: str) -> str:
    """The one-line error for a config.json that is unusable: what is wrong, and what to do."""
    return (f"{path} {what}; it is damaged or was not written by this project: restore it from a copy "
            f"(last.pt records the same arguments under 'config') or train again in a new --log-dir")


class RunConfig(dict):
    """A run's saved arguments (config.json's ``args``).

    An argument that is not there is the file's fault, not the caller's: reading it raises
    a one-line :class:`UserError` naming config.json, wherever the read happens (a model's
    constructor, an evaluation reading the run's image size), instead of a ``KeyError``
    traceback. ``get`` and ``in`` behave as for any dict.
    """

    def __init__(self, args: dict, path: Path) -> None:
        super().__init__(args)
        self.path = path

    def __missing__(self, key: str) -> Any:
        raise UserError(damaged_config(self.path, f"has no argument {key!r}"))


def read_config(log_dir: str | Path) -> RunConfig | None:
    """The arguments a run directory's config.json records, None where it has no config.json,
    and a one-line error where the file is unreadable, not JSON or holds no ``args`` object."""
    path = Path(log_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror}); check its permissions") from None
    except json.JSONDecodeError as err:  # truncated, or not JSON at all
        raise UserError(damaged_config(path, f"is not valid JSON ({err.msg} at line {err.lineno})")) from None
    except UnicodeDecodeError:  # bytes that are not text
        raise UserError(damaged_config(path, "is not valid JSON (not UTF-8 text)")) from None
    if not isinstance(data, dict) or not isinstance(data.get("args"), dict):
        raise UserError(damaged_config(path, "holds no 'args' object"))
    return RunConfig(data["args"], path)


def saved_args(log_dir: str | Path) -> dict:
    """The arguments a run directory's config.json records ({} where there is none; a
    :class:`RunConfig` otherwise)."""
    config = read_config(log_dir)
    return {} if config is None else config


def check_resumable(args: argparse.Namespace, saved: dict, options: tuple[str, ...],
                    saved_defaults: dict | None = None) -> None:
    """One-line errors when ``--loadsaved`` would continue a run under different options.

    ``saved`` is the run's config.json ``args``; ``saved_defaults`` gives the value of an
    option that runs saved before it existed used.
    """
    defaults = saved_defaults or {}
    if not saved and not isinstance(saved, RunConfig):  # an empty RunConfig: the loop names config.json
        raise UserError(f"--loadsaved: no run to resume in {args.log_dir} (no config.json); "
                        "train without --loadsaved first")
    for option in options:
        if option not in saved and option not in defaults:  # every run of this script saved it
            raise UserError(damaged_config(Path(args.log_dir) / CONFIG_FILE, f"has no argument {option!r}"))
        before = saved.get(option, defaults.get(option))
        if before != getattr(args, option):
            raise UserError(f"--loadsaved: --{option.replace('_', '-')} is {getattr(args, option)!r} but "
                            f"the run in {args.log_dir} used {before!r}; use the same value or a new "
                            "--log-dir")


def check_eval_flags(args: argparse.Namespace, defaults: argparse.Namespace, saved: dict,
                     options: tuple[str, ...]) -> None:
    """--eval-only rebuilds the model from config.json: a model flag that was given (it
    differs from its default) and contradicts the run is a mistake, not something to ignore."""
    for option in options:
        given = getattr(args, option, None)
        if given != getattr(defaults, option, None) and option in saved and saved[option] != given:
            raise UserError(f"--eval-only: --{option.replace('_', '-')} {given} contradicts the run in "
                            f"{args.log_dir}, which has {saved[option]!r}; drop the flag (the model is "
                            "rebuilt from its config.json)")


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
        """Restore every part, the progress and this process's RNG from ``last.pt``, after
        checking that the run's other checkpoints can be read."""
        state = load_checkpoint(self.last, device, required=(*self.parts, "progress", "rng"))
        # The run's other checkpoints (best.pt, MNIST's epochs/) are read when training ends:
        # a damaged one stops the run now, not hours later, and before anything is written.
        check_checkpoints(self.log_dir, skip=self.last)
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


def check_checkpoints(log_dir: str | Path, skip: Path | None = None) -> None:
    """Read every checkpoint of a run folder but ``skip`` (last.pt holds more), so that a
    damaged one ends in a one-line error naming it before hours of work depend on it."""
    for path in sorted(Path(log_dir).rglob("*.pt")):
        if path != skip:
            load_checkpoint(path, "cpu", required=("model", "progress"))


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
    (model, config, checkpoint), the model on ``map_location``. ``config`` is a
    :class:`RunConfig`: an argument config.json lacks is a one-line error where it is read."""
    log_dir = Path(log_dir)
    config = read_config(log_dir)
    if config is None:
        raise UserError(f"{log_dir} is not a run directory (no {CONFIG_FILE}); train with --log-dir first")
    state = load_checkpoint(log_dir / checkpoint, map_location, required=("model", "progress"))
    try:
        model = build(config)
    except KeyError as err:  # a builder that copied the arguments into a plain dict first
        raise UserError(damaged_config(config.path, f"has no argument {err.args[0]!r}")) from None
    load_state(model, state["model"], log_dir / checkpoint)
    return model.to(map_location), config, state
