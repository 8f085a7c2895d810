"""Sequential MNIST with RIMs: train at 14x14, test at 16x16, 19x19 and 24x24.

Goyal et al. 2019 (arXiv 1909.10893), section 4.1 and table 1. A model reads a binarised
digit one pixel per step (196 steps at 14x14) and is tested on the same digits rescaled
to sizes it never saw (256 / 361 / 576 steps).

    python experiments/mnist/main.py --data_dir ../shared/data/mnist --log_dir runs/rim
    python experiments/mnist/main.py --log_dir runs/rim --loadsaved          # resume
    python experiments/mnist/main.py --log_dir runs/rim --eval-only          # evaluate best.pt
    python experiments/mnist/main.py --model LSTM --log_dir runs/lstm        # baseline
    torchrun --nproc_per_node=2 experiments/mnist/main.py --log_dir runs/rim  # 2 processes

The run directory gets TensorBoard events, config.json, last.pt, best.pt, epochs/ (the
weights after each epoch) and results.json: the test accuracy at every size of the
checkpoint with the best validation accuracy at 14x14 (ours), and, as the authors' code
selects, of the epoch with the best validation accuracy at each test size; plus the
accuracy after every epoch, measured on --epoch-eval-examples digits.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
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
    save_checkpoint,
    seed_everything,
    write_json,
)
from experiments.graphed_step import GraphedForwardBackward
from experiments.mnist import distributed as dist
from experiments.mnist.data import SequenceSet, load_mnist
from experiments.mnist.model import build_model, load_run
from experiments.recurrent import (
    ARCHITECTURE_OPTIONS,
    MODELS,
    SAVED_DEFAULTS,
    add_model_options,
    compile_with_fallback,
    resolve_model_options,
    upgrade_saved_args,
)
from experiments.training import (
    Checkpoints,
    check_checkpoints,
    check_eval_flags,
    check_resumable,
    clipped_step,
    exit_interrupted,
    read_config,
    saved_args,
    signals_held_back,
    stop_on_signals,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run = p.add_argument_group("run")
    run.add_argument("--log-dir", "--log_dir", default="runs/mnist_rim",
                     help="run directory: TensorBoard events, config.json, last.pt, best.pt, results.json")
    run.add_argument("--eval-only", "--no-train", dest="train", action="store_false",
                     help="only evaluate the run's best.pt at every size (--no-train is the old name)")
    run.add_argument("--loadsaved", action="store_true",
                     help="resume exactly from LOG_DIR/last.pt (with --train, the default)")
    run.add_argument("--save-every", "--save_every", type=int, default=0, metavar="N",
                     help="also save last.pt every N updates, so that a kill -9 loses at most N "
                          "(default 0: at the end of each epoch; Ctrl-C and SIGTERM always save)")
    run.add_argument("--cuda", action="store_true", help="train on the GPU (default: CPU)")
    run.add_argument("--seed", type=int, default=0, help="seeds the split, init, shuffling and dropout")
    run.add_argument("--num-workers", "--num_workers", type=int, default=0,
                     help="DataLoader worker processes")
    run.add_argument("--amp", action="store_true",
                     help="mixed precision on CUDA: bf16 autocast (fp16 + loss scaling without bf16)")
    run.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                     help="torch.compile the RIM step (default: on for a RIM on the CPU, where it "
                          "trains 1.1x faster; off on a GPU and for LSTM/GRU; see docs/performance.md)")
    run.add_argument("--cuda-graph", "--cuda_graph", action="store_true",
                     help="replay each training batch's forward + backward from one CUDA graph "
                          "(needs --cuda; much faster for the RIM, see docs/performance.md)")
    run.add_argument("--deterministic", action="store_true",
                     help="deterministic GPU kernels, so that reruns and resumed runs are "
                          "bit-identical on a GPU too (about 13%% slower there; see docs/reproducibility.md)")

    data = p.add_argument_group("data")
    data.add_argument("--data-dir", "--data_dir", type=Path, default=None,
                      help="folder with the four MNIST IDX files (.gz or not) (default: $MNIST_DIR if "
                           "set, else ../shared/data/mnist beside the clone where it exists, else "
                           "data/mnist in the clone)")
    data.add_argument("--download", action="store_true",
                      help="download MNIST into --data_dir (default: data/mnist in the clone) with "
                           "torchvision (needs internet)")
    data.add_argument("--size", type=int, default=14, help="training image size (paper: 14)")
    data.add_argument("--test-sizes", "--test_sizes", type=int, nargs="+", default=[16, 19, 24],
                      help="unseen test sizes (paper table 1: 16 19 24)")
    data.add_argument("--val-size", "--val_size", type=int, default=5000,
                      help="training digits held out for validation / model selection")
    data.add_argument("--train-examples", "--train_examples", type=int, default=None,
                      help="use only the first N training digits (quick runs)")
    data.add_argument("--eval-examples", "--eval_examples", type=int, default=None,
                      help="use only the first N validation and test digits (quick runs)")
    data.add_argument("--epoch-eval-examples", "--epoch_eval_examples", type=int, default=2000,
                      help="after each epoch, measure the test sizes on the first N test digits and "
                           "on the first N validation digits at those sizes (0: all); the selected "
                           "checkpoints are always measured on the whole test set")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=100, help="training epochs (paper: 100)")
    opt.add_argument("--batch-size", "--batch_size", type=int, default=64,
                     help="sequences per optimiser step, over all processes under torchrun "
                          "(reference implementation: 64)")
    opt.add_argument("--eval-batch-size", "--eval_batch_size", type=int, default=256,
                     help="sequences per evaluation batch (default: 256, faster than 64 on a CPU); "
                          "lower it if 24x24 evaluation runs out of memory")
    opt.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (reference implementation)")
    opt.add_argument("--clip-grad", "--clip_grad", type=float, default=1.0,
                     help="clip the gradient's global L2 norm to this (0: off)")

    add_model_options(p, input_size=64, input_help="size of the learned pixel embedding")
    args = p.parse_args(argv)
    resolve_model_options(args)
    if args.compile is None:  # config.json records what was used
        args.compile = args.model == "RIM" and not args.cuda
    return args


# ---------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(model, data: SequenceSet, batch_size: int, ctx: dist.Context, limit: int = 0) -> float:
    """Accuracy (%) on a split's first ``limit`` examples (0: all), batched so that 24x24
    fits in memory. Under torchrun each process takes every world_size-th example and the
    counts are summed."""
    model.eval()
    n = min(limit, len(data)) if limit else len(data)
    shard = Subset(data.dataset(), range(ctx.rank, n, ctx.world_size))
    correct = 0
    # A generator of its own: making an iterator must not draw from the global RNG, so
    # that evaluating never shifts training's dropout noise (and exact resume holds).
    for tokens, labels in DataLoader(shard, batch_size=batch_size, generator=torch.Generator()):
        logits = model(tokens.to(ctx.device).long())
        correct += (logits.argmax(-1).cpu() == labels).sum().item()
    correct, total = dist.all_sum(ctx, [correct, len(shard)])
    return 100.0 * correct / max(total, 1)


# ---------------------------------------------------------------- training


# what a resumed run must agree on (lr: loading the optimiser's state would silently
# bring back the run's learning rate)
RESUME_OPTIONS = ARCHITECTURE_OPTIONS + ("seed", "size", "batch_size", "val_size", "train_examples", "lr",
                                         "clip_grad", "eval_examples", "test_sizes")


def check_deterministic(args: argparse.Namespace, saved: dict) -> None:
    """A run made with --deterministic is only continued bit for bit with it."""
    if saved.get("deterministic", False) != args.deterministic:
        flag = "with" if saved.get("deterministic", False) else "without"
        raise UserError(f"--loadsaved: the run in {args.log_dir} was made {flag} --deterministic; "
                        f"resume it {flag} it too")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)  # in fp32 under --amp too


def autocast(args: argparse.Namespace):
    """bf16 autocast on CUDA with --amp (fp16 where the GPU has no bf16)."""
    dtype = torch.bfloat16 if args.amp and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype, enabled=args.amp)


def train(args: argparse.Namespace, ctx: dist.Context) -> None:
    log_dir = Path(args.log_dir)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.cuda_graph and ctx.enabled:
        raise UserError("--cuda_graph runs in one process; launch main.py without torchrun")
    if args.batch_size % ctx.world_size:
        raise UserError(f"--batch_size {args.batch_size} (global) must be divisible by the "
                        f"{ctx.world_size} processes")
    flush_denormals()
    seed_everything(args.seed)  # same initial parameters in every process
    splits = load_mnist(args.data_dir, args.size, args.test_sizes, args.val_size, args.seed,
                        args.train_examples, args.eval_examples, args.download)
    model = build_model(config).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp and not torch.cuda.is_bf16_supported())
    # history: one entry per epoch, {"epoch", "val": {size: %}, "test": {size: %}, "train_seconds"}
    progress = {"epoch": 0, "batch": 0, "step": 0, "best_val": -1.0, "best_epoch": -1,
                "loss_sum": 0.0, "correct": 0, "seen": 0, "train_seconds": 0.0, "history": []}
    run = Checkpoints(log_dir, {"model": model, "optimizer": optimizer, "scaler": scaler}, progress, config,
                      write=ctx.is_main)
    seed_everything(args.seed + ctx.rank)  # but different dropout noise in each process
    if args.loadsaved:  # reads only: a damaged file stops the run before anything is written
        saved = upgrade_saved_args(saved_args(log_dir))
        check_resumable(args, saved, RESUME_OPTIONS, SAVED_DEFAULTS)
        check_deterministic(args, saved)
        run.resume(ctx.device, ctx.rank, ctx.world_size)
    else:
        run.refuse_overwrite()
    if ctx.is_main:
        hold_run_dir(log_dir, "--log_dir")  # the folder is this run's from here on
        if args.loadsaved:
            print(f"resumed {run.last} at epoch {progress['epoch'] + 1}, batch {progress['batch']}")
    if args.compile and args.model == "RIM":
        def warm_up() -> None:  # a training step's compilations, forward and backward
            tokens, labels = splits.train.dataset()[: args.batch_size // ctx.world_size]
            logits, _ = model(tokens.to(ctx.device).long(), return_masks=True)
            classification_loss(logits, labels.to(ctx.device)).backward()
            model.zero_grad(set_to_none=True)

        compile_with_fallback(model.rnn, warm_up)
    net = DistributedDataParallel(model) if ctx.enabled else model
    step_graph = None
    if args.cuda_graph and len(splits.train) >= args.batch_size:  # capture needs only the shapes
        first = splits.train.dataset()[: args.batch_size]
        step_graph = GraphedForwardBackward(model, classification_loss, first[0].to(ctx.device).long(),
                                            first[1].to(ctx.device))

    writer = None
    if ctx.is_main:
        write_json(log_dir / "config.json", {"args": config, "environment": environment_info(),
                                             "world_size": ctx.world_size})
        from tensorboardX import SummaryWriter  # only training logs; evaluation needs none
        writer = SummaryWriter(str(log_dir))

    # The same seeded permutation per epoch whatever the number of processes: process r
    # takes every world_size-th index, so a global batch holds the same examples as in
    # a single process. A resumed run replays the order and skips the batches done.
    sampler = DistributedSampler(splits.train.dataset(), num_replicas=ctx.world_size, rank=ctx.rank,
                                 shuffle=True, seed=args.seed)
    loader = DataLoader(splits.train.dataset(), batch_size=args.batch_size // ctx.world_size,
                        sampler=sampler, num_workers=args.num_workers, generator=torch.Generator())
    # The RNG state where progress says the run stands (the last batch boundary): what a
    # Ctrl-C saves, so that a batch cut off half-way is redone with the same noise.
    boundary = {"rng": rng_state()}
    eval_bs = args.eval_batch_size or args.batch_size
    try:
        with stop_on_signals():
            epochs = tqdm(range(progress["epoch"], args.epochs), desc="epochs", initial=progress["epoch"],
                          total=args.epochs, position=0, disable=not ctx.is_main)
            for epoch in epochs:
                sampler.set_epoch(epoch)
                unit_rates = train_epoch(net, step_graph, loader, optimizer, scaler, run, boundary, args,
                                         ctx, writer)
                val_acc, record = log_epoch(model, splits, eval_bs, progress, unit_rates, optimizer, args,
                                            ctx, writer)
                # The epoch's record, progress, best.pt and last.pt change together: a signal
                # in between would save an epoch's record twice, or none.
                with signals_held_back():
                    progress["history"].append(record)
                    progress.update(epoch=epoch + 1, batch=0, loss_sum=0.0, correct=0, seen=0,
                                    train_seconds=0.0)
                    rng = dist.gather(ctx, rng_state())  # every process's, so that resume is exact
                    if val_acc > progress["best_val"]:  # model selection on validation at --size only
                        progress.update(best_val=val_acc, best_epoch=epoch + 1)
                        run.save("best.pt", rng)
                    if ctx.is_main:  # for the per-size selection (write_results)
                        save_checkpoint({"model": model.state_dict(), "progress": {"epoch": epoch + 1}},
                                        log_dir / epoch_checkpoint(epoch + 1))
                    run.save("last.pt", rng)
    except KeyboardInterrupt as err:
        # Under torchrun Ctrl-C reaches every process at once, so rank 0 cannot gather the
        # others' RNG: a mid-epoch resume is exact for one process, not for several.
        saved = run.save("last.pt", [boundary["rng"]] * ctx.world_size)
        if writer is not None:
            writer.close()
        raise exit_interrupted(err, saved if ctx.is_main else None) from None
    if writer is not None:
        writer.close()
    dist.barrier(ctx)
    write_results(log_dir, splits, eval_bs, ctx)


def train_epoch(net, step_graph: GraphedForwardBackward | None, loader, optimizer, scaler, run: Checkpoints,
                boundary: dict, args, ctx: dist.Context, writer) -> torch.Tensor:
    """One pass over this process's shard; updates ``run.progress`` in place, and
    ``boundary["rng"]`` with it. Returns each RIM unit's activation rate, averaged over the
    batches run here. Full batches replay ``step_graph`` when there is one."""
    net.train()
    progress = run.progress
    unit_active, batches_run = torch.zeros(args.num_units, device=ctx.device), 0
    bar = tqdm(loader, desc=f"epoch {progress['epoch'] + 1}", leave=False, position=1,
               disable=not ctx.is_main)
    # the checkpoint that a divergence leaves as it was
    kept = run.kept(lambda p: f"epoch {p['epoch']}, batch {p['batch']}")
    start = time.perf_counter()
    for i, (tokens, labels) in enumerate(bar):
        if i < progress["batch"]:
            continue
        tokens, labels = tokens.to(ctx.device).long(), labels.to(ctx.device)
        if step_graph is not None and step_graph.matches(tokens):
            logits, masks, loss = step_graph(tokens, labels)
        else:
            with autocast(args):
                logits, masks = net(tokens, return_masks=True)
                loss = classification_loss(logits, labels)
            optimizer.zero_grad(set_to_none=step_graph is None)  # the graph owns the .grad tensors
            scaler.scale(loss).backward()
        loss_value, correct = loss.item(), (logits.argmax(-1) == labels).sum().item()
        # Checked before the step, so the parameters are still the last good ones. Under DDP
        # one process's NaN loss makes every process's gradients NaN, hence the norm check.
        check_finite_loss({"loss": loss_value}, progress["step"] + 1, args.log_dir, kept, ctx.is_main)
        # A signal must land before the step or after the bookkeeping, never in between:
        # the checkpoint it writes pairs these parameters with this progress and RNG state.
        with signals_held_back():
            grad_norm = clipped_step(net.parameters(), optimizer, scaler, args.clip_grad,
                                     progress["step"] + 1, args.log_dir, kept, ctx.is_main)
            progress["batch"], progress["step"] = i + 1, progress["step"] + 1
            progress["loss_sum"] += loss_value * len(labels)
            progress["correct"] += correct
            progress["seen"] += len(labels)
            boundary["rng"] = rng_state()
            now = time.perf_counter()  # booked with the batch, so that a Ctrl-C's save keeps it
            progress["train_seconds"], start = progress["train_seconds"] + now - start, now
            if args.save_every and progress["step"] % args.save_every == 0:
                run.save("last.pt", dist.gather(ctx, boundary["rng"]))
        if masks is not None:
            unit_active += masks.float().mean((0, 1))
        batches_run += 1
        if writer is not None:
            writer.add_scalar("train/batch_loss", loss_value, progress["step"])
            if grad_norm is not None:
                writer.add_scalar("train/grad_norm", grad_norm, progress["step"])
        bar.set_postfix(loss=f"{progress['loss_sum'] / progress['seen']:.3f}")
    progress["train_seconds"] += time.perf_counter() - start
    return unit_active / max(batches_run, 1)


def log_epoch(model, splits, eval_bs: int, progress: dict, unit_rates: torch.Tensor, optimizer,
              args, ctx: dist.Context, writer) -> tuple[float, dict]:
    """Evaluate at every size and log the epoch. Returns the validation accuracy at --size
    and the epoch's record for the history."""
    loss_sum, correct, seen = dist.all_sum(ctx, [progress["loss_sum"], progress["correct"], progress["seen"]])
    rates = torch.tensor(dist.all_sum(ctx, unit_rates.tolist())) / ctx.world_size
    n = args.epoch_eval_examples
    val_acc = evaluate(model, splits.val, eval_bs, ctx)
    val_resized = {s: evaluate(model, data, eval_bs, ctx, n) for s, data in splits.val_resized.items()}
    test_acc = {s: evaluate(model, data, eval_bs, ctx, n) for s, data in splits.tests.items()}
    named = lambda accs: {f"{s}x{s}": a for s, a in accs.items()}  # noqa: E731
    # the epoch's training time, summed over resumes: what a table reports as its cost, with
    # the threads it ran on (a run given the whole machine is faster than one sharing it)
    record = {"epoch": progress["epoch"] + 1, "val": named({args.size: val_acc} | val_resized),
              "test": named(test_acc), "train_seconds": round(progress["train_seconds"], 3),
              "threads": torch.get_num_threads()}
    speed = seen / max(progress["train_seconds"], 1e-9)  # sequences/s over all processes
    if writer is None:
        return val_acc, record
    epoch = progress["epoch"] + 1
    writer.add_scalar("train/loss", loss_sum / max(seen, 1), epoch)
    writer.add_scalar("train/accuracy", 100 * correct / max(seen, 1), epoch)
    writer.add_scalar("train/sequences_per_second", speed, epoch)
    writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], epoch)
    writer.add_scalar(f"val/accuracy_{args.size}x{args.size}", val_acc, epoch)
    for s, acc in val_resized.items():
        writer.add_scalar(f"val/accuracy_{s}x{s}", acc, epoch)
    for s, acc in test_acc.items():
        writer.add_scalar(f"test/accuracy_{s}x{s}", acc, epoch)
    if args.model == "RIM":
        for u, rate in enumerate(rates.tolist()):
            writer.add_scalar(f"units/activation_rate_{u}", rate, epoch)
    tqdm.write(f"epoch {epoch}: loss {loss_sum / max(seen, 1):.4f}  {speed:.1f} seq/s  val {val_acc:.2f}%  "
               + "  ".join(f"{s}x{s} {a:.2f}%" for s, a in test_acc.items()))
    return val_acc, record


