import json
import os
import signal
import time

import numpy as np
import pytest
import torch

from experiments.common import UserError, load_checkpoint, save_checkpoint
from experiments.mnist.data import (
    load_mnist,
    read_idx,
    split_train_val,
    to_sequences,
)
from experiments.mnist.main import main
from experiments.mnist.model import SequenceClassifier
from tests.helpers import MNIST_TINY as TINY
from tests.helpers import write_idx


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
    path = tmp_path / ("x.gz" if compress else "x")
    write_idx(path, array, compress)
    assert np.array_equal(read_idx(path), array)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(Exception, match="bad magic"):
        read_idx(bad)
    array = np.zeros((4, 3), dtype=np.uint8)
    truncated = tmp_path / "truncated"
    write_idx(truncated, array, compress=False)
    truncated.write_bytes(truncated.read_bytes()[:-2])
    with pytest.raises(UserError, match="truncated"):
        read_idx(truncated)
    truncated.write_bytes(truncated.read_bytes()[:6])  # inside the header's dimensions
    with pytest.raises(UserError, match="truncated"):
        read_idx(truncated)


def test_real_mnist_files_parse(real_mnist_dir):
    splits = load_mnist(real_mnist_dir, 14, [16, 19, 24], val_size=5000, seed=0)
    assert len(splits.train) == 55000 and len(splits.val) == 5000
    for size, data in splits.tests.items():
        assert data.sequences.shape == (10000, size * size)
    assert set(splits.train.labels.unique().tolist()) == set(range(10))


@pytest.mark.parametrize("size", [2, 14, 16, 19, 24, 28])
def test_resize_shapes_and_binarisation(size):
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    seq = to_sequences(images, size)
    assert seq.shape == (5, size * size) and seq.dtype == torch.uint8
    assert set(seq.unique().tolist()) <= {0, 1}
    if size == 28:  # identity resize: binarisation is exactly a threshold at 128
        assert torch.equal(seq, (images.flatten(1) >= 128).to(torch.uint8))


def test_resize_is_nearest_neighbour_row_major():
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, :14, 14:] = 255  # top-right quadrant white
    seq = to_sequences(image, 14).view(14, 14)
    assert seq[:7, 7:].all() and not seq[7:].any() and not seq[:, :7].any()


def test_validation_split_is_disjoint_and_seeded():
    train, val = split_train_val(1000, 100, seed=3)
    assert len(val) == 100 and len(train) == 900
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.equal(split_train_val(1000, 100, seed=3)[1], val)
    assert not torch.equal(split_train_val(1000, 100, seed=4)[1], val)


