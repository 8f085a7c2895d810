"""experiments/copying: the generators, the metrics and the trainer end to end."""

import json
import math
import os
import signal
import time

import pytest
import torch

from experiments.common import load_checkpoint
from experiments.copying.main import main
from experiments.copying.model import TaskModel
from experiments.copying.tasks import (
    MARKER,
    NUM_DIGITS,
    VOCAB,
    AddingScores,
    CopyingScores,
    adding_batch,
    copying_batch,
    copying_phases,
    stream,
)
from tests.helpers import COPYING_TINY as TINY


@pytest.mark.parametrize("T", [1, 5, 50, 200])
def test_copying_sequences_hold_the_digits_the_marker_and_the_recall_where_the_paper_says(T):
    inputs, targets = copying_batch(32, T, stream(0, T))
    assert inputs.shape == targets.shape == (32, T + 20) and inputs.dtype == torch.long
    digits = inputs[:, :NUM_DIGITS]
    assert ((digits >= 1) & (digits <= 8)).all()
    assert (inputs[:, T + 9] == MARKER).all()  # after the digits and T - 1 blanks
    assert (inputs[:, NUM_DIGITS:T + 9] == 0).all() and (inputs[:, T + 10:] == 0).all()
    assert (targets[:, :T + 10] == 0).all()
    assert torch.equal(targets[:, T + 10:], digits)
    phases = copying_phases(inputs)
    assert sum(p.long() for p in phases.values()).eq(1).all()  # every step in exactly one phase
    assert phases["marker"][:, T + 9].all() and phases["recall"].sum(1).eq(NUM_DIGITS).all()


def test_generators_are_reproducible_from_their_seed_and_differ_across_seeds():
    a, b, c = (copying_batch(16, 20, stream(*seed))[0] for seed in ((3, 0, 7), (3, 0, 7), (3, 0, 8)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    x, y = adding_batch(16, 20, stream(1)), adding_batch(16, 20, stream(1))
    assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])


