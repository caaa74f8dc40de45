"""Charts drawn on the server as SVG (no script, no external font or image: the console's CSP
allows them as images, and they print). Suppressed values are drawn as gaps with their mark."""
from __future__ import annotations

from typing import Optional
from xml.sax.saxutils import escape

from webhook.stats.report import Table

W, H, PAD = 640, 260, 40


def _svg(body: str, title: str, height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
            f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="12">'
            f'<title>{escape(title)}</title><rect width="{W}" height="{height}" fill="#fff"/>{body}</svg>')


def trend(t: Table, title: str, targets: Optional[dict] = None) -> str:
    """Indicators d and đ per period (the rows of ``report.indicator_table`` after "year"), with
    the targets of the plans in force that year (``bot.kb.plans.targets``: {"d": 50, "dd": 100});
    none when no plan sets one."""
    targets = targets or {}
    periods = [r for r in t.rows if r[0] != "year"]
    n = max(len(periods), 1)
    x = lambda i: PAD + (W - 2 * PAD) * (i + 0.5) / n                       # noqa: E731
    y = lambda v: H - PAD - (H - 2 * PAD) * v / 100.0                       # noqa: E731
    parts = [f'<line x1="{PAD}" y1="{y(0)}" x2="{W - PAD}" y2="{y(0)}" stroke="#999"/>']
    for v in (0, 50, 100):
        parts.append(f'<text x="{PAD - 6}" y="{y(v) + 4}" text-anchor="end" fill="#555">{v}%</text>')
    for key, colour, label in (("d", "#5b2a86", "d ≥ {v:g}%"), ("dd", "#1e7d32", "đ = {v:g}%")):
        if key in targets:
            v = float(targets[key])
            parts.append(f'<line x1="{PAD}" y1="{y(v)}" x2="{W - PAD}" y2="{y(v)}" stroke="{colour}" '
                         f'stroke-dasharray="4 3"/><text x="{W - PAD}" y="{y(v) - 4}" text-anchor="end" '
                         f'fill="{colour}">{escape(label.format(v=v))}</text>')
    for col, colour, label, dx in ((3, "#5b2a86", "d", -8), (6, "#1e7d32", "đ", 8)):
        points = []
        for i, r in enumerate(periods):
            v = r[col]
            cx = x(i) + dx
            if isinstance(v, (int, float)):
                points.append(f"{cx:.1f},{y(v):.1f}")
                parts.append(f'<circle cx="{cx:.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"><title>{label} {r[0]}: '
                             f'{v}%</title></circle>')
            else:
                if len(points) > 1:
                    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}"/>')
                points = []
                parts.append(f'<text x="{cx:.1f}" y="{y(0) - 6}" text-anchor="middle" fill="{colour}">'
                             f'{escape(str(v) if v is not None else "—")}</text>')
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}"/>')
    for i, r in enumerate(periods):
        parts.append(f'<text x="{x(i):.1f}" y="{H - PAD + 16}" text-anchor="middle" fill="#333">{escape(str(r[0]))}</text>')
    parts.append(f'<text x="{PAD}" y="18" fill="#1d2430" font-weight="bold">{escape(title)}</text>')
    return _svg("".join(parts), title)


def bars(t: Table, title: str) -> str:
    """Horizontal bars for a one-dimension table; a suppressed value is an outlined bar with its mark."""
    rows = t.rows
    height = PAD + 22 * max(len(rows), 1) + 20
    numbers = [r[1] for r in rows if isinstance(r[1], int)]
    top = max(numbers + [5])
    label_w = 170
    scale = (W - label_w - PAD) / top
    parts = [f'<text x="8" y="18" font-weight="bold" fill="#1d2430">{escape(title)}</text>']
    for i, (name, value, *_rest) in enumerate(rows):
        yy = PAD + 22 * i
        parts.append(f'<text x="{label_w - 8}" y="{yy + 14}" text-anchor="end" fill="#333">{escape(str(name))}</text>')
        if isinstance(value, int):
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{max(value * scale, 1):.1f}" height="16" fill="#5b2a86"/>'
                         f'<text x="{label_w + value * scale + 6:.1f}" y="{yy + 13}" fill="#333">{value}</text>')
        else:
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{5 * scale:.1f}" height="16" fill="none" '
                         f'stroke="#5b2a86" stroke-dasharray="3 2"/><text x="{label_w + 5 * scale + 6:.1f}" '
                         f'y="{yy + 13}" fill="#333">{escape(str(value))}</text>')
    return _svg("".join(parts), title, height)
