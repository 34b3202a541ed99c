"""The building blocks of human output: tables, bar charts, the confusion matrix, numbers.

Every function takes plain data (dicts as the API answers them) and returns a rich
renderable. Values that come from users (labels, names, messages) are wrapped in `Text`, never
read as markup: a label called "[red]" stays "[red]". Styles only show on a terminal; in a
pipe the Console drops them (see output.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

# Eighths of a block: bars grow smoothly instead of in whole characters.
_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 40
# Past this many labels a confusion matrix no longer fits a terminal; --json has it whole.
MAX_MATRIX_LABELS = 25


def text(value: Any, style: str = "") -> Text:
    return Text("-" if value is None else str(value), style=style)


def number(value: Any) -> str:
    """A metric as people read it: 0.950, 1.234e-05, ints as ints, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Scores and losses at a fixed 3 decimals line up in a column; others, 4 digits.
        return f"{value:.3f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4g}"
    return str(value)


def percent(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "-"


def when(value: Any) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS' (UTC as the API gives it)."""
    if not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fields(rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column 'name  value' grid; rows whose value is None are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in rows:
        if value is not None:
            grid.add_row(name, value if isinstance(value, Text | Table) else text(value))
    return grid


def titled(title: str | None, body: RenderableType) -> RenderableType:
    """A bold title line above `body` (a table's own title would wrap to the table's width)."""
    return Group(Text(title, style="bold"), body) if title else body


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> RenderableType:
    """A plain table: user values as text, numbers right-aligned."""
    out = Table(box=box.SIMPLE_HEAD, show_edge=False)
    rows = [list(row) for row in rows]
    for index, name in enumerate(columns):
        numeric = bool(rows) and all(
            isinstance(row[index], int | float) or row[index] is None for row in rows
        )
        # The first column names the row (an id, a label): never cut short on a narrow screen.
        widest = max((len(str(row[index])) for row in rows), default=0) if index == 0 else None
        out.add_column(
            name, justify="right" if numeric else "left", no_wrap=index == 0, min_width=widest
        )
    for row in rows:
        out.add_row(*(cell if isinstance(cell, Text) else text(number(cell)) for cell in row))
    return titled(title, out)


def bar(fraction: float, width: int = BAR_WIDTH, ascii_only: bool = False) -> str:
    """A horizontal bar `fraction` (0..1) of `width` characters long."""
    fraction = min(max(fraction, 0.0), 1.0)
    if ascii_only:
        return "#" * round(fraction * width)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[part] if part else "")


def bar_chart(
    title: str, counts: Mapping[str, int | float], ascii_only: bool = False
) -> RenderableType:
    """Counts per label as horizontal bars, largest scaled to BAR_WIDTH, in the given order."""
    out = Table(box=None, padding=(0, 1))
    out.add_column("label", no_wrap=True)
    out.add_column("count", justify="right")
    out.add_column("bar", no_wrap=True)
    largest = max(counts.values(), default=0) or 1
    for label, count in counts.items():
        out.add_row(
            text(label), number(count), Text(bar(count / largest, ascii_only=ascii_only), "cyan")
        )
    return titled(title, out)


def confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> RenderableType:
    """Rows are the true labels, columns the predicted ones; the diagonal (right answers) is
    highlighted, mistakes are marked, zeros dimmed."""
    if len(labels) > MAX_MATRIX_LABELS:
        return Text(
            f"Confusion matrix: {len(labels)} labels, too many to show here (see --json).",
            style="dim",
        )
    out = Table(box=box.SIMPLE_HEAD, show_edge=False)
    out.add_column("true \\ predicted", style="bold", no_wrap=True)
    for label in labels:
        out.add_column(text(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix, strict=False)):
        cells = []
        for j, count in enumerate(row):
            style = "bold green" if i == j else ("red" if count else "dim")
            cells.append(Text(str(count), style=style))
        out.add_row(text(label), *cells)
    return titled("Confusion matrix (rows: true label, columns: predicted)", out)


def per_label(metrics: Mapping[str, Mapping[str, Any]]) -> RenderableType:
    rows = [
        (text(label), m.get("precision"), m.get("recall"), m.get("f1"), m.get("support"))
        for label, m in metrics.items()
    ]
    return table("Per label", ["label", "precision", "recall", "F1", "support"], rows)


def metric_line(metrics: Mapping[str, Any], keys: Sequence[str] | None = None) -> Text:
    """'name value · name value' for the scalar metrics (in `keys` order when given)."""
    names = keys if keys is not None else list(metrics)
    parts = [
        f"{name} {number(metrics[name])}"
        for name in names
        if name in metrics and isinstance(metrics[name], int | float)
    ]
    return Text("  ·  ".join(parts) if parts else "-")


def stack(*parts: RenderableType | None) -> Group:
    """The parts that are not None, one under the other with a blank line between."""
    shown: list[RenderableType] = []
    for part in parts:
        if part is None:
            continue
        if shown:
            shown.append(Text(""))
        shown.append(part)
    return Group(*shown)