@pytest.mark.parametrize("T", [2, 3, 50, 200])
def test_adding_sequences_mark_one_step_in_each_half_and_target_their_sum(T):
    inputs, targets = adding_batch(64, T, stream(0, T))
    assert inputs.shape == (64, T, 3) and targets.shape == (64,)
    values, first, second = inputs.unbind(-1)
    assert ((values >= 0) & (values < 1)).all()
    assert first.sum(1).eq(1).all() and second.sum(1).eq(1).all()
    assert first[:, T // 2:].sum() == 0 and second[:, :T // 2].sum() == 0
    torch.testing.assert_close(targets, (values * (first + second)).sum(1))


def test_a_perfect_copier_scores_zero_copy_ce_and_full_accuracy():
    _, targets = copying_batch(8, 30, stream(1))
    scores = CopyingScores()
    scores.add(torch.nn.functional.one_hot(targets, VOCAB).float() * 100, targets)
    result = scores.result()
    assert result["ce_copy"] < 1e-6 and result["ce_all"] < 1e-6
    assert result["digit_accuracy"] == result["sequence_accuracy"] == 100.0


@pytest.mark.parametrize("T", [50, 200])
def test_blanks_perfect_and_digits_at_chance_give_the_official_ce_of_ln8_x_10_over_T_plus_20(T):
    _, targets = copying_batch(8, T, stream(2))
    probs = torch.zeros(8, T + 20, VOCAB)
    probs[:, :T + 10, 0] = 1.0
    probs[:, T + 10:, 1:9] = 1 / 8
    scores = CopyingScores()
    scores.add(probs.clamp_min(1e-30).log(), targets)
    result = scores.result()
    assert result["ce_all"] == pytest.approx(math.log(8) * 10 / (T + 20), rel=1e-5)
    assert result["ce_copy"] == pytest.approx(math.log(8), rel=1e-5)


def test_the_adding_baseline_is_the_mse_of_always_predicting_one():
    _, targets = adding_batch(4000, 10, stream(3))
    scores = AddingScores()
    scores.add(targets, targets)
    result = scores.result()
    assert result["mse"] == 0.0
    assert result["baseline_mse"] == pytest.approx(((1 - targets) ** 2).mean().item())
    assert result["baseline_mse"] == pytest.approx(1 / 6, abs=0.01)  # Var(U + U')


@pytest.mark.parametrize("model", ["RIM", "LSTM"])
def test_the_trainer_learns_the_adding_task(tmp_path, model):
    # The other end-to-end tests compare two runs of the same code; this one fails if the
    # trainer does not learn at all. At the training length both models get well below the
    # error of always predicting the mean sum.
    main([*TINY, "--task", "adding", "--model", model, "--updates", "200", "--eval-every", "50",
          "--lr", "0.01", "--eval-examples", "200", "--log-dir", str(tmp_path / "run")])
    trained = json.loads((tmp_path / "run" / "results.json").read_text())["test"]["4"]
    assert trained["mse"] < 0.5 * trained["baseline_mse"]


@pytest.mark.parametrize("task,model", [("copying", "RIM"), ("copying", "LSTM"), ("adding", "RIM")])
def test_a_tiny_run_writes_every_file_with_metrics_at_every_test_length(tmp_path, task, model):
    log_dir = tmp_path / "run"
    main([*TINY, "--task", task, "--model", model, "--log-dir", str(log_dir)])
    names = {p.name for p in log_dir.iterdir()}
    assert {"config.json", "last.pt", "best.pt", "results.json"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert ("activations.png" in names) == (task == "copying" and model == "RIM")
    results = json.loads((log_dir / "results.json").read_text())
    assert set(results["test"]) == {"4", "9"} and results["updates"] == 6
    metrics = {"ce_all", "ce_copy", "digit_accuracy", "sequence_accuracy"} if task == "copying" else \
        {"mse", "baseline_mse"}
    for scores in (results["val"], *results["test"].values()):
        assert metrics <= set(scores) and all(math.isfinite(scores[m]) for m in metrics)
        if model == "RIM":  # each unit's rate per phase: k=2 of the 4 units are active at every step
            rates = scores["activation_rate"]
            assert all(len(r) == 4 and all(0 <= x <= 1 for x in r) for r in rates.values())
            assert all(sum(r) == pytest.approx(2, abs=1e-3) for r in rates.values())
    assert results["best_step"] in (3, 6)
    # best.pt is the checkpoint that results.json describes
    assert load_checkpoint(log_dir / "best.pt")["progress"]["best_step"] == results["best_step"]


def test_training_flushes_subnormals(tmp_path):
    torch.set_flush_denormal(False)
    try:
        main([*TINY, "--updates", "1", "--log-dir", str(tmp_path / "run")])
        assert (torch.tensor([1e-39]) * 1.0).item() == 0
    finally:
        torch.set_flush_denormal(False)


def test_evaluation_sets_are_the_same_for_every_seed(tmp_path):
    for seed in (0, 1):
        main([*TINY, "--updates", "3", "--seed", str(seed), "--log-dir", str(tmp_path / str(seed))])
    a, b = (json.loads((tmp_path / s / "results.json").read_text()) for s in "01")
    assert a["test"]["9"]["ce_all"] != b["test"]["9"]["ce_all"]  # different models...
    # ...scored on the same sets: load seed 1's model, evaluate it as seed 0's run would
    main(["--eval-only", "--log-dir", str(tmp_path / "1"), "--test-lens", "4", "9", "--eval-examples", "16"])
    again = json.loads((tmp_path / "1" / "results.json").read_text())
    assert again["test"] == b["test"]


@pytest.mark.parametrize("how,code", [("Ctrl-C", 130), ("SIGTERM", 143)])
def test_resume_after_an_interrupt_is_exact(tmp_path, monkeypatch, capsys, how, code):
    main([*TINY, "--log-dir", str(tmp_path / "straight")])
    forward, calls = TaskModel.forward, []

    def interrupted_forward(self, inputs, return_masks=False):
        out = forward(self, inputs, return_masks)
        calls.append(self.training)
        if calls.count(True) == 5:  # update 5: its dropout noise is drawn, no step yet
            if how == "SIGTERM":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(TaskModel, "forward", interrupted_forward)
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--log-dir", str(tmp_path / "resumed")])
    assert exit_info.value.code == code
    assert "saved" in capsys.readouterr().err
    monkeypatch.setattr(TaskModel, "forward", forward)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]["step"] == 4
    main([*TINY, "--log-dir", str(tmp_path / "resumed"), "--loadsaved"])
    straight, resumed = (load_checkpoint(tmp_path / d / "last.pt") for d in ("straight", "resumed"))
    for key in ("step", "best_step", "best_val"):
        assert straight["progress"][key] == resumed["progress"][key]
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    straight, resumed = (json.loads((tmp_path / d / "results.json").read_text())
                         for d in ("straight", "resumed"))
    for key in ("best_step", "val", "test"):
        assert straight[key] == resumed[key]


def test_save_every_keeps_what_a_hard_kill_would_lose_small(tmp_path, monkeypatch):
    forward, calls = TaskModel.forward, []

    def crashing_forward(self, inputs, return_masks=False):
        calls.append(self.training)
        if calls.count(True) == 3:  # like kill -9: nothing is saved on the way out
            raise RuntimeError("killed")
        return forward(self, inputs, return_masks)

    monkeypatch.setattr(TaskModel, "forward", crashing_forward)
    with pytest.raises(RuntimeError, match="killed"):
        main([*TINY, "--log-dir", str(tmp_path / "run"), "--save-every", "2"])
    assert load_checkpoint(tmp_path / "run" / "last.pt")["progress"]["step"] == 2


def test_training_stops_on_a_non_finite_loss_and_keeps_last_pt(tmp_path, monkeypatch, capsys):
    forward, calls = TaskModel.forward, []

    def diverging_forward(self, inputs, return_masks=False):
        out = forward(self, inputs, return_masks)
        calls.append(self.training)
        return out * float("nan") if calls.count(True) == 5 else out

    monkeypatch.setattr(TaskModel, "forward", diverging_forward)
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--log-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: training diverged at update 5") and "last.pt (update 3)" in err
    assert load_checkpoint(tmp_path / "run" / "last.pt")["progress"]["step"] == 3
    assert json.loads((tmp_path / "run" / "diverged.json").read_text())["update"] == 5


@pytest.mark.parametrize("argv,message", [
    (["--train-len", "0"], "--train-len must be >= 1"),
    (["--test-lens", "4", "0"], "--test-lens must be >= 1"),
    (["--task", "adding", "--train-len", "1"], "--train-len must be >= 2 for the adding task"),
    (["--k", "5"], "k must satisfy 1 <= k <= num_units (4)"),
    (["--task", "sorting"], "unknown --task 'sorting'"),
    (["--model", "Transformer"], "unknown --model"),
    (["--loadsaved"], "no run to resume"),
    (["--cuda-graph"], "--cuda-graph needs --cuda"),
])
def test_bad_options_give_one_line_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--log-dir", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task", ["copying", "adding"])
def test_cuda_graph_updates_equal_eager_ones(tmp_path, task):
    # without dropout the two draw no random numbers, so they must compute the same updates
    common = [*TINY, "--task", task, "--cuda", "--dropout", "0", "--test-lens", "4"]
    main([*common, "--log-dir", str(tmp_path / "eager")])
    main([*common, "--cuda-graph", "--log-dir", str(tmp_path / "graph")])
    eager, graph = (load_checkpoint(tmp_path / d / "last.pt") for d in ("eager", "graph"))
    assert graph["progress"]["step"] == 6
    for name, tensor in eager["model"].items():
        torch.testing.assert_close(graph["model"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_resuming_with_another_train_len_is_refused(tmp_path, capsys):
    main([*TINY, "--updates", "3", "--log-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--updates", "6", "--train-len", "5", "--log-dir", str(tmp_path / "run"), "--loadsaved"])
    assert exit_info.value.code == 2 and "--train-len is 5 but the run" in capsys.readouterr().err


def test_resuming_with_another_init_is_refused(tmp_path, capsys):
    main([*TINY, "--updates", "3", "--log-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--updates", "6", "--init", "authors", "--log-dir", str(tmp_path / "run"),
              "--loadsaved"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err  # --init authors also sets the RIM's init switch, checked first
    assert "--rim-options is {" in err and "'init': 'authors'" in err and "'init': 'pytorch'" in err


def test_the_authors_init_gives_their_weight_scales():
    from experiments.copying.main import parse_args

    def build(init: str) -> TaskModel:
        torch.manual_seed(0)
        return TaskModel(vars(parse_args(["--init", init])))

    ours, theirs = build("pytorch"), build("authors")
    cell = theirs.rnn.cells[0]
    assert theirs.encoder.weight.abs().max() <= 0.1 and ours.encoder.weight.abs().max() > 1
    assert theirs.decoder.weight.abs().max() <= 0.1 and not theirs.decoder.bias.any()
    for layer in (cell.input_key, cell.input_value, cell.input_query, cell.comm_qkv):
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.05)
    bound = 1 / math.sqrt(6 * 100)  # their 6 units are one nn.LSTMCell of 600
    for p in cell.rnn.parameters():
        assert p.abs().max() <= bound and p.abs().max() > 0.95 * bound
    # the communication output layer keeps nn.Linear's scale, U(+-1/sqrt(fan-in)), in both
    for model in (ours, theirs):
        weight = model.rnn.cells[0].comm_output.weight
        assert 0.95 / math.sqrt(weight.size(-1)) < weight.abs().max() <= 1 / math.sqrt(weight.size(-1))
