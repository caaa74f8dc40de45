"""`helpline eval`: Rasa NLU cross-validation and the classify score on labelled case files,
written to reports/eval.md (and the raw Rasa reports under reports/cv/)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bot import paths

HOLDOUT = paths.ROOT / "tests" / "data" / "holdout_cases.jsonl"


def score_cases(cases: Path, model: Path) -> str:
    helpline = Path(sys.executable).with_name("helpline")
    cmd = [sys.executable, str(paths.SCORER), str(cases), "--cmd", f"{helpline} classify --jsonl --model {model}", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=paths.ROOT)
    return proc.stdout.strip() or proc.stderr.strip()


def cross_validate(folds: int, out: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    start = time.time()
    subprocess.run([sys.executable, "-m", "rasa", "test", "nlu", "--nlu", str(paths.NLU_DATA), "--config",
                    str(paths.CONFIG), "--cross-validation", "--folds", str(folds), "--out", str(out)],
                   cwd=paths.ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    report = json.loads((out / "intent_report.json").read_text())
    return {"accuracy": report["accuracy"], "macro_f1": report["macro avg"]["f1-score"],
            "weighted_f1": report["weighted avg"]["f1-score"], "seconds": round(time.time() - start, 1),
            "worst": sorted(((k, v["f1-score"]) for k, v in report.items() if isinstance(v, dict) and "support" in v
                             and k not in ("macro avg", "weighted avg", "micro avg")), key=lambda x: x[1])[:8]}


def run_eval(folds: int = 3, model: Path | None = None, skip_cv: bool = False) -> int:
    out = paths.REPORTS
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Evaluation report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `helpline eval`.", ""]
    if model is None:
        print("helpline eval: no trained model; run `make model` first", file=sys.stderr)
        return 2
    sets = [("development set (../shared/eval/dev_cases.jsonl)", paths.DEV_CASES),
            ("held-out set (tests/data/holdout_cases.jsonl)", HOLDOUT)]
    sets += [(f"blind set ({p.relative_to(paths.ROOT)})", p) for p in sorted((paths.ROOT / "eval").glob("*.jsonl"))]
    for name, cases in sets:
        if cases.exists():
            lines += [f"## {name}", "", "```", score_cases(cases, model), "```", ""]
    if not skip_cv:
        cv = cross_validate(folds, out / "cv")
        lines += [f"## NLU cross-validation ({folds} folds)", "",
                  f"- intent accuracy {cv['accuracy']:.3f}, macro F1 {cv['macro_f1']:.3f}, weighted F1 {cv['weighted_f1']:.3f}",
                  f"- wall time {cv['seconds']} s", "- weakest intents: " + ", ".join(f"{k} {v:.2f}" for k, v in cv["worst"]), ""]
    (out / "eval.md").write_text("\n".join(lines), "utf-8")
    print("\n".join(lines))
    return 0
