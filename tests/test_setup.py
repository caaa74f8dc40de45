"""Set-up pieces a newcomer relies on: Python 3.10 is found or clearly asked for, and the model
is retrained only when its inputs changed."""
import os
import subprocess
import time

from tests.conftest import ROOT


def test_find_python310_prints_a_310_interpreter():
    proc = subprocess.run([str(ROOT / "scripts" / "find-python310.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exe = proc.stdout.strip()
    ver = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert ver.stdout.strip() == "(3, 10)"


def test_find_python310_explains_when_missing(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no python, no pyenv on PATH
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "find-python310.sh")], capture_output=True,
                          text=True, env=env)
    if proc.returncode == 0:  # a system /usr/bin/python3.10 exists on this machine
        assert proc.stdout.strip().endswith("python3.10")
    else:
        assert "pyenv install 3.10" in proc.stderr and "PYTHON310" in proc.stderr


def test_model_is_stale_when_training_data_is_newer(tmp_path):
    from bot import cli, paths
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    old = paths.newest_mtime(paths.TRAINING_INPUTS) - 10
    os.utime(model, (old, old))
    assert cli.is_stale(model)
    new = time.time() + 10
    os.utime(model, (new, new))
    assert cli.is_stale(model)                  # no record of the files it was trained on
    files = paths.input_files(paths.TRAINING_INPUTS)
    assert "data/nlu/coverage.yml" in files and "bot/config.yml" in files
    (tmp_path / "m.inputs").write_text("\n".join(files) + "\n", "utf-8")
    assert not cli.is_stale(model)
    # a training file removed since (or added) makes it stale, whatever the times say
    (tmp_path / "m.inputs").write_text("\n".join(files + ["data/nlu/removed_since.yml"]) + "\n", "utf-8")
    assert cli.is_stale(model)
    assert cli.is_stale(None)
