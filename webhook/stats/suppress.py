"""Small-cell suppression for everything the statistics publish.

Primary: a count from 1 to 4 is shown as "<5" (0 is shown: an empty cell identifies no one).
Complementary: a suppressed cell must not be recoverable from a total minus the other cells, so
in every line that has a total (a table's rows, and its columns when it has column totals) a lone
suppressed cell takes the smallest other non-zero cell with it; this repeats until no line has
exactly one suppressed cell; such cells are shown as "x", not "<5" (they may be large). A total
under 5 is itself suppressed, with every cell of its line.
(GBVIMS names no cell size; UK ONS/ICO practice treats 1-4 as unsafe for sensitive data:
../shared/reference/domain_brief.md §3.2.)
"""
from __future__ import annotations

from typing import Sequence, Union

LIMIT = 5
MASK = "<5"        # the count is 1 to 4
HIDDEN = "x"       # hidden so that a "<5" cannot be worked out from a total (it may be any size)
Cell = Union[int, str]


def primary(n: int) -> bool:
    return 0 < n < LIMIT


def suppress_line(values: Sequence[int], total: int) -> tuple[list[Cell], Cell]:
    """One line of counts with its total."""
    table, totals, _cols, _grand = suppress_table([list(values)], row_totals=[total], col_totals=None)
    return table[0], totals[0]


def _mark(value: int, hidden: bool) -> Cell:
    return (MASK if primary(value) else HIDDEN) if hidden else value


def suppress_table(cells: list[list[int]], row_totals: Sequence[int], col_totals=None):
    """Cells (rows x columns) with their row totals and, optionally, column totals. Returns the
    masked cells, row totals, column totals and the grand total (the sum of ``row_totals``),
    which is hidden as soon as any total is. A line with one hidden cell and no other non-zero
    cell to hide with it hides its total instead."""
    hidden = [[primary(v) for v in row] for row in cells]
    row_hidden = [primary(t) for t in row_totals]
    col_hidden = [primary(t) for t in col_totals] if col_totals is not None else None

    def lines():
        for i in range(len(cells)):
            yield [(i, j) for j in range(len(cells[i]))], ("row", i)
        if col_totals is not None:
            for j in range(len(col_totals)):
                yield [(i, j) for i in range(len(cells))], ("col", j)

    def total_hidden(which) -> bool:
        return row_hidden[which[1]] if which[0] == "row" else col_hidden[which[1]]

    changed = True
    while changed:
        changed = False
        for line, which in lines():
            if total_hidden(which):
                # a hidden total hides every non-zero cell of its line
                for i, j in line:
                    if cells[i][j] > 0 and not hidden[i][j]:
                        hidden[i][j] = changed = True
                continue
            masked = [(i, j) for i, j in line if hidden[i][j]]
            if len(masked) != 1:
                continue
            others = sorted((cells[i][j], i, j) for i, j in line if not hidden[i][j] and cells[i][j] > 0)
            if others:
                _v, i, j = others[0]
                hidden[i][j] = True
            elif which[0] == "row":
                row_hidden[which[1]] = True
            else:
                col_hidden[which[1]] = True
            changed = True
    out = [[_mark(cells[i][j], hidden[i][j]) for j in range(len(cells[i]))] for i in range(len(cells))]
    rows = [_mark(t, row_hidden[i]) for i, t in enumerate(row_totals)]
    cols = None if col_totals is None else [_mark(t, col_hidden[j]) for j, t in enumerate(col_totals)]
    grand_value = sum(row_totals)
    any_hidden = any(row_hidden) or bool(col_hidden and any(col_hidden))
    grand = _mark(grand_value, any_hidden or primary(grand_value))
    return out, rows, cols, grand


def percent(numerator: int, denominator: int) -> Union[float, str, None]:
    """A share is published only when neither it nor its complement could single anyone out:
    denominator at least 5, and numerator and the rest each 0 or at least 5."""
    if denominator == 0:
        return None
    if denominator < LIMIT or primary(numerator) or primary(denominator - numerator):
        return MASK
    return round(100.0 * numerator / denominator, 1)