def epoch_checkpoint(epoch: int) -> str:
    """The weights after ``epoch``, relative to the run directory."""
    return f"epochs/epoch_{epoch:03d}.pt"


def per_size_selection(log_dir: Path, progress: dict, splits, batch_size: int, ctx: dist.Context,
                       measured: dict[int, dict[str, float]]) -> dict:
    """The authors' model selection: at each test size, the epoch with the best validation
    accuracy at that size (the first such epoch), measured on the whole test set at that
    size. Optimistic beside ours, which selects once, at the training size. {} for a run
    whose history does not cover every epoch (made before epochs/ was kept); ``progress``
    is last.pt's. ``measured``: {epoch: {size: test accuracy}} already measured on the whole
    test set (the best-validation checkpoint's), the same weights, so not evaluated again."""
    history = progress.get("history", [])
    if [h["epoch"] for h in history] != list(range(1, progress["epoch"] + 1)):
        return {}
    selected = {}
    for s, data in splits.tests.items():
        key = f"{s}x{s}"
        if key not in history[0]["val"]:
            continue
        best = max(history, key=lambda h: h["val"][key])  # max keeps the first of equals
        accuracy = measured.get(best["epoch"], {}).get(key)
        if accuracy is None:
            model, _, _ = load_run(log_dir, epoch_checkpoint(best["epoch"]), ctx.device)
            accuracy = evaluate(model, data, batch_size, ctx)
        selected[key] = {"epoch": best["epoch"], "val_accuracy": best["val"][key], "test_accuracy": accuracy}
    return selected


