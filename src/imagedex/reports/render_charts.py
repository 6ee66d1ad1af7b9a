"""Server-side charts (matplotlib's Agg canvas, no browser, no pyplot global state)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from imagedex.reports import times
from imagedex.reports.data import Charts, ReportData

DPI = 100
COLOURS = ["#3b6fb6", "#e0883a", "#4a9d5b", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c"]


def _empty(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no images", ha="center", va="center", color="#888888")
    ax.set_axis_off()


def _short(text: str, size: int = 22) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


Draw = Callable[[Axes, Charts], None]


def _chart(
    title: str | Callable[[Charts], str], has_data: Callable[[Charts], bool]
) -> Callable[[Draw], Draw]:
    """A chart titled `title` that says "no images" instead of drawing when `has_data` is False."""

    def decorate(draw: Draw) -> Draw:
        @functools.wraps(draw)
        def chart(ax: Axes, charts: Charts) -> None:
            text = title(charts) if callable(title) else title
            if not has_data(charts):
                return _empty(ax, text)
            draw(ax, charts)
            ax.set_title(text)

        return chart

    return decorate


def _count_axis(ax: Axes, axis: str = "y") -> None:
    """Label the axis that counts images and keep its ticks on whole numbers."""
    if axis == "y":
        ax.set_ylabel("images")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xlabel("images")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _bucket_labels(charts: Charts) -> tuple[list[str], str]:
    """Tick labels for the time buckets and the axis title. Minutes and hours are shown in the
    report's zone; days, weeks and months are UTC calendar units (the index counts them so), and
    the axis says so when the report is in another zone."""
    starts = [start for start, _ in charts.over_time]
    if charts.interval in ("minute", "hour"):
        zone = times.zone_abbreviation(times.local(starts[0], charts.timezone))
        labels = [times.short(start, charts.timezone) for start in starts]
        if len({label[:10] for label in labels}) == 1:  # one day: the time is enough
            labels = [label[11:] for label in labels]
        return labels, f"{charts.interval} ({zone})"
    cut = 7 if charts.interval == "month" else 10
    labels = [start[:cut] for start in starts]
    offset = times.local(starts[0], charts.timezone).utcoffset()
    return labels, charts.interval if not offset else f"{charts.interval} (UTC)"


@_chart(lambda charts: f"Images per {charts.interval}", lambda charts: bool(charts.over_time))
def draw_over_time(ax: Axes, charts: Charts) -> None:
    labels, axis_title = _bucket_labels(charts)
    counts = [count for _, count in charts.over_time]
    positions = list(range(len(counts)))
    ax.bar(positions, counts, color=COLOURS[0], width=0.8)
    step = max(1, -(-len(labels) // 8))  # at most 8 tick labels
    ax.set_xticks(positions[::step], labels[::step], rotation=30, ha="right", fontsize=7)
    ax.set_xlabel(axis_title, fontsize=8)
    _count_axis(ax)


@_chart("Top labels", lambda charts: bool(charts.labels))
def draw_top_labels(ax: Axes, charts: Charts) -> None:
    top = charts.labels[:10][::-1]  # largest at the top
    ax.barh([_short(label) for label, _ in top], [count for _, count in top], color=COLOURS[1])
    ax.tick_params(axis="y", labelsize=7)
    _count_axis(ax, "x")


@_chart("Share of images per label", lambda charts: bool(charts.labels and charts.total))
def draw_label_share(ax: Axes, charts: Charts) -> None:
    """What part of the matching images shows each label. An image can show several labels,
    so the shares do not add up to 100 % and a pie (parts of one whole) would misstate them."""
    top = charts.labels[:10][::-1]  # largest at the top
    shares = [100.0 * count / charts.total for _, count in top]
    bars = ax.barh([_short(label) for label, _ in top], shares, color=COLOURS[4])
    ax.bar_label(bars, labels=[f"{share:.0f}%" for share in shares], fontsize=7, padding=2)
    ax.set_xlim(0, 115)  # room for the "100%" beside a full bar
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel(f"% of the {charts.total} matching images")
    ax.tick_params(axis="y", labelsize=7)


@_chart("Best label confidence", lambda charts: any(count for _, _, count in charts.confidence))
def draw_confidence(ax: Axes, charts: Charts) -> None:
    names = [f"{low}-{high}" for low, high, _ in charts.confidence]
    ax.bar(names, [count for _, _, count in charts.confidence], color=COLOURS[2])
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_xlabel("confidence %")
    _count_axis(ax)


@_chart("Moderation", lambda charts: bool(charts.safe or charts.unsafe))
def draw_moderation(ax: Axes, charts: Charts) -> None:
    names = ["safe", "unsafe"] + [_short(label, 16) for label, _ in charts.moderation_labels[:5]]
    counts = [charts.safe, charts.unsafe] + [count for _, count in charts.moderation_labels[:5]]
    colours = [COLOURS[2], COLOURS[3]] + [COLOURS[4]] * (len(names) - 2)
    ax.bar(names, counts, color=colours)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    _count_axis(ax)


CHARTS: dict[str, Draw] = {
    "over_time": draw_over_time,
    "top_labels": draw_top_labels,
    "label_share": draw_label_share,
    "confidence": draw_confidence,
    "moderation": draw_moderation,
}


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buf = io.BytesIO()
    # no Software/date metadata: the same data gives the same bytes
    figure.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def chart_png(name: str, charts: Charts, size: tuple[float, float] = (6.0, 3.4)) -> bytes:
    """One chart as PNG bytes (for the PDF)."""
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    CHARTS[name](figure.add_subplot(), charts)
    return _png(figure)


def charts_png(data: ReportData) -> bytes:
    """The report's "png" format: every chart in one grid under a heading."""
    figure = Figure(figsize=(12.0, 10.5), dpi=DPI, layout="constrained")
    images = f"{data.total} image{'' if data.total == 1 else 's'}"
    figure.suptitle(f"{data.title}: {images} ({data.period})", fontsize=13)
    grid = figure.add_gridspec(3, 2)
    CHARTS["over_time"](figure.add_subplot(grid[0, :]), data.charts)
    CHARTS["top_labels"](figure.add_subplot(grid[1, 0]), data.charts)
    CHARTS["label_share"](figure.add_subplot(grid[1, 1]), data.charts)
    CHARTS["confidence"](figure.add_subplot(grid[2, 0]), data.charts)
    CHARTS["moderation"](figure.add_subplot(grid[2, 1]), data.charts)
    return _png(figure)
