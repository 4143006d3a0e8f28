"""The wheel scripts/test-python.sh built (maturin build, abi3) installs into
a fresh venv and works there: the extension imports, parses the spec, the
console script runs, and a missing store client fails with the pip command."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import freshet

from conftest import SPEC


def test_the_wheel_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    wheels = sorted(Path(os.environ.get("FRESHET_WHEEL_DIR", "/nonexistent")).glob("freshet-*.whl"))
    if not wheels:
        pytest.skip("no wheel built: run scripts/test-python.sh (FRESHET_WHEEL_DIR)")
    assert len(wheels) == 1 and "-abi3-" in wheels[0].name, wheels
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    py = env / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheels[0])], check=True)
    code = f"import freshet; print(freshet.Spec(open({str(SPEC)!r}).read()).hash)"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == freshet.Spec(SPEC.read_text()).hash
    cli = subprocess.run([str(env / "bin" / "freshet"), "features", "user", "cid-1", "--url", "redis://127.0.0.1:1",
                          "--spec", str(SPEC)], capture_output=True, text=True, check=False)  # fmt: skip
    assert cli.returncode == 1
    assert "pip install 'freshet[redis]'" in cli.stderr
    assert sys.version_info >= (3, 10)
