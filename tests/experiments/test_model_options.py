"""The model spec: --variant and --rim-option travel from the command line to config.json to
the model, and runs saved before they existed still resume."""

import dataclasses
import json
from pathlib import Path

import pytest

from experiments.copying.main import main as copying_main
from experiments.copying.main import parse_args as copying_args
from experiments.copying.model import load_run
from experiments.mnist.main import main as mnist_main
from rim_core import RIMOptions
from rim_core.authors import AUTHORS_OPTIONS
from tests.helpers import COPYING_TINY, MNIST_TINY


def test_the_variant_fills_every_size_left_unset_and_config_records_it(tmp_path):
    run = tmp_path / "run"
    # COPYING_TINY sets every size explicitly: they override the preset, its switches stay
    copying_main([*COPYING_TINY, "--variant", "authors", "--updates", "2", "--log-dir", str(run)])
    config = json.loads((run / "config.json").read_text())["args"]
    assert config["variant"] == "authors" and config["rim_options"] == dataclasses.asdict(AUTHORS_OPTIONS)
    assert config["init"] == "authors"  # the encoder/decoder follow the RIM's init
    model, _, _ = load_run(run, "last.pt")
    cell = model.rnn.cells[0]
    assert cell.variant == "authors" and cell.options == AUTHORS_OPTIONS
    assert cell.comm_output.weight.size(0) == 1  # one output layer shared by all units


def test_a_switch_changes_one_field_of_the_variant():
    args = copying_args(["--variant", "authors", "--rim-option", "inactive_offer=kept",
                         "--rim-option", "detach_inactive_offer=false"])
    assert args.rim_options == {**dataclasses.asdict(AUTHORS_OPTIONS), "inactive_offer": "kept",
                                "detach_inactive_offer": False}
    assert (args.value_size_input, args.key_size_comm, args.num_comm_heads) == (400, 16, 4)  # 4H, H=100
    default = copying_args(["--value-size-input", "12"])
    assert (default.value_size_input, default.key_size_comm) == (12, 32)
    assert default.rim_options == dataclasses.asdict(RIMOptions())


@pytest.mark.parametrize("option,message", [
    ("tie_break=random", "tie_break takes one of lower_index, topk"),
    ("offer=kept", "unknown switch 'offer'"),
    ("shared_comm_output=yes", "shared_comm_output takes one of false, true"),
])
def test_bad_switches_are_one_line_errors(tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exit_info:
        copying_main([*COPYING_TINY, "--rim-option", option, "--log-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in err and "\n" not in err


def test_a_run_saved_before_variants_existed_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    mnist_main([*MNIST_TINY, "--epochs", "1", "--log_dir", str(run)])
    config = json.loads((run / "config.json").read_text())
    for key in ("variant", "rim_options", "rim_option"):
        del config["args"][key]
    (run / "config.json").write_text(json.dumps(config))
    mnist_main([*MNIST_TINY, "--epochs", "2", "--log_dir", str(run), "--loadsaved"])
    assert len(json.loads((run / "results.json").read_text())["history"]) == 2
    capsys.readouterr()  # the runs' progress bars
    with pytest.raises(SystemExit) as exit_info:  # but not as another variant
        mnist_main([*MNIST_TINY, "--epochs", "3", "--log_dir", str(run), "--loadsaved",
                    "--variant", "authors"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error:") and "\n" not in err
    assert "--variant" in err and "used 'default'" in err


SAVED_CONFIG = Path(__file__).resolve().parents[1] / "data" / "config_copying_rim.json"


@pytest.mark.parametrize("predates_a_switch", [False, True])
def test_a_run_saved_in_an_earlier_format_resumes_and_counts_in_its_row(tmp_path, predates_a_switch):
    """config.json as the trainers wrote it (tests/data), and as a run that predates a switch
    of RIMOptions records it (without that switch): it resumes, and a table counts it."""
    from reproduce_common import group_runs, model_spec

    run = tmp_path / "run"
    copying_main([*COPYING_TINY, "--updates", "3", "--log-dir", str(run)])
    saved = json.loads(SAVED_CONFIG.read_text())
    saved["args"]["log_dir"] = str(run)
    if predates_a_switch:
        del saved["args"]["rim_options"]["init"]
    (run / "config.json").write_text(json.dumps(saved))
    copying_main([*COPYING_TINY, "--updates", "6", "--log-dir", str(run), "--loadsaved"])
    assert json.loads((run / "results.json").read_text())["updates"] == 6

    (run / "config.json").write_text(json.dumps(saved))  # as a finished run of that format
    row = model_spec(vars(copying_args(COPYING_TINY)))
    assert group_runs([run], {"RIM (4,2)": row}) == {"RIM (4,2)": [run]}
