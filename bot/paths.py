"""Where the project's files are, independent of the working directory."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bot" / "config.yml"
DOMAIN = ROOT / "bot" / "domain"
ENDPOINTS = ROOT / "bot" / "endpoints.yml"
CREDENTIALS = ROOT / "bot" / "credentials.yml"
NLU_DATA = ROOT / "data" / "nlu"
DIALOGUE_DATA = ROOT / "data" / "dialogue"
KB = ROOT / "data" / "kb"
MODELS = ROOT / "models"
MODEL_NAME = "helpline"
REPORTS = ROOT / "reports"
SHARED = ROOT.parent / "shared"                 # the project's shared folder, next to the checkout
DEV_CASES = SHARED / "eval" / "dev_cases.jsonl"

# Files whose change makes the trained model stale. The risk rules and the intent → topic table
# are not here on purpose: they run at parse time and need no retraining.
TRAINING_INPUTS = [CONFIG, DOMAIN, NLU_DATA, DIALOGUE_DATA, KB / "localities.yml", KB / "relationships.yml",
                   ROOT / "bot" / "nlu" / "normalize.py", ROOT / "bot" / "nlu" / "components.py",
                   ROOT / "bot" / "nlu" / "gazetteer.py", ROOT / "bot" / "kb" / "places.py"]


def input_files(paths) -> list[str]:
    """The files under ``paths``, relative to the project, sorted: a file removed from the
    training data makes the model stale as much as a file changed."""
    out = []
    for p in paths:
        p = Path(p)
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p] if p.exists() else []
        out += [str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f) for f in files]
    return sorted(out)


def newest_mtime(paths) -> float:
    latest = 0.0
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in p.rglob("*"):
                if f.is_file():
                    latest = max(latest, f.stat().st_mtime)
        elif p.exists():
            latest = max(latest, p.stat().st_mtime)
    return latest


def latest_model(models_dir: Path = MODELS) -> Path | None:
    if not models_dir.is_dir():
        return None
    found = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
