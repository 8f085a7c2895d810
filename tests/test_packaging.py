"""The wheel is the library: rim_core only, with one version."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import rim_core

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_rim_core_only(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                           "--no-build-isolation", "--wheel-dir", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("rim_core-*.whl")
    assert wheel.name.startswith(f"rim_core-{rim_core.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        top = {name.split("/")[0] for name in z.namelist()}
        metadata = z.read(f"rim_core-{rim_core.__version__}.dist-info/METADATA").decode()
        licenses = [name for name in z.namelist() if "/licenses/" in name]
    assert top == {"rim_core", f"rim_core-{rim_core.__version__}.dist-info"}
    assert "License-Expression: MIT" in metadata
    assert [Path(name).name for name in licenses] == ["LICENSE"]
    assert "Requires-Dist: torch>=2.1" in metadata
    assert "Requires-Dist: tensorboard; extra == \"experiments\"" in metadata
    assert len(metadata) < 5000  # a short description, not the whole README
