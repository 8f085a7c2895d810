"""Train a PPO or A2C agent (torch-ac) with LSTM or RIM memory on a MiniGrid environment.

    python experiments/minigrid/train.py --algo ppo --env MiniGrid-Empty-5x5-v0 --model rim5x5 \\
        --use_rim --frames 80000

The model directory <storage>/<model>/ gets log.txt, log.csv, TensorBoard events and
status.pt (model, optimiser, counters, RNG state and the model's configuration). Running
the same command again resumes from status.pt; --frames is the total to reach.
"""

from __future__ import annotations

import argparse
import datetime
import time

import gymnasium as gym
import torch
from tqdm import tqdm

from experiments.common import (
    UserError,
    check_finite_loss,
    check_seed,
    cli_main,
    environment_info,
    flush_denormals,
    hold_run_dir,
    load_state,
    rng_state,
    seed_everything,
    set_rng_state,
)
from experiments.minigrid.agent import check_env_fits
from experiments.minigrid.envs import make_envs, preprocess_obss, torch_ac, worker_processes
from experiments.minigrid.model import ACModel, ModelConfig
from experiments.minigrid.storage import (
    STATUS_FILE,
    TrainingLog,
    add_storage_argument,
    load_status,
    model_dir,
    save_status,
    synthesize,
)
from experiments.recurrent import add_variant_options, rim_switches
from experiments.training import exit_interrupted, signals_held_back, stop_on_signals
from rim_core import VARIANTS

DEFAULT_FRAMES_PER_PROC = {"ppo": 128, "a2c": 8}  # torch-ac's own defaults
SHAPE_FLAGS = {"num_units": "--num-units", "k": "--k", "hidden_size": "--hidden-size",
               "comm_update": "--comm-update", "variant": "--variant"}