def test_tiny_end_to_end_run_writes_every_file(tmp_path):
    log_dir = tmp_path / "run"
    main([*TINY, "--epochs", "1", "--log_dir", str(log_dir)])
    names = {p.name for p in log_dir.iterdir()}
    assert {"config.json", "last.pt", "best.pt", "results.json"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    results = json.loads((log_dir / "results.json").read_text())
    assert set(results["test_accuracy"]) == {"6x6", "7x7", "9x9"}
    assert all(0 <= a <= 100 for a in results["test_accuracy"].values())
    config = json.loads((log_dir / "config.json").read_text())
    assert config["args"]["seed"] == 0 and "torch" in config["environment"]
    assert isinstance(config["environment"]["cpu"], str) and config["environment"]["cpu"]
    state = load_checkpoint(log_dir / "last.pt")
    assert state["progress"]["epoch"] == 1 and state["progress"]["step"] == 6


@pytest.mark.parametrize("model", ["RIM", "LSTM"])
def test_the_trainer_learns_the_synthetic_digits(tmp_path, model):
    # Every other end-to-end test compares two runs of the same code; this one fails if the
    # trainer does not learn at all (no optimiser step, labels misaligned, ...). The label
    # sets a bar's position (conftest.synthetic_digits); chance is 10%.
    log_dir = tmp_path / "run"
    main([*TINY, "--model", model, "--train_examples", "640", "--eval_examples", "200", "--lr", "0.01",
          "--epochs", "6", "--log_dir", str(log_dir)])
    results = json.loads((log_dir / "results.json").read_text())
    assert results["test_accuracy"]["6x6"] > 30
    first, last = results["history"][0], results["history"][-1]
    assert last["val"]["6x6"] > first["val"]["6x6"]


def test_history_and_both_model_selections(tmp_path):
    log_dir = tmp_path / "run"
    main([*TINY, "--epochs", "3", "--epoch-eval-examples", "32", "--log_dir", str(log_dir)])
    results = json.loads((log_dir / "results.json").read_text())
    history = results["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert sorted(p.name for p in (log_dir / "epochs").iterdir()) == [f"epoch_00{e}.pt" for e in (1, 2, 3)]
    # the per-epoch test figures come from the first 32 digits, so they are multiples of 1/32
    assert all(abs(a * 32 / 100 - round(a * 32 / 100)) < 1e-9 for h in history for a in h["test"].values())
    assert results["best_epoch"] == max(history, key=lambda h: h["val"]["6x6"])["epoch"]
    for size in ("7x7", "9x9"):
        chosen = results["per_size_selection"][size]
        best = max(history, key=lambda h: h["val"][size])
        assert (chosen["epoch"], chosen["val_accuracy"]) == (best["epoch"], best["val"][size])
        # measured on all 64 test digits with that epoch's weights
        model = SequenceClassifier(json.loads((log_dir / "config.json").read_text())["args"])
        model.load_state_dict(load_checkpoint(log_dir / f"epochs/epoch_00{best['epoch']}.pt")["model"])
        splits = load_mnist(None, 6, [7, 9], 5000, 0, eval_examples=64)
        with torch.no_grad():
            data = splits.tests[int(size[0])]
            correct = (model.eval()(data.sequences.long()).argmax(-1) == data.labels).float().mean()
        assert chosen["test_accuracy"] == pytest.approx(100 * correct.item())


def test_the_per_size_selection_does_not_test_the_best_checkpoint_twice(tmp_path, monkeypatch):
    import experiments.mnist.main as trainer

    loaded, load_run = [], trainer.load_run
    monkeypatch.setattr(trainer, "load_run", lambda log_dir, name, device: loaded.append(name) or
                        load_run(log_dir, name, device))
    main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "run")])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    # one epoch: it is every size's selection, and its test accuracy is already measured
    assert loaded == ["best.pt"]
    per_size = {s: r["test_accuracy"] for s, r in results["per_size_selection"].items()}
    assert per_size == results["test_accuracy"]


def untimed(progress: dict) -> dict:
    """A checkpoint's progress without the epochs' training times: the one thing a resume changes."""
    return {**progress, "history": [{k: v for k, v in h.items() if k != "train_seconds"}
                                    for h in progress["history"]]}


def test_resume_reproduces_uninterrupted_run_exactly(tmp_path):
    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "straight")])
    main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "resumed")])
    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "resumed"), "--loadsaved"])
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert straight["progress"]["step"] == 12
    assert all(h["train_seconds"] > 0 for h in resumed["progress"]["history"])
    assert all(h["threads"] == torch.get_num_threads() for h in resumed["progress"]["history"])
    assert untimed(straight["progress"]) == untimed(resumed["progress"])
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    for name, tensor in straight["optimizer"]["state"][0].items():
        assert torch.equal(tensor, resumed["optimizer"]["state"][0][name]), name


def test_deterministic_flag_supports_every_op_and_changes_nothing_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # so that teardown restores the original
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "default")])
    try:
        # an op without a deterministic kernel would raise here instead of training
        main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "deterministic"), "--deterministic"])
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
    default = load_checkpoint(tmp_path / "default" / "last.pt")["model"]
    deterministic = load_checkpoint(tmp_path / "deterministic" / "last.pt")["model"]
    for name, tensor in default.items():
        assert torch.equal(tensor, deterministic[name]), name


@pytest.mark.parametrize("when,code", [("Ctrl-C before the forward pass", 130),
                                       ("Ctrl-C after the forward pass", 130),
                                       ("SIGTERM in the forward pass", 143)])
