"""scripts/contrib/check_mkl_on_amd.py: a missing library is a one-line error, not a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "contrib" / "check_mkl_on_amd.py"


@pytest.mark.slow
def test_missing_library_gives_one_line_error(tmp_path):
    missing = tmp_path / "libmkl_on_amd.so"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--library", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {missing} does not exist; build it first with `make mkl-on-amd`\n"