def write_results(log_dir: Path, splits, batch_size: int, ctx: dist.Context) -> dict:
    """Test accuracy of the best-validation checkpoint at every size, both model selections
    and the per-epoch history -> results.json."""
    model, config, state = load_run(log_dir, "best.pt", ctx.device)
    start = time.perf_counter()
    accuracy = {f"{s}x{s}": evaluate(model, data, batch_size, ctx) for s, data in splits.tests.items()}
    last = load_checkpoint(log_dir / "last.pt", "cpu", required=("progress",))["progress"]
    best_epoch = state["progress"]["best_epoch"]
    results = {"test_accuracy": accuracy, "best_epoch": best_epoch,
               "val_accuracy": state["progress"]["best_val"],
               "per_size_selection": per_size_selection(log_dir, last, splits, batch_size, ctx,
                                                        {best_epoch: accuracy}),
               "epochs": last["epoch"], "model": config["model"], "seed": config["seed"],
               "test_examples": len(next(iter(splits.tests.values()))),
               "epoch_eval_examples": config.get("epoch_eval_examples"), "history": last.get("history", []),
               "eval_seconds": round(time.perf_counter() - start, 2)}
    if ctx.is_main:
        write_json(log_dir / "results.json", results)
        print("test accuracy (best validation checkpoint): "
              + ", ".join(f"{s} {a:.2f}%" for s, a in accuracy.items()) + f"  -> {log_dir / 'results.json'}")
        if results["per_size_selection"]:
            print("per-size selection (the authors' rule): " + ", ".join(
                f"{s} {r['test_accuracy']:.2f}% (epoch {r['epoch']})"
                for s, r in results["per_size_selection"].items()))
    return results


