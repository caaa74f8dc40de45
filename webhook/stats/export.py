"""Published tables as text, CSV or JSON (XLSX/DOCX and charts: issue 5, next increment).
Only ``report.Table`` objects come here, and they are already suppressed."""
from __future__ import annotations

import csv
import io
import json

from webhook.stats.report import Table


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def to_text(t: Table) -> str:
    grid = [t.header] + [[_cell(v) for v in r] for r in t.rows] + ([[_cell(v) for v in t.total]] if t.total else [])
    widths = [max(len(str(r[i])) for r in grid) for i in range(len(t.header))]
    lines = [t.title, ""]
    for n, r in enumerate(grid):
        lines.append("  ".join(str(c).rjust(w) if n and i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if t.note:
        lines += ["", t.note]
    lines.append('"<5": 1 to 4 persons; "x": hidden so that a "<5" cannot be worked out; "—": nothing to count')
    return "\n".join(lines)


def to_csv(t: Table) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(t.header)
    for r in t.rows:
        w.writerow([_cell(v) for v in r])
    if t.total:
        w.writerow([_cell(v) for v in t.total])
    return out.getvalue()


def to_json(t: Table) -> str:
    return json.dumps({"title": t.title, "header": t.header, "rows": t.rows, "total": t.total, "note": t.note},
                      ensure_ascii=False)


FORMATS = {"text": to_text, "csv": to_csv, "json": to_json}
