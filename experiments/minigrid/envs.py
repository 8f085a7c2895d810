"""MiniGrid environments for torch-ac: creation with clear errors, seeding, observation
preprocessing, worker cleanup, and the one guarded import of torch-ac.

Every other module of this package takes ``torch_ac`` from here, so the import guard
below always runs first.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import difflib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence

import gymnasium as gym
import minigrid  # noqa: F401  (importing it registers the MiniGrid-* and BabyAI-* ids with gymnasium)
import numpy as np
import torch

from experiments.common import UserError

# The memory's observation: MiniGrid's egocentric (view, view, 3) grid of
# (object, colour, state) indices. The mission text and the direction are not used.
IMAGE_KEY = "image"


def _import_torch_ac():
    """Import torch-ac 1.4.0 whatever multiprocessing start method is already chosen.

    ``torch_ac.utils.penv`` calls ``multiprocessing.set_start_method("fork")`` at import
    time. That call raises ``RuntimeError: context has already been set`` when a start
    method was chosen before (by the caller, a test runner, ...), leaving torch-ac half
    imported. In that case the call is skipped, and ``ParallelEnv`` starts its workers
    with the method already chosen.
    """
    if multiprocessing.get_start_method(allow_none=True) is None:
        import torch_ac
        return torch_ac
    set_start_method = multiprocessing.set_start_method
    multiprocessing.set_start_method = lambda *args, **kwargs: None
    try:
        import torch_ac
    finally:
        multiprocessing.set_start_method = set_start_method
    return torch_ac


torch_ac = _import_torch_ac()

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, however the parent dies.

    A forked worker holds copies of every pipe end its parent had, so a parent killed with
    kill -9 never closes the worker's pipe and ``recv()`` would wait forever."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux-like: worker_processes() still ends the workers on a normal exit
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request
        os._exit(1)


def _worker(conn, env) -> None:
    """torch-ac's environment worker, made to die with its trainer and to leave Ctrl-C and
    SIGTERM (a terminal and a cluster scheduler send them to the whole process group) to the
    trainer, which finishes its update and saves; ``worker_processes()`` then kills it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    _torch_ac_worker(conn, env)


# ParallelEnv looks its worker function up in its module when it starts the processes.
_torch_ac_worker = torch_ac.utils.penv.worker
torch_ac.utils.penv.worker = _worker


def check_env_id(env_id: str) -> None:
    """Raise a one-line ``UserError`` for an id gymnasium does not know, with suggestions."""
    if env_id in gym.registry:
        return
    known = [name for name in gym.registry if name.startswith(("MiniGrid-", "BabyAI-"))]
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "MiniGrid ids look like MiniGrid-Empty-5x5-v0"
    raise UserError(f"unknown environment {env_id!r}; {hint}")


def make_env(env_id: str, seed: int, **kwargs) -> gym.Env:
    """One MiniGrid environment, seeded; ``kwargs`` go to ``gym.make`` (``render_mode``, ...).

    gymnasium seeds an environment through ``reset(seed=...)``; the later seedless resets
    (torch-ac's ``ParallelEnv.reset()`` and its workers' resets at episode ends) continue
    the seeded random stream, so a run is reproducible.
    """
    check_env_id(env_id)
    env = gym.make(env_id, **kwargs)
    space = env.observation_space
    if not (isinstance(space, gym.spaces.Dict) and IMAGE_KEY in space.spaces
            and len(space[IMAGE_KEY].shape) == 3):
        env.close()
        raise UserError(f"{env_id} is not a MiniGrid environment: its observations have no "
                        f"(height, width, channels) '{IMAGE_KEY}'")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise UserError(f"{env_id} does not have discrete actions")
    env.reset(seed=seed)
    return env


def env_seeds(seed: int, procs: int, offset: int = 0) -> list[int]:
    """Seeds of the parallel environments: rl-starter-files' ``seed + 10000 * i``.

    ``offset`` (the update count when training resumes) gives a resumed run fresh
    episodes instead of replaying the first ones.
    """
    return [seed + 10000 * i + offset for i in range(procs)]


def make_envs(env_id: str, procs: int, seed: int, offset: int = 0) -> list[gym.Env]:
    return [make_env(env_id, s) for s in env_seeds(seed, procs, offset)]


def preprocess_obss(obss: Sequence[dict], device: torch.device | None = None):
    """torch-ac's ``preprocess_obss`` hook for MiniGrid's dict observations.

    torch-ac's default (``torch.tensor(obss)``) fails on a list of dicts. The model reads
    ``obs.image``, a float tensor ``(B, height, width, 3)``.
    """
    images = np.stack([obs[IMAGE_KEY] for obs in obss])
    return torch_ac.DictList(image=torch.tensor(images, dtype=torch.float, device=device))


@contextlib.contextmanager
def worker_processes() -> Iterator[None]:
    """Terminate, on leaving the block, the child processes started inside it.

    torch-ac's ``ParallelEnv`` starts one daemon process per environment but the first,
    keeps no handle on them and has no ``close()``. The daemons die with the program, but
    code that builds several of them in one program (the demo, the tests, the benchmark)
    would pile up idle workers; and once their pipes are garbage-collected they would
    die printing an ``EOFError`` traceback.
    """
    before = set(multiprocessing.active_children())
    try:
        yield
    finally:
        for process in set(multiprocessing.active_children()) - before:
            process.kill()  # SIGKILL: the workers ignore SIGTERM, and hold nothing to save
            process.join()