def evaluate_saved(args: argparse.Namespace, ctx: dist.Context) -> None:
    log_dir = Path(args.log_dir)
    config = read_config(log_dir)
    if config is not None and "task" in config:
        raise UserError(f"{log_dir} holds a copying or adding run, not an MNIST one; evaluate it with "
                        "experiments/copying/main.py --eval-only")
    _, config, _ = load_run(log_dir, "best.pt", ctx.device)  # fails early, clearly, before the data
    check_eval_flags(args, parse_args([]), config, ARCHITECTURE_OPTIONS)
    check_checkpoints(log_dir)  # last.pt and epochs/, read after the best checkpoint's evaluation
    if ctx.is_main:
        hold_run_dir(log_dir, "--log_dir")
        check_writable(log_dir)  # results.json comes after a long evaluation
    splits = load_mnist(args.data_dir, config["size"], args.test_sizes, config["val_size"],
                        config["seed"], eval_examples=args.eval_examples, download=args.download)
    write_results(log_dir, splits, args.eval_batch_size or config["batch_size"], ctx)


def check_numbers(args: argparse.Namespace) -> None:
    """One-line errors for counts and rates that would otherwise fail late or run silently wrong."""
    at_least = {"epochs": 1, "batch_size": 1, "eval_batch_size": 1, "train_examples": 1,
                "eval_examples": 1, "val_size": 1, "num_workers": 0, "input_size": 1,
                "save_every": 0, "epoch_eval_examples": 0}
    for option, low in at_least.items():
        value = getattr(args, option)
        if value is not None and value < low:
            raise UserError(f"--{option} must be >= {low}, got {value}")
    if not args.lr > 0:
        raise UserError(f"--lr must be > 0, got {args.lr}")
    if not args.clip_grad >= 0:
        raise UserError(f"--clip_grad must be >= 0 (0: off), got {args.clip_grad}")
    check_seed(args.seed)


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.model not in MODELS:
        raise UserError(f"unknown --model {args.model!r}; choose one of {', '.join(MODELS)}")
    for size in (args.size, *args.test_sizes):
        if size < 2:
            raise UserError(f"image sizes (--size, --test_sizes) must be >= 2, got {size}")
    check_numbers(args)
    if args.cuda_graph and (not args.cuda or args.amp or args.compile):
        raise UserError("--cuda_graph needs --cuda, and works without --amp and --compile")
    if (args.cuda or args.amp) and not torch.cuda.is_available():
        raise UserError("--cuda / --amp need a CUDA device, and none is available")
    if args.deterministic:
        # cuBLAS reads this when it makes its first handle, so before any CUDA work
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    ctx = dist.init(args.cuda)
    try:
        if args.train:
            train(args, ctx)
        else:
            evaluate_saved(args, ctx)
        dist.barrier(ctx)  # gloo aborts if a process tears down while another still talks to it
    finally:
        dist.shutdown(ctx)


if __name__ == "__main__":
    main()
