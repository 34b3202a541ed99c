"""Server-drawn SVG charts: the geometry of each, for the templates' macros (charts.html).

Coordinates are in the SVG's own units (its viewBox); CSS scales the picture to its card.
Colours of data cells are presentation attributes (`fill`), which the CSP allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAX_BARS = 40
CHAR_PX = 7.0  # about one character of the 12 px label font


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    text: str
    kind: str = ""  # CSS modifier: "low" (under a minimum), ...


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class BarChart:
    width: float
    height: float
    left: float
    top: float
    plot_width: float
    plot_height: float
    bars: list[Bar]
    ticks: list[Tick] = field(default_factory=list)
    marker: float | None = None  # x (horizontal) of a reference line, e.g. the minimum
    marker_text: str = ""
    hidden: int = 0  # bars left out past MAX_BARS
    x_ticks: list[Tick] = field(default_factory=list)  # vertical bars: the value axis below


def nice_ticks(high: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(high / step - 1e-9) + 1)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def label_bars(counts: Mapping[str, int], minimum: int | None = None) -> BarChart:
    """Horizontal bars, one per label, largest first; labels under `minimum` marked."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, hidden = ranked[:MAX_BARS], max(0, len(ranked) - MAX_BARS)
    longest = max((len(label) for label, _ in shown), default=4)
    left = min(180.0, 16 + CHAR_PX * min(longest, 24))
    row, plot_width = 26.0, 640.0
    high = max([n for _, n in shown] + [minimum or 0, 1])
    ticks = nice_ticks(high)
    scale = plot_width / ticks[-1]
    bars = [
        Bar(
            label=label,
            value=n,
            x=left,
            y=12 + i * row,
            width=max(1.5, n * scale),
            height=row - 8,
            text=f"{n:,}",
            kind="low" if minimum is not None and n < minimum else "",
        )
        for i, (label, n) in enumerate(shown)
    ]
    plot_height = 12 + len(shown) * row
    return BarChart(
        width=left + plot_width + 60,
        height=plot_height + 26,
        left=left,
        top=12,
        plot_width=plot_width,
        plot_height=plot_height - 12,
        bars=bars,
        ticks=[Tick(left + t * scale, _fmt(t)) for t in ticks],
        marker=None if minimum is None else left + minimum * scale,
        marker_text="" if minimum is None else f"minimum {minimum}",
        hidden=hidden,
    )


def histogram(edges: Sequence[float], counts: Sequence[int]) -> BarChart:
    """Vertical bars between consecutive edges (a regression target's distribution)."""
    left, top, plot_width, plot_height = 48.0, 10.0, 520.0, 160.0
    ticks = nice_ticks(max([*counts, 1]))
    scale = plot_height / ticks[-1]
    slot = plot_width / max(len(counts), 1)
    bars = [
        Bar(
            label=f"{edges[i]:.4g} to {edges[i + 1]:.4g}",
            value=c,
            x=left + i * slot + 1,
            y=top + plot_height - c * scale,
            width=max(1.0, slot - 2),
            height=c * scale,
            text=f"{c:,}",
        )
        for i, c in enumerate(counts)
    ]
    return BarChart(
        width=left + plot_width + 20,
        height=top + plot_height + 30,
        left=left,
        top=top,
        plot_width=plot_width,
        plot_height=plot_height,
        bars=bars,
        ticks=[Tick(top + plot_height - t * scale, _fmt(t)) for t in ticks],
        x_ticks=[Tick(left, f"{edges[0]:.4g}"), Tick(left + plot_width, f"{edges[-1]:.4g}")]
        if edges
        else [],
    )


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    x: float
    y: float
    size: float
    count: int
    fill: str
    text: str  # "" when cells are too small for their count
    dark: bool  # the count is drawn in white
    title: str


@dataclass(frozen=True)
class AxisLabel:
    text: str
    x: float
    y: float


@dataclass(frozen=True)
class Heatmap:
    width: float
    height: float
    left: float
    top: float
    size: float  # one cell's side
    cells: list[Cell]
    rows: list[AxisLabel]
    cols: list[AxisLabel]
    total: int
    correct: int


_DIAGONAL = (37, 99, 235)  # blue: right
_OFF = (220, 38, 38)  # red: confused


