#!/usr/bin/env python
"""Chooses IMMINENT_MIN_CONFIDENCE (bot/understanding.py) by cross-validation.

`imminent` from the model alone (no rule saw danger now) is trusted only at or above this
confidence; below it the message is `high`, still escalated. The threshold is read off held-out
folds: Rasa's NLU cross-validation (`rasa test nlu --cross-validation --successes`) gives,
for every training example, the intent and confidence predicted by a model that did not see it.

The pipeline is cut after DIET (``model_only_config``): these are the model's own confidences.
For each candidate threshold t it reports, over the out-of-fold predictions:
  recall    of examples whose true intent is urgent (emergency_danger, self_harm) and that the
            model read as urgent: the share at or above t (these stay `imminent` without a rule)
  false     of examples whose true intent is not urgent: the share read as urgent at or above t
            (a false `imminent`: a counsellor alerted at the top of the queue)
and picks the largest t whose recall is at least --min-recall (default 0.95): a message the model
alone reads as danger now stays `imminent` in 95 of 100 cases, and the rest are still escalated as
`high`. `--from FILE` re-reads a saved run instead of cross-validating again.

    .venv/bin/python bench/calibrate.py [--folds 3] [--min-recall 0.95] [--out bench/results/calibrate.json]

Texts are never printed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URGENT = {"emergency_danger", "self_harm"}


def model_only_config(path: Path) -> Path:
    """The project's pipeline up to DIET: the fallback, the sentence reader and the risk annotator
    (which routes rule-found danger to emergency_danger) are left out, so the confidences are the
    model's alone."""
    import yaml

    config = yaml.safe_load((ROOT / "bot" / "config.yml").read_text("utf-8"))
    keep = []
    for component in config["pipeline"]:
        keep.append(component)
        if component["name"] == "DIETClassifier":
            break
    config["pipeline"] = keep
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def predictions(folds: int) -> list[tuple[str, str, float]]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        config = model_only_config(Path(tmp) / "config.yml")
        subprocess.run([sys.executable, "-m", "rasa", "test", "nlu", "--nlu", str(ROOT / "data" / "nlu"), "--config",
                        str(config), "--cross-validation", "--folds", str(folds), "--successes",
                        "--out", tmp], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        rows = []
        for name in ("intent_successes.json", "intent_errors.json"):
            path = Path(tmp) / name
            if path.exists():
                for r in json.loads(path.read_text("utf-8")):
                    pred = r.get("intent_prediction") or {}
                    rows.append((r.get("intent"), pred.get("name"), float(pred.get("confidence") or 0.0)))
        return rows


def sweep(rows, thresholds):
    urgent_true = [(p, c) for t, p, c in rows if t in URGENT and p in URGENT]
    calm = [(p, c) for t, p, c in rows if t not in URGENT]
    table = []
    for th in thresholds:
        recall = sum(c >= th for p, c in urgent_true) / len(urgent_true) if urgent_true else 1.0
        false = sum(p in URGENT and c >= th for p, c in calm) / len(calm) if calm else 0.0
        table.append({"threshold": th, "recall": round(recall, 4), "false": round(false, 4)})
    return table, len(urgent_true), len(calm)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--min-recall", type=float, default=0.95)
    ap.add_argument("--from", dest="saved", help="a saved result: choose again without cross-validating")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "calibrate.json"))
    args = ap.parse_args()
    start = time.time()
    if args.saved:
        saved = json.loads(Path(args.saved).read_text("utf-8"))
        table, n_urgent, n_calm, n_rows = saved["table"], saved["urgent_read_urgent"], saved["not_urgent"], saved["examples"]
    else:
        rows = predictions(args.folds)
        table, n_urgent, n_calm = sweep(rows, [round(0.05 * k, 2) for k in range(1, 20)])
        n_rows = len(rows)
    chosen = max((r for r in table if r["recall"] >= args.min_recall), key=lambda r: r["threshold"], default=table[0])
    result = {"date": time.strftime("%Y-%m-%d"), "folds": args.folds, "examples": n_rows, "urgent_read_urgent": n_urgent,
              "not_urgent": n_calm, "min_recall": args.min_recall, "chosen": chosen, "table": table,
              "seconds": round(time.time() - start, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2), "utf-8")
    print("threshold  recall  false")
    for r in table:
        print(f"{r['threshold']:9.2f}  {r['recall']:6.3f}  {r['false']:6.4f}")
    print(f"chosen: {chosen['threshold']} (recall {chosen['recall']:.3f} >= {args.min_recall}, "
          f"false imminent {chosen['false']:.4f}); {n_rows} examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