def test_resume_after_an_interrupt_mid_epoch_is_exact(tmp_path, monkeypatch, capsys, when, code):
    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "straight")])
    forward, calls = SequenceClassifier.forward, []

    def interrupted_forward(self, tokens, return_masks=False):
        calls.append(self.training)
        if calls.count(True) == 3 and when.endswith("before the forward pass"):
            raise KeyboardInterrupt
        out = forward(self, tokens, return_masks)
        if calls.count(True) == 3:  # the batch's dropout noise is drawn; no backward yet
            if when.startswith("SIGTERM"):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here, between bytecodes
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(SequenceClassifier, "forward", interrupted_forward)
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "resumed")])
    assert exit_info.value.code == code
    assert ("SIGTERM" if code == 143 else "SIGINT") in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the trainer's handler is gone
    monkeypatch.setattr(SequenceClassifier, "forward", forward)
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]
    assert saved["batch"] == 2
    assert saved["train_seconds"] > 0  # the batches' training time is kept with them
    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "resumed"), "--loadsaved"])
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert untimed(straight["progress"]) == untimed(resumed["progress"])
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


def test_an_interrupt_while_an_epoch_is_logged_records_that_epoch_once(tmp_path, monkeypatch):
    import experiments.mnist.main as trainer

    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "straight")])
    write = trainer.tqdm.write

    def interrupted_write(*args, **kwargs):  # the epoch is evaluated; its line is being printed
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.tqdm, "write", interrupted_write)
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "resumed")])
    assert exit_info.value.code == 130  # Ctrl-C's
    monkeypatch.setattr(trainer.tqdm, "write", write)
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]
    assert (saved["epoch"], saved["batch"], saved["history"]) == (0, 6, [])
    main([*TINY, "--epochs", "2", "--log_dir", str(tmp_path / "resumed"), "--loadsaved"])
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")["progress"]
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert untimed(straight) == untimed(resumed)


def test_save_every_bounds_what_a_hard_kill_loses_and_resumes_exactly(tmp_path, monkeypatch):
    main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "straight")])
    forward, calls = SequenceClassifier.forward, []

    def crashing_forward(self, tokens, return_masks=False):
        calls.append(self.training)
        if calls.count(True) == 6:  # like kill -9: no handler runs, nothing is saved on the way out
            raise RuntimeError("killed")
        return forward(self, tokens, return_masks)

    monkeypatch.setattr(SequenceClassifier, "forward", crashing_forward)
    with pytest.raises(RuntimeError, match="killed"):
        main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "resumed"), "--save-every", "4"])
    monkeypatch.setattr(SequenceClassifier, "forward", forward)
    progress = load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]
    assert (progress["epoch"], progress["batch"], progress["step"]) == (0, 4, 4)  # 6 batches per epoch
    main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "resumed"), "--loadsaved", "--save-every", "4"])
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert straight["progress"]["step"] == resumed["progress"]["step"] == 6
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name


def test_evaluate_only_rewrites_results(tmp_path):
    log_dir = tmp_path / "run"
    main([*TINY, "--epochs", "1", "--log_dir", str(log_dir)])
    before = json.loads((log_dir / "results.json").read_text())
    (log_dir / "results.json").unlink()
    main(["--eval-only", "--log-dir", str(log_dir), "--eval_examples", "64", "--test-sizes", "7", "9"])
    after = json.loads((log_dir / "results.json").read_text())
    assert after["test_accuracy"] == before["test_accuracy"]


