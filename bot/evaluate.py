"""`helpline eval`: every labelled set scored with ``bot.scoring`` (both variants, misses
listed), optionally Rasa NLU cross-validation; written to reports/eval.md (the raw Rasa reports
under reports/cv/).

Sets: the shared development set when it is next to the checkout, the project's own sets under
``tests/data/`` and ``eval/``, and any file or folder given with ``--cases`` (held-out sets are
passed by path: the project never needs them to run).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bot import paths, scoring

HOLDOUT = paths.ROOT / "tests" / "data" / "holdout_cases.jsonl"


def reader_for(clf) -> scoring.Reader:
    """Reads a conversation's texts with the classifier, each message in its conversation."""
    def read(texts: list[str]) -> list[tuple[str, str]]:
        return [(r["topic"], r["conversation_risk"]) for r in clf.classify_conversation(texts)]
    return read


def default_sets() -> list[tuple[str, Path]]:
    sets = [("development set (../shared/eval/dev_cases.jsonl)", paths.DEV_CASES),
            ("held-out set (tests/data/holdout_cases.jsonl)", HOLDOUT)]
    sets += [(f"blind set ({p.relative_to(paths.ROOT)})", p) for p in sorted((paths.ROOT / "eval").glob("*.jsonl"))]
    return [(name, p) for name, p in sets if p.exists()]


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


def run_eval(folds: int = 3, model: Path | None = None, skip_cv: bool = False, cases: list[Path] | None = None,
             only: bool = False, misses: bool = True) -> int:
    out = paths.REPORTS
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Evaluation report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `helpline eval`.", ""]
    if model is None:
        print("helpline eval: no trained model; run `make model` first", file=sys.stderr)
        return 2
    sets = [] if only else default_sets()
    known = {p.resolve() for _, p in sets}
    for p in scoring.iter_files(cases or []):
        if not p.exists():
            print(f"helpline eval: no such file: {p}", file=sys.stderr)
            return 2
        if p.resolve() not in known:
            known.add(p.resolve())
            sets.append((f"given set ({p})", p))
    from bot.classifier import Classifier

    read = reader_for(Classifier.load(model))
    for name, path in sets:
        loaded = scoring.load(path)
        kind = "conversations, scored on the conversation's risk after each turn" if scoring.is_conversations(loaded) \
            else "messages"
        text, _ = scoring.report(loaded, read, misses=misses)
        lines += [f"## {name}", "", f"{len(loaded)} {kind}.", "", "```", text, "```", ""]
        print("\n".join(lines[-6:]), flush=True)
    if not skip_cv:
        cv = cross_validate(folds, out / "cv")
        lines += [f"## NLU cross-validation ({folds} folds)", "",
                  f"- intent accuracy {cv['accuracy']:.3f}, macro F1 {cv['macro_f1']:.3f}, weighted F1 {cv['weighted_f1']:.3f}",
                  f"- wall time {cv['seconds']} s", "- weakest intents: " + ", ".join(f"{k} {v:.2f}" for k, v in cv["worst"]), ""]
        print("\n".join(lines[-5:]))
    (out / "eval.md").write_text("\n".join(lines), "utf-8")
    return 0
