import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


@pytest.fixture(scope="session")
def model_path():
    """The trained model. `make test` trains it first; running pytest alone without one is a
    set-up error, reported as such rather than skipped (a skipped safety test passes silently)."""
    from bot.paths import latest_model

    model = latest_model()
    if model is None:
        pytest.fail("no trained model in models/: run `make model` (or `make test`, which trains it)")
    return model


@pytest.fixture(scope="session")
def classifier(model_path):
    from bot.classifier import Classifier

    return Classifier.load(model_path)


@pytest.fixture(scope="session")
def helpline_bin():
    return str(Path(sys.executable).with_name("helpline"))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, cwd=ROOT, timeout=600, **kw)


def said(gw, name: str) -> str:
    """A gateway sentence as it goes out: the counselling-line markers resolved with the gateway's
    knowledge-base state (webhook/kbstate.py)."""
    from webhook import replies

    return gw.kb.render(replies.text(name))