LOSS_LOGS = ("policy_loss", "value_loss", "entropy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    general = p.add_argument_group("general")
    general.add_argument("--algo", required=True, choices=["ppo", "a2c"], help="RL algorithm (REQUIRED)")
    general.add_argument("--env", required=True, help="MiniGrid environment id to train on (REQUIRED)")
    general.add_argument("--model", default=None,
                         help="model directory name (default: {ENV}_{ALGO}_{lstm|rim}_seed{SEED}_{TIME})")
    add_storage_argument(general)
    general.add_argument("--seed", type=int, default=1,
                         help="seeds torch, numpy, and environment i with SEED + 10000*i (default: 1)")
    general.add_argument("--procs", type=int, default=16, help="parallel environments (default: 16)")
    general.add_argument("--frames", type=int, default=10**7,
                         help="total frames to train for, counting frames of earlier runs (default: 1e7)")
    general.add_argument("--log-interval", type=int, default=1,
                         help="updates between two log rows (default: 1)")
    general.add_argument("--save-interval", type=int, default=10,
                         help="updates between two saves of status.pt; it is also saved at the end "
                              "(default: 10, 0: only at the end)")
    general.add_argument("--threads", type=int, default=1,
                         help="torch threads (default: 1; the environment workers need the other cores, "
                              "see experiments/minigrid/README.md)")
    general.add_argument("--no-progress", dest="progress", action="store_false",
                         help="no progress bar and no log lines on the terminal")

    memory = p.add_argument_group("memory (saved with the model; on resume, only to check)")
    memory.add_argument("--use_rim", "--use-rim", action="store_true",
                        help="RIM memory (rim_core.RIMCell) instead of an nn.LSTMCell")
    memory.add_argument("--num-units", type=int, default=None,
                        help="RIM units, the paper's Kt; the LSTM gets NUM_UNITS*HIDDEN_SIZE features "
                             f"(default: {ModelConfig.num_units})")
    memory.add_argument("--k", type=int, default=None,
                        help=f"RIM units active per step, the paper's Ka (default: {ModelConfig.k})")
    memory.add_argument("--hidden-size", type=int, default=None,
                        help=f"hidden features per RIM unit (default: {ModelConfig.hidden_size})")
    memory.add_argument("--comm-update", "--comm_update", default=None, choices=("gated", "residual"),
                        help="RIM communication update: gated (bounded, the authors' code) or residual "
                             f"(the paper's equation, unbounded) (default: {ModelConfig.comm_update})")
    add_variant_options(memory, None, "RIM variant: default (rim_core's step) or authors (the step of the "
                                      "authors' released code, docs/model.md), at this model's sizes "
                                      f"(default: {ModelConfig.variant})")

    algo = p.add_argument_group("algorithm (torch-ac)")
    algo.add_argument("--epochs", type=int, default=4, help="PPO epochs per update (default: 4)")
    algo.add_argument("--batch-size", type=int, default=256, help="PPO batch size in frames (default: 256)")
    algo.add_argument("--frames-per-proc", type=int, default=None,
                      help="frames per environment per update (default: 128 for PPO, 8 for A2C)")
    algo.add_argument("--recurrence", type=int, default=4,
                      help="steps the gradient is backpropagated through the memory; must divide "
                           "--frames-per-proc (default: 4)")
    algo.add_argument("--lr", type=float, default=0.001, help="learning rate (default: 0.001)")
    algo.add_argument("--discount", type=float, default=0.99, help="discount factor (default: 0.99)")
    algo.add_argument("--gae-lambda", type=float, default=0.95,
                      help="lambda of generalised advantage estimation (default: 0.95, 1: no GAE)")
    algo.add_argument("--entropy-coef", type=float, default=0.01, help="entropy bonus weight (default: 0.01)")
    algo.add_argument("--value-loss-coef", type=float, default=0.5, help="value loss weight (default: 0.5)")
    algo.add_argument("--max-grad-norm", type=float, default=0.5,
                      help="gradient norm clipping threshold (default: 0.5)")
    algo.add_argument("--clip-eps", type=float, default=0.2, help="PPO clipping epsilon (default: 0.2)")
    algo.add_argument("--optim-eps", type=float, default=1e-8,
                      help="Adam (PPO) and RMSprop (A2C) epsilon (default: 1e-8)")
    algo.add_argument("--optim-alpha", type=float, default=0.99, help="RMSprop alpha, A2C (default: 0.99)")
    args = p.parse_args(argv)
    if args.frames_per_proc is None:
        args.frames_per_proc = DEFAULT_FRAMES_PER_PROC[args.algo]
    return args


def check_args(args: argparse.Namespace) -> None:
    """One-line errors for values torch-ac would reject with a bare assert, or worse, accept."""
    for name in ("threads", "procs", "frames", "frames_per_proc", "recurrence", "epochs", "batch_size",
                 "log_interval"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("num_units", "hidden_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"{SHAPE_FLAGS[name]} must be >= 1, got {getattr(args, name)}")
    check_seed(args.seed)
    if args.save_interval < 0:
        raise UserError(f"--save-interval must be >= 0, got {args.save_interval}")
    for name in ("lr", "max_grad_norm", "clip_eps", "optim_eps"):
        if not getattr(args, name) > 0:
            raise UserError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    for name in ("entropy_coef", "value_loss_coef"):
        if not getattr(args, name) >= 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name in ("discount", "gae_lambda", "optim_alpha"):
        if not 0 <= getattr(args, name) <= 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    if args.frames_per_proc % args.recurrence:
        raise UserError(f"--recurrence {args.recurrence} must divide --frames-per-proc "
                        f"{args.frames_per_proc}: torch-ac cuts each environment's rollout into "
                        "sequences of that length")
    if args.algo == "ppo" and args.frames_per_proc < 2 * args.recurrence:
        raise UserError(f"--frames-per-proc {args.frames_per_proc} must be at least twice --recurrence "
                        f"{args.recurrence} with PPO: every other epoch torch-ac shifts the sequences by "
                        "half a recurrence and drops each environment's last one, which would leave none")
    if args.algo == "ppo" and args.batch_size % args.recurrence:
        raise UserError(f"--recurrence {args.recurrence} must divide --batch-size {args.batch_size}: "
                        "a PPO batch is made of whole sequences")


def check_resume_args(args: argparse.Namespace, status: dict) -> None:
    """On resume, flags that would change the run without saying so: the environment and
    seed it trains on, and what the optimiser's saved state would silently override."""
    if status.get("algo", args.algo) != args.algo:
        raise UserError(f"model {args.model} was trained with {status['algo']}; its optimiser state does "
                        f"not fit --algo {args.algo}")
    saved = status.get("args", {})
    for flag, name, value in (("--env", "env", status.get("env")), ("--seed", "seed", saved.get("seed"))):
        if value is not None and value != getattr(args, name):
            raise UserError(f"{flag} {getattr(args, name)} differs from model {args.model}'s {value}; "
                            f"resume with {flag} {value}, or choose another --model")
    for name in ("lr", "optim_eps") + (("optim_alpha",) if args.algo == "a2c" else ()):
        if name in saved and saved[name] != getattr(args, name):
            flag = f"--{name.replace('_', '-')}"
            raise UserError(f"{flag} is {getattr(args, name)} but model {args.model} was trained with "
                            f"{saved[name]}; resume with {flag} {saved[name]} or choose another --model")


def resolve_config(args: argparse.Namespace, saved: dict | None, env: gym.Env) -> ModelConfig:
    """The model's configuration: from the flags for a new model, from status.pt on resume
    (where flags that were given must agree with it)."""
    shape = {name: getattr(args, name) for name in SHAPE_FLAGS if getattr(args, name) is not None}
    variant = VARIANTS[args.variant or ModelConfig.variant](ModelConfig.hidden_size)["options"]
    if args.rim_option or args.variant:
        shape["rim_options"] = rim_switches(variant, args.rim_option)
    if saved is None:
        config = ModelConfig(use_rim=args.use_rim, num_actions=int(env.action_space.n),
                             image_shape=tuple(env.observation_space["image"].shape), **shape)
    else:
        config = ModelConfig.from_dict(saved)
        if args.use_rim and not config.use_rim:
            raise UserError(f"--use_rim was given but model {args.model} was created with LSTM memory; "
                            "drop --use_rim or choose another --model")
        for name, value in shape.items():
            if value != getattr(config, name):
                flag = SHAPE_FLAGS.get(name, "--rim-option")
                raise UserError(f"{flag} {value} differs from model {args.model}'s "
                                f"{getattr(config, name)}; drop the flag or choose another --model")
        check_env_fits(config, env, args.env)
    if not 1 <= config.k <= config.num_units:
        raise UserError(f"--k {config.k} must be between 1 and --num-units {config.num_units}")
    return config


def make_algo(args: argparse.Namespace, envs: list[gym.Env], model: ACModel):
    """torch-ac's PPO or A2C; it starts the environment workers and creates the optimiser."""
    common = dict(device=torch.device("cpu"), num_frames_per_proc=args.frames_per_proc,
                  discount=args.discount, lr=args.lr, gae_lambda=args.gae_lambda,
                  entropy_coef=args.entropy_coef, value_loss_coef=args.value_loss_coef,
                  max_grad_norm=args.max_grad_norm, recurrence=args.recurrence,
                  preprocess_obss=preprocess_obss)
    if args.algo == "ppo":
        return torch_ac.PPOAlgo(envs, model, adam_eps=args.optim_eps, clip_eps=args.clip_eps,
                                epochs=args.epochs, batch_size=args.batch_size, **common)
    return torch_ac.A2CAlgo(envs, model, rmsprop_alpha=args.optim_alpha, rmsprop_eps=args.optim_eps,
                            **common)


def log_row(update: int, num_frames: int, fps: float, duration: float, logs: dict) -> dict[str, float]:
    row = {"update": update, "frames": num_frames, "FPS": fps, "duration": duration}
    for key in ("return", "num_frames"):
        values = logs[f"{key}_per_episode"]
        row.update({f"{key}_{stat}": value for stat, value in synthesize(values).items()})
    for key in ("entropy", "value", "policy_loss", "value_loss", "grad_norm"):
        row[key] = float(logs[key])  # torch-ac returns floats, numpy floats or tensors
    return row


def format_row(row: dict[str, float]) -> str:
    return ("U {update} | F {frames:07d} | FPS {FPS:4.0f} | D {duration:.0f}s | "
            "R {return_mean:.2f} +- {return_std:.2f} [{return_min:.2f}, {return_max:.2f}] | "
            "len {num_frames_mean:.1f} +- {num_frames_std:.1f} "
            "[{num_frames_min:.0f}, {num_frames_max:.0f}] | "
            "H {entropy:.3f} | V {value:.3f} | pL {policy_loss:.3f} | vL {value_loss:.3f} | "
            "grad {grad_norm:.3f}").format(**row)


def training_status(args: argparse.Namespace, config: ModelConfig, model: ACModel, algo, num_frames: int,
                    update: int, duration: float) -> dict:
    """What status.pt holds: tensors and plain data only (loadable with weights_only=True)."""
    return {"model_state": model.state_dict(), "optimizer_state": algo.optimizer.state_dict(),
            "model_config": config.to_dict(), "num_frames": num_frames, "update": update,
            "duration": duration, "batch_num": getattr(algo, "batch_num", 0), "algo": args.algo,
            "env": args.env, "rng_state": rng_state(), "args": vars(args),
            "environment": environment_info()}


def run(args: argparse.Namespace) -> dict:
    """Train (or resume) and return ``{"model_dir", "num_frames", "update"}``."""
    check_args(args)
    if args.model is None:
        stamp = datetime.datetime.now().strftime("%y-%m-%d-%H-%M-%S")
        args.model = f"{args.env}_{args.algo}_{'rim' if args.use_rim else 'lstm'}_seed{args.seed}_{stamp}"
    path = model_dir(args.model, args.storage)
    status = load_status(path, resume=True) if (path / STATUS_FILE).is_file() else None
    if status is not None:
        check_resume_args(args, status)
    update = status["update"] if status else 0
    num_frames = status["num_frames"] if status else 0
    envs = make_envs(args.env, args.procs, args.seed, offset=update)
    config = resolve_config(args, status["model_config"] if status else None, envs[0])
    if num_frames >= args.frames:
        print(f"{path} is already trained for {num_frames} frames >= --frames {args.frames}; nothing to do")
        return {"model_dir": str(path), "num_frames": num_frames, "update": update}

    torch.set_num_threads(args.threads)
    flush_denormals()
    seed_everything(args.seed)
    model = ACModel(config)
    if status:
        load_state(model, status["model_state"], path / STATUS_FILE)

    hold_run_dir(path, "--model")
    log = TrainingLog(path, echo=args.progress, resume_update=update)
    log.info(f"{'resuming' if status else 'new model'} in {path} at {num_frames} frames, update {update}")
    log.info(f"args: {vars(args)}")
    log.info(f"model: {model}")
    bar = tqdm(total=args.frames, initial=num_frames, unit="frames", unit_scale=True, dynamic_ncols=True,
               disable=not args.progress)
    first_update, saved = update, None  # saved: the update of the status.pt written last
    try:
        with worker_processes(), stop_on_signals():
            algo = make_algo(args, envs, model)
            duration = 0.0
            if status:
                load_state(algo.optimizer, status["optimizer_state"], path / STATUS_FILE)
                set_rng_state(status["rng_state"])
                duration = status.get("duration", 0.0)
                # PPO shifts its sequence starts by recurrence/2 every other epoch, counting in batch_num
                algo.batch_num = status.get("batch_num", 0)

            def kept() -> str:  # the status.pt that a divergence leaves as it was
                return f"{path / STATUS_FILE} (update {status['update']})" if status else "none"

            while num_frames < args.frames:
                # Ctrl-C or SIGTERM waits for the update in progress: then the model, the
                # optimiser and the counters belong together and are saved as they are.
                with signals_held_back():
                    start = time.perf_counter()
                    try:
                        exps, collect_logs = algo.collect_experiences()
                        update_logs = algo.update_parameters(exps)
                    except (ValueError, RuntimeError):  # e.g. a Categorical of NaN logits
                        check_finite_loss({"parameter norm": parameter_norm(model)}, update + 1, path, kept)
                        raise
                    # torch-ac has stepped the optimiser already: a non-finite loss or parameter
                    # stops the run with status.pt as it was saved before
                    check_finite_loss({**{name: update_logs[name] for name in LOSS_LOGS},
                                       "parameter norm": parameter_norm(model)}, update + 1, path, kept)
                    elapsed = time.perf_counter() - start
                    duration += elapsed
                    num_frames += collect_logs["num_frames"]
                    update += 1
                    bar.update(collect_logs["num_frames"])

                    if update % args.log_interval == 0:
                        row = log_row(update, num_frames, collect_logs["num_frames"] / elapsed, duration,
                                      {**collect_logs, **update_logs})
                        log.row(row, step=num_frames)
                        log.info(format_row(row))
                    last = num_frames >= args.frames
                    if last or (args.save_interval > 0 and update % args.save_interval == 0):
                        status = training_status(args, config, model, algo, num_frames, update, duration)
                        save_status(path, status)
                        saved = update
            log.info(f"saved {path / STATUS_FILE} at {num_frames} frames, update {update}")
    except KeyboardInterrupt as err:
        if update > first_update and saved != update:  # it stops between updates: a whole state
            save_status(path, training_status(args, config, model, algo, num_frames, update, duration))
        log.info(f"interrupted at {num_frames} frames, update {update}")
        raise exit_interrupted(err, path / STATUS_FILE if update else None,
                               "run the same command to resume") from None
    finally:
        bar.close()
        log.close()
    return {"model_dir": str(path), "num_frames": num_frames, "update": update}


def parameter_norm(model: torch.nn.Module) -> float:
    """The parameters' L2 norm: NaN or infinite once a step has blown them up."""
    with torch.no_grad():
        return float(torch.linalg.vector_norm(torch.stack([p.norm() for p in model.parameters()])))


@cli_main
def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
