"""The copying and adding tasks with RIMs: train at one length, test at longer ones.

Goyal et al. 2019 (arXiv 1909.10893), section 4.1, tables 1 and 5. Copying: remember 10
digits over a dormant span of T blanks, recall them after a marker; trained at T=50,
tested at T=200 (and, by default, 100 and 400). Adding: output the sum of the two marked
values of a sequence of length T; trained at 50, tested at 200.

    python experiments/copying/main.py --log-dir runs/copying_rim                  # RIM (6,4)
    python experiments/copying/main.py --model LSTM --log-dir runs/copying_lstm    # LSTM-600
    python experiments/copying/main.py --log-dir runs/copying_rim --loadsaved      # resume
    python experiments/copying/main.py --task adding --log-dir runs/adding_rim

Data are generated on the fly from seeded generators (no files): training batch i of seed
s is the same in every run; the validation set (at --train-len) and the test sets (one per
--test-lens) are fixed and identical for every model and seed. best.pt is picked on the
validation set at the training length only (copying: the CE over the copied digits;
adding: the MSE), never on a test length. Defaults follow the paper where it gives a
value and the authors' code (anirudh9119/RIMs, event_based/) where it is silent; each
option's help says which.

The run directory gets TensorBoard events, config.json, last.pt, best.pt, results.json
(every metric at every test length, and each RIM unit's activation rate per phase) and,
for a RIM on copying, activations.png (which units were active at each step).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from experiments.common import (
    UserError,
    check_finite_loss,
    check_seed,
    check_writable,
    cli_main,
    environment_info,
    flush_denormals,
    hold_run_dir,
    load_checkpoint,
    rng_state,
    seed_everything,
    write_json,
)
from experiments.copying.model import INITS, TaskModel, load_run
from experiments.copying.tasks import EVAL_SEED, TASKS, TEST_STREAM, TRAIN_STREAM, VAL_STREAM, Task, stream
from experiments.graphed_step import GraphedForwardBackward
from experiments.recurrent import (
    ARCHITECTURE_OPTIONS,
    MODELS,
    SAVED_DEFAULTS,
    add_model_options,
    resolve_model_options,
    upgrade_saved_args,
)
from experiments.training import (
    Checkpoints,
    check_eval_flags,
    check_resumable,
    clipped_step,
    exit_interrupted,
    read_config,
    saved_args,
    signals_held_back,
    stop_on_signals,
)

PICTURE_LEN = 200  # the paper's test length: the activation picture shows it beside --train-len


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="copying", help=f"one of {', '.join(TASKS)}")
    run = p.add_argument_group("run")
    run.add_argument("--log-dir", "--log_dir", default=None,
                     help="run directory (default: runs/<task>_<model>): TensorBoard events, "
                          "config.json, last.pt, best.pt, results.json")
    run.add_argument("--eval-only", dest="train", action="store_false",
                     help="only evaluate the run's best.pt at every test length")
    run.add_argument("--loadsaved", action="store_true", help="resume exactly from LOG_DIR/last.pt")
    run.add_argument("--save-every", "--save_every", type=int, default=0, metavar="N",
                     help="also save last.pt every N updates, so that a kill -9 loses at most N "
                          "(default 0: at every evaluation; Ctrl-C and SIGTERM always save)")
    run.add_argument("--cuda", action="store_true", help="train on the GPU (default: CPU)")
    run.add_argument("--cuda-graph", "--cuda_graph", action="store_true",
                     help="with --cuda: replay each update's forward + backward from one CUDA graph "
                          "(the RIM is launch-bound on a GPU; see experiments/graphed_step.py)")
    run.add_argument("--seed", type=int, default=0, help="seeds the init, the training data and dropout")

    data = p.add_argument_group("data")
    data.add_argument("--train-len", "--train_len", type=int, default=50,
                      help="copying: dormant span T (sequence length T+20); adding: sequence "
                           "length (paper and authors' scripts: 50)")
    data.add_argument("--test-lens", "--test_lens", type=int, nargs="+", default=[50, 100, 200, 400],
                      help="lengths tested (as --train-len; paper: 200, here with a curve around it)")
    data.add_argument("--eval-examples", "--eval_examples", type=int, default=1000,
                      help="sequences in the validation set and in each test set")
    data.add_argument("--eval-batch-size", "--eval_batch_size", type=int, default=250,
                      help="sequences per evaluation batch")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--updates", type=int, default=None,
                     help="optimiser steps (authors' code: copying 40,000 = 200 epochs x 200 "
                          "batches; adding 46,800 = 100 epochs x 30,000 / 64)")
    opt.add_argument("--eval-every", "--eval_every", type=int, default=200,
                     help="validate (and save last.pt, best.pt) every N updates")
    opt.add_argument("--batch-size", "--batch_size", type=int, default=64, help="(authors' code: 64)")
    opt.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (authors' code)")
    opt.add_argument("--clip-grad", "--clip_grad", type=float, default=None,
                     help="clip the gradient's global L2 norm to this, 0: off (authors' scripts: "
                          "copying 1.0, adding 0.1)")
    opt.add_argument("--dropout", type=float, default=None,
                     help="dropout on the encoded input and the recurrent output (authors' "
                          "scripts: copying 0.5, adding 0.2)")

    add_model_options(p, input_size=600, input_help="size of the input embedding (authors' scripts: 600)")
    p.add_argument("--init", default=None, choices=INITS,
                   help="initial weights of the encoder and decoder, and of the RIM unless a "
                        "--rim-option init=... says otherwise: pytorch (each layer's PyTorch default "
                        "scale) or authors (the authors' code's scales, see experiments/copying/model.py) "
                        "(default: the RIM variant's: authors for --variant authors)")
    args = p.parse_args(argv)
    resolve_model_options(args)
    if args.init is None:
        args.init = args.rim_options["init"]
    elif not any(option.startswith("init=") for option in args.rim_option):
        args.rim_options["init"] = args.init
    if args.task in TASKS:  # the task's defaults, so that config.json records the values used
        task = TASKS[args.task]
        args.updates = task.updates if args.updates is None else args.updates
        args.clip_grad = task.clip_grad if args.clip_grad is None else args.clip_grad
        args.dropout = task.dropout if args.dropout is None else args.dropout
    if args.log_dir is None:
        args.log_dir = f"runs/{args.task}_{args.model.lower()}"
    return args


def check_args(args: argparse.Namespace) -> Task:
    """One-line errors for options that would otherwise fail late or run silently wrong."""
    if args.task not in TASKS:
        raise UserError(f"unknown --task {args.task!r}; choose one of {', '.join(TASKS)}")
    if args.model not in MODELS:
        raise UserError(f"unknown --model {args.model!r}; choose one of {', '.join(MODELS)}")
    task = TASKS[args.task]
    for option, lengths in (("train-len", [args.train_len]), ("test-lens", args.test_lens)):
        for T in lengths:
            if T < task.min_len:
                raise UserError(f"--{option} must be >= {task.min_len} for the {task.name} task, got {T}")
    at_least = {"updates": 1, "eval_every": 1, "batch_size": 1, "eval_examples": 1, "eval_batch_size": 1,
                "save_every": 0, "input_size": 1}
    for option, low in at_least.items():
        if getattr(args, option) < low:
            raise UserError(f"--{option.replace('_', '-')} must be >= {low}, got {getattr(args, option)}")
    if not args.lr > 0:
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if not args.clip_grad >= 0:
        raise UserError(f"--clip-grad must be >= 0 (0: off), got {args.clip_grad}")
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}")
    check_seed(args.seed)
    # An evaluation set is made whole: past the machine's memory the kernel kills the run
    # without a word, so refuse it here (64 bytes a step: the tensors and their temporaries).
    longest = max(args.train_len, *args.test_lens) + 20  # a copying sequence's digits and recall
    need = 64 * args.eval_examples * longest
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > memory:
        raise UserError(f"--eval-examples {args.eval_examples} sequences of length {longest} need about "
                        f"{need / 2**30:.0f} GiB, more than this machine's {memory / 2**30:.0f} GiB; "
                        "lower --eval-examples")
    if args.cuda_graph and not args.cuda:
        raise UserError("--cuda-graph needs --cuda")
    if args.cuda and not torch.cuda.is_available():
        raise UserError("--cuda needs a CUDA device, and none is available")
    return task


# ---------------------------------------------------------------- evaluation


def eval_set(task: Task, split: int, T: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed validation (``VAL_STREAM``) or test (``TEST_STREAM``) set at length ``T``."""
    return task.batch(n, T, stream(EVAL_SEED, split, T))