def _mix(rgb: tuple[int, int, int], amount: float) -> str:
    """`rgb` mixed with white: 0 is white, 1 the colour itself."""
    a = max(0.0, min(1.0, amount))
    r, g, b = (round(255 + (c - 255) * a) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Heatmap:
    """The confusion matrix, rows true labels and columns predictions. A cell's shade is its
    share of the row (the true label's examples): the diagonal is recall, blue; the rest is
    what that label is mistaken for, red."""
    n = len(labels)
    size = max(14.0, min(80.0, 560.0 / max(n, 1)))
    longest = max((len(label) for label in labels), default=4)
    margin = min(150.0, 14 + CHAR_PX * min(longest, 20))
    left, top = margin + 24, margin + 26  # room for the rotated labels and the title
    show_counts = size >= 22
    cells = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            colour = _DIAGONAL if i == j else _OFF
            cells.append(
                Cell(
                    row=i,
                    col=j,
                    x=left + j * size,
                    y=top + i * size,
                    size=size,
                    count=count,
                    fill=_mix(colour, 0.08 + 0.92 * share) if count else "#f8fafc",
                    text=str(count) if show_counts and (count or n <= 12) else "",
                    dark=share > 0.5,
                    title=f"true {labels[i]}, predicted {labels[j]}: {count} "
                    f"({100 * share:.0f}% of {labels[i]})",
                )
            )
    rows = [AxisLabel(label, left - 8, top + (i + 0.5) * size) for i, label in enumerate(labels)]
    cols = [AxisLabel(label, left + (j + 0.5) * size, top - 8) for j, label in enumerate(labels)]
    return Heatmap(
        width=left + n * size + 20,
        height=top + n * size + 20,
        left=left,
        top=top,
        size=size,
        cells=cells,
        rows=rows,
        cols=cols,
        total=sum(sum(r) for r in matrix),
        correct=sum(matrix[i][i] for i in range(min(n, len(matrix)))),
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    r: float
    title: str


@dataclass(frozen=True)
class Series:
    name: str
    kind: str  # CSS modifier
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Reliability:
    width: float
    height: float
    left: float
    top: float
    side: float
    series: list[Series]
    ticks: list[Tick]


def reliability(diagrams: Sequence[tuple[str, str, Sequence[Mapping[str, float]]]]) -> Reliability:
    """Accuracy against confidence per bin, for each (name, kind, bins) diagram; a calibrated
    model lies on the diagonal. A point's area is its bin's share of the examples."""
    left, top, side = 52.0, 14.0, 320.0
    total = max(
        (sum(float(b.get("count", 0)) for b in bins) for _, _, bins in diagrams), default=1.0
    )
    series = []
    for name, kind, bins in diagrams:
        points = [
            Point(
                x=left + float(b["confidence"]) * side,
                y=top + (1 - float(b["accuracy"])) * side,
                r=3 + 9 * math.sqrt(float(b.get("count", 0)) / max(total, 1.0)),
                title=f"{name}: confidence {float(b['confidence']):.2f}, accuracy "
                f"{float(b['accuracy']):.2f}, {int(b.get('count', 0))} examples",
            )
            for b in sorted(bins, key=lambda b: float(b["confidence"]))
        ]
        series.append(Series(name, kind, points))
    ticks = [Tick(v, f"{v:.1f}") for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return Reliability(left + side + 16, top + side + 40, left, top, side, series, ticks)


@dataclass(frozen=True)
class Scatter:
    width: float
    height: float
    left: float
    top: float
    side: float
    points: list[Point]
    low: float
    high: float


def scatter(pairs: Sequence[Sequence[float]]) -> Scatter:
    """Predicted (y) against true (x) values on validation, one point each."""
    left, top, side = 60.0, 14.0, 320.0
    values = [float(v) for pair in pairs for v in pair[:2]]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = (high - low) or 1.0

    def at(v: float) -> float:
        return (v - low) / span * side

    points = [
        Point(
            left + at(float(t)), top + side - at(float(p)), 3.0, f"true {t:.4g}, predicted {p:.4g}"
        )
        for p, t in pairs
    ]
    return Scatter(left + side + 16, top + side + 40, left, top, side, points, low, high)
