"""The reproduction scripts' job pool: skips finished runs, reports failed ones."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from reproduce_common import Job, mean_std, run_jobs  # noqa: E402


def job(tmp_path: Path, name: str, code: str) -> Job:
    done = tmp_path / f"{name}.done"
    return Job(name, [sys.executable, "-c", code.format(done=done)], done, tmp_path / f"{name}.log")


def test_run_jobs_runs_unfinished_skips_finished_and_reports_failures(tmp_path):
    ok = job(tmp_path, "ok", "open(r'{done}', 'w').write('x')")
    crash = job(tmp_path, "crash", "raise SystemExit(3)")
    finished = job(tmp_path, "finished", "raise SystemExit('must not run')")
    finished.done.write_text("already")
    assert run_jobs([ok, crash, finished], parallel=2) == ["crash"]
    assert ok.done.read_text() == "x"
    assert finished.done.read_text() == "already"
    assert not finished.log.exists()


def test_mean_std_formats_seeds():
    assert mean_std([]) == "–"
    assert mean_std([50.0]) == "50.00"
    assert mean_std([1.0, 3.0]) == "2.00 ± 1.41"