@torch.no_grad()
def evaluate(model: TaskModel, task: Task, data: tuple[torch.Tensor, torch.Tensor], batch_size: int,
             device: torch.device) -> dict:
    """The task's metrics on one set and, for a RIM, each unit's activation rate per phase
    (``activation_rate``: phase -> one rate per unit)."""
    model.eval()
    inputs, targets = data
    scores, active, steps = task.scores(), {}, {}
    for i in range(0, len(inputs), batch_size):
        x, y = inputs[i:i + batch_size], targets[i:i + batch_size]
        out, masks = model(x.to(device), return_masks=True)
        scores.add(out.cpu(), y)
        if masks is None:
            continue
        masks = masks.transpose(0, 1).cpu().float()  # (B, L, units)
        for phase, where in task.phases(x).items():
            active[phase] = active.get(phase, 0) + masks[where].sum(0)
            steps[phase] = steps.get(phase, 0) + where.sum().item()
    result = scores.result()
    if active:
        result["activation_rate"] = {p: [round(r, 4) for r in (active[p] / max(steps[p], 1)).tolist()]
                                     for p in active}
    return result


def plot_activations(model: TaskModel, task: Task, lengths: list[int], device: torch.device,
                     path: Path) -> None:
    """Units x steps for the first test sequence at each length: which units were active
    over the digits, the dormant span, the marker and the recall."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    fig, axes = plt.subplots(len(lengths), 1, figsize=(10, 1.6 * len(lengths) + 0.4), squeeze=False)
    for ax, T in zip(axes[:, 0], lengths):
        inputs, _ = eval_set(task, TEST_STREAM, T, 1)
        with torch.no_grad():
            _, masks = model(inputs.to(device), return_masks=True)
        ax.imshow(masks[:, 0].T.cpu().float().numpy(), aspect="auto", cmap="Greys", interpolation="nearest",
                  vmin=0, vmax=1)
        spans = []
        for phase, where in task.phases(inputs).items():
            steps = where[0].nonzero().flatten().tolist()
            ax.axvline(steps[0] - 0.5, color="tab:red", lw=0.8)
            spans.append(f"{phase} {steps[0]}" + (f"-{steps[-1]}" if len(steps) > 1 else ""))
        ax.set_ylabel("unit")
        ax.set_yticks(range(masks.shape[-1]))
        ax.set_title(f"T = {T}, black: active; steps: {', '.join(spans)}", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- training

# what a resumed run must agree on (lr: loading the optimiser's state would bring it back)
RESUME_OPTIONS = ARCHITECTURE_OPTIONS + ("task", "seed", "train_len", "batch_size", "lr", "clip_grad",
                                         "dropout", "eval_every", "eval_examples", "init")
# runs saved before --init existed used PyTorch's initialisation
RESUME_DEFAULTS = {**SAVED_DEFAULTS, "init": "pytorch"}


def train(args: argparse.Namespace, task: Task, device: torch.device) -> None:
    log_dir = Path(args.log_dir)
    config = vars(args).copy()
    flush_denormals()
    seed_everything(args.seed)
    model = TaskModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    progress = {"step": 0, "best_val": math.inf, "best_step": -1, "loss_sum": 0.0, "losses": 0,
                "train_seconds": 0.0}
    run = Checkpoints(log_dir, {"model": model, "optimizer": optimizer}, progress, config)
    if args.loadsaved:  # reads only: a damaged file stops the run before anything is written
        check_resumable(args, upgrade_saved_args(saved_args(log_dir)), RESUME_OPTIONS, RESUME_DEFAULTS)
        run.resume(device)
    else:
        run.refuse_overwrite()
    hold_run_dir(log_dir, "--log-dir")  # the folder is this run's from here on
    if args.loadsaved:
        print(f"resumed {run.last} at update {progress['step']}")
    write_json(log_dir / "config.json", {"args": config, "environment": environment_info()})
    from tensorboardX import SummaryWriter  # only training logs; evaluation needs none
    writer = SummaryWriter(str(log_dir))

    val = eval_set(task, VAL_STREAM, args.train_len, args.eval_examples)
    step_graph = None
    if args.cuda_graph:  # every training batch has one shape: capture with any of them
        inputs, targets = task.batch(args.batch_size, args.train_len, stream(args.seed, TRAIN_STREAM, 0))
        step_graph = GraphedForwardBackward(model, task.loss, inputs.to(device), targets.to(device))
    kept = run.kept(lambda p: f"update {p['step']}")
    boundary = rng_state()  # where progress says the run stands: what an interrupt saves
    bar = tqdm(total=args.updates, initial=progress["step"], desc=f"{args.task} {args.model}")
    try:
        with stop_on_signals(), bar:
            while progress["step"] < args.updates:
                update = progress["step"] + 1
                start = time.perf_counter()
                inputs, targets = task.batch(args.batch_size, args.train_len,
                                             stream(args.seed, TRAIN_STREAM, progress["step"]))
                inputs, targets = inputs.to(device), targets.to(device)
                model.train()
                if step_graph is not None:  # forward and backward, into the graph's .grad tensors
                    _, _, loss = step_graph(inputs, targets)
                else:
                    loss = task.loss(model(inputs), targets)
                loss_value = loss.item()
                check_finite_loss({"loss": loss_value}, update, log_dir, kept)  # before the step
                if step_graph is None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                # A signal lands before the step or after the saves, never in between: a
                # checkpoint pairs these parameters with this progress and RNG state.
                with signals_held_back():
                    grad_norm = clipped_step(model.parameters(), optimizer, None, args.clip_grad, update,
                                             log_dir, kept)
                    progress.update(step=update, loss_sum=progress["loss_sum"] + loss_value,
                                    losses=progress["losses"] + 1,
                                    train_seconds=progress["train_seconds"] + time.perf_counter() - start)
                    boundary = rng_state()
                    writer.add_scalar("train/loss", loss_value, update)
                    if grad_norm is not None:
                        writer.add_scalar("train/grad_norm", grad_norm, update)
                    if update % args.eval_every == 0 or update == args.updates:
                        score = validate(model, task, val, args, device, progress, writer)
                        if score < progress["best_val"]:  # model selection at --train-len only
                            progress.update(best_val=score, best_step=update)
                            run.save("best.pt", [boundary])
                        run.save("last.pt", [boundary])
                    elif args.save_every and update % args.save_every == 0:
                        run.save("last.pt", [boundary])
                bar.update()
                bar.set_postfix(loss=f"{loss_value:.4f}")
    except KeyboardInterrupt as err:
        writer.close()
        raise exit_interrupted(err, run.save("last.pt", [boundary])) from None
    writer.close()
    write_results(log_dir, args.test_lens, args.eval_examples, args.eval_batch_size, device)


def validate(model: TaskModel, task: Task, val, args: argparse.Namespace, device: torch.device,
             progress: dict, writer) -> float:
    """Validate at --train-len and log; returns the score that selects best.pt."""
    scores = evaluate(model, task, val, args.eval_batch_size, device)
    step = progress["step"]
    writer.add_scalar("train/mean_loss", progress["loss_sum"] / max(progress["losses"], 1), step)
    writer.add_scalar("train/seconds_per_update", progress["train_seconds"] / step, step)
    for name, value in scores.items():
        if name == "activation_rate":
            for phase, rates in value.items():
                for u, rate in enumerate(rates):
                    writer.add_scalar(f"units/{phase}_activation_rate_{u}", rate, step)
        else:
            writer.add_scalar(f"val/{name}", value, step)
    shown = "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "activation_rate")
    tqdm.write(f"update {step}: train loss {progress['loss_sum'] / max(progress['losses'], 1):.4f}  "
               f"val (T={args.train_len}) {shown}")
    progress.update(loss_sum=0.0, losses=0)
    return scores[task.select]


def write_results(log_dir: Path, test_lens: list[int], eval_examples: int, eval_batch_size: int,
                  device: torch.device) -> dict:
    """Every metric of the best-validation checkpoint at every test length -> results.json,
    and for a RIM on copying the activation picture."""
    model, config, state = load_run(log_dir, "best.pt", device)
    task, progress = TASKS[config["task"]], state["progress"]
    trained = load_checkpoint(log_dir / "last.pt", required=("progress",))["progress"]  # the whole run
    start = time.perf_counter()
    test = {str(T): evaluate(model, task, eval_set(task, TEST_STREAM, T, eval_examples), eval_batch_size,
                             device) for T in sorted(set(test_lens))}
    val = evaluate(model, task, eval_set(task, VAL_STREAM, config["train_len"], eval_examples),
                   eval_batch_size, device)
    results = {"task": task.name, "model": config["model"], "seed": config["seed"],
               "train_len": config["train_len"], "best_step": progress["best_step"], "val": val,
               "test": test, "eval_examples": eval_examples, "updates": trained["step"],
               "seconds_per_update": trained["train_seconds"] / max(trained["step"], 1),
               "eval_seconds": round(time.perf_counter() - start, 2)}
    write_json(log_dir / "results.json", results)
    if config["model"] == "RIM" and task.name == "copying":
        plot_activations(model, task, sorted({config["train_len"], PICTURE_LEN}), device,
                         log_dir / "activations.png")
    print(f"best validation checkpoint (update {progress['best_step']}), {task.select} by test length: "
          + ", ".join(f"T={T} {r[task.select]:.4f}" for T, r in test.items())
          + f"  -> {log_dir / 'results.json'}")
    return results


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    task = check_args(args)
    device = torch.device("cuda" if args.cuda else "cpu")
    if args.train:
        train(args, task, device)
    else:
        config = read_config(args.log_dir)
        if config is not None and "task" not in config and "size" in config:
            raise UserError(f"{args.log_dir} holds a sequential MNIST run, not a copying or adding one; "
                            "evaluate it with experiments/mnist/main.py --eval-only")
        _, config, _ = load_run(Path(args.log_dir), "best.pt", device)  # no run, or a damaged one
        check_eval_flags(args, parse_args([]), config, ARCHITECTURE_OPTIONS + ("task",))
        hold_run_dir(args.log_dir, "--log-dir")
        check_writable(args.log_dir)  # results.json comes after the evaluation
        write_results(Path(args.log_dir), args.test_lens, args.eval_examples, args.eval_batch_size, device)


if __name__ == "__main__":
    main()