@pytest.mark.parametrize("argv,message", [
    (["--data_dir", "/nonexistent/mnist"], "does not exist"),
    (["--model", "Transformer"], "unknown --model"),
    (["--size", "1"], "must be >= 2"),
    (["--test_sizes", "16", "0"], "must be >= 2"),
    (["--k", "5"], "k must satisfy"),
    (["--cuda_graph"], "--cuda_graph needs --cuda"),
    (["--train_examples", "-5"], "--train_examples must be >= 1"),
    (["--eval_batch_size", "-3"], "--eval_batch_size must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--loadsaved"], "no run to resume"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.parametrize("checkpoint,argv", [("best.pt", ["--no-train"]), ("last.pt", ["--loadsaved"])])
def test_corrupt_checkpoint_gives_one_line_error(tmp_path, capsys, checkpoint, argv):
    log_dir = tmp_path / "run"
    main([*TINY, "--epochs", "1", "--log_dir", str(log_dir)])
    (log_dir / checkpoint).write_bytes(b"not a checkpoint")
    capsys.readouterr()  # drop the training run's progress bars
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "2", "--log_dir", str(log_dir), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt" in err and checkpoint in err and "\n" not in err


def test_resume_refuses_what_it_cannot_honour(tmp_path, capsys):
    """A different --lr (the optimiser state would bring the old one back), --deterministic
    where the run had none (it could not continue bit for bit), a last.pt of another model,
    and one that lacks the training state: one-line errors, not tracebacks."""
    run, other = tmp_path / "run", tmp_path / "other"
    main([*TINY, "--epochs", "1", "--log_dir", str(run)])
    main([*TINY, "--epochs", "1", "--log_dir", str(other), "--hidden_size", "16"])
    state = load_checkpoint(run / "last.pt")
    cases = [(["--lr", "0.5"], None, "--lr is 0.5 but the run"),
             (["--deterministic"], None, "was made without --deterministic"),
             ([], load_checkpoint(other / "last.pt"), "does not fit the model"),
             ([], {"model": state["model"]}, "lacks optimizer, progress, rng, scaler")]
    for argv, replacement, message in cases:
        if replacement is not None:
            save_checkpoint(replacement, run / "last.pt")
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([*TINY, "--epochs", "2", "--log_dir", str(run), "--loadsaved", *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, err


def test_training_stops_on_a_non_finite_loss_and_keeps_last_pt(tmp_path, monkeypatch, capsys):
    log_dir = tmp_path / "run"
    main([*TINY, "--epochs", "1", "--log_dir", str(log_dir)])
    saved = load_checkpoint(log_dir / "last.pt")
    forward, calls = SequenceClassifier.forward, []

    def diverging_forward(self, tokens, return_masks=False):
        logits, masks = forward(self, tokens, return_masks=True)
        calls.append(self.training)
        if calls.count(True) == 2:  # the second training batch of epoch 2: update 8
            logits = logits * float("nan")
        return (logits, masks) if return_masks else logits

    monkeypatch.setattr(SequenceClassifier, "forward", diverging_forward)
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "2", "--log_dir", str(log_dir), "--loadsaved"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()  # the progress bars, then the error
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: training diverged at update 8 (loss nan)")
    assert json.loads((log_dir / "diverged.json").read_text())["update"] == 8
    kept = load_checkpoint(log_dir / "last.pt")
    assert kept["progress"] == saved["progress"]
    for name, tensor in saved["model"].items():
        assert torch.equal(tensor, kept["model"][name]), name


def test_data_dir_lookup_order(tmp_path, monkeypatch):
    from experiments.mnist import data
    shared, local = tmp_path / "shared", tmp_path / "local"
    monkeypatch.setattr(data, "SHARED_DIR", shared)
    monkeypatch.setattr(data, "LOCAL_DIR", local)
    assert data.resolve_data_dir(tmp_path / "given") == tmp_path / "given"  # --data_dir first
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
    shared.mkdir()
    assert data.resolve_data_dir(None) == tmp_path / "env"  # set: the only place looked
    monkeypatch.delenv("MNIST_DIR")
    assert data.resolve_data_dir(None) == shared
    assert data.resolve_data_dir(None, download=True) == local
    shared.rmdir()
    with pytest.raises(UserError, match="looked in") as err:
        data.resolve_data_dir(None)
    assert str(shared) in str(err.value) and str(local) in str(err.value)
    local.mkdir()
    assert data.resolve_data_dir(None) == local


def test_missing_mnist_dir_error_names_mnist_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "empty"))
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, "--epochs", "1", "--log_dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "($MNIST_DIR) does not exist" in err and "\n" not in err


def test_dashed_option_names_with_the_reference_underscore_aliases():
    from experiments.mnist.main import parse_args
    dashed = parse_args(["--log-dir", "r", "--num-units", "5", "--key-size-comm", "16", "--no-train"])
    underscored = parse_args(["--log_dir", "r", "--num_units", "5", "--key_size_comm", "16", "--eval-only"])
    assert vars(dashed) == vars(underscored)
    assert dashed.num_units == 5 and dashed.key_size_comm == 16 and not dashed.train
    assert parse_args([]).train


def test_compile_is_on_by_default_only_for_a_rim_on_the_cpu():
    from experiments.mnist.main import parse_args
    assert parse_args([]).compile and not parse_args(["--no-compile"]).compile
    assert not parse_args(["--model", "LSTM"]).compile and not parse_args(["--cuda"]).compile
