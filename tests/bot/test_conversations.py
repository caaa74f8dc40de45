"""Conversation tests (tests/conversations/*.yml) against the trained model."""
import pytest

from tests.conftest import ROOT, run

pytestmark = pytest.mark.model


def test_conversation_stories(model_path, tmp_path):
    import sys
    proc = run([sys.executable, "-m", "rasa", "test", "core", "--stories", str(ROOT / "tests" / "conversations"),
                "--model", str(model_path), "--endpoints", str(ROOT / "bot" / "endpoints.yml"),
                "--out", str(tmp_path), "--fail-on-prediction-errors"])
    failed = (tmp_path / "failed_test_stories.yml")
    detail = failed.read_text() if failed.exists() else proc.stdout.decode()[-3000:]
    assert proc.returncode == 0, detail
    assert "None of the test stories failed" in failed.read_text()


def test_training_data_validates():
    import sys
    proc = run([sys.executable, "-m", "bot.validate"])
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
