"""The stats as a picture: questions per day stacked by decision, and the share rated helpful.

    Activity ──daily_series()──▶ StatsSeries (one row per UTC day) ──stats_chart()──▶ Chart
                                                                      PNG bytes, or a note

The picture is for Slack, where it is first seen as a preview a few hundred pixels wide:
1200 by 675 pixels (16:9), type large enough to read at half that size, dates on the axis,
and the Okabe-Ito palette, whose colours stay apart for the common kinds of colour
blindness; declined days are hatched too, so nothing depends on colour alone. Every chart
carries a one-sentence description, the alt text Slack shows to screen readers.

matplotlib draws it, through its object API (`Figure` with the Agg canvas: no pyplot, no
global state, safe in a listener thread). It is the optional `chart` extra: a heavy
library for one picture, so without it the text report works and says how to get it.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.util import find_spec
from typing import Any

from bot.admin.reports import Activity
from bot.errors import ChartUnavailable
from bot.wording import plural

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 150
# The extra's one package by name: `pip install 'concierge[chart]'` would make pip resolve
# Concierge's dependencies again, and with them the model package's sentence-transformers
# and torch, which the lock leaves out (docs/development.md, Installing).
INSTALL_HINT = "pip install 'matplotlib>=3.8'"
# Okabe & Ito (2008), "Color Universal Design".
ANSWERED, CLARIFIED, DECLINED, HELPFUL = "#0072B2", "#E69F00", "#D55E00", "#000000"
FONT_SIZE = 13
SHARE_DAYS = 7


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    answered: int = 0
    clarified: int = 0
    declined: int = 0
    helpful: int = 0
    rated: int = 0

    @property
    def questions(self) -> int:
        return self.answered + self.clarified + self.declined


@dataclass(frozen=True, slots=True)
class StatsSeries:
    """Every UTC day of a period, empty days included (a gap in use is information)."""

    days: int
    since: datetime
    until: datetime
    daily: tuple[Day, ...]

    @property
    def questions(self) -> int:
        return sum(d.questions for d in self.daily)

    def share(self, part: int) -> str:
        return f"{part / self.questions:.0%}" if self.questions else "-"

    def summary(self) -> str:
        total = self.questions
        answered = sum(d.answered for d in self.daily)
        clarified = sum(d.clarified for d in self.daily)
        declined = sum(d.declined for d in self.daily)
        rated = sum(d.rated for d in self.daily)
        helpful = sum(d.helpful for d in self.daily)
        text = (f"{plural(total, 'question')}: {self.share(answered)} answered, "
                f"{self.share(clarified)} clarified, {self.share(declined)} declined")
        if rated:
            text += f"; {helpful / rated:.0%} of {plural(rated, 'rating')} helpful"
        else:
            text += "; no answer rated yet"
        return text

    def helpful_share(self) -> list[float]:
        """Per day, the share of ratings helpful over the `SHARE_DAYS` up to it (NaN where
        there were none): a day's two or three ratings alone would only draw noise."""
        out = []
        for n in range(len(self.daily)):
            window = self.daily[max(0, n - SHARE_DAYS + 1):n + 1]
            rated = sum(d.rated for d in window)
            out.append(sum(d.helpful for d in window) / rated if rated else math.nan)
        return out

    def span(self) -> str:
        first, last = self.daily[0].day, self.daily[-1].day
        return f"{first:%d %b %Y} to {last:%d %b %Y}"


def daily_series(activity: Activity) -> StatsSeries:
    decided: dict[date, Counter[str]] = {}
    for q in activity.questions:
        decided.setdefault(q.asked_at.date(), Counter())[q.decision] += 1
    rated: dict[date, Counter[bool]] = {}
    for r in activity.ratings:
        if r.given_at is not None:
            rated.setdefault(r.given_at.date(), Counter())[r.helpful] += 1
    first, last = activity.since.date(), activity.until.date()
    daily = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        counts, ratings = decided.get(day, Counter()), rated.get(day, Counter())
        daily.append(Day(day, counts["answer"], counts["clarify"], counts["none"],
                         ratings[True], ratings[True] + ratings[False]))
    return StatsSeries(activity.days, activity.since, activity.until, tuple(daily))


@dataclass(frozen=True, slots=True)
class Chart:
    """A stats picture, or why there is none."""

    title: str
    alt: str
    """What the picture shows, in one sentence (alt text)."""
    png: bytes | None = None
    note: str | None = None
    """Why there is no picture: an empty period, or the chart extra is not installed."""

    @property
    def filename(self) -> str:
        return "concierge-stats.png"


def chart_available() -> bool:
    return find_spec("matplotlib") is not None


def stats_chart(series: StatsSeries) -> Chart:
    """The picture of `series`; without questions, or without matplotlib, a note instead."""
    title = f"Concierge: questions per day, {series.span()} (UTC)"
    if not series.questions:
        return Chart(title, f"No questions from {series.span()}.",
                     note=f"No questions in the last {series.days} "
                          f"day{'s' if series.days != 1 else ''}: nothing to draw.")
    rated = any(d.rated for d in series.daily)
    line = (", with a line for the share of ratings that were helpful over the past "
            f"{SHARE_DAYS} days" if rated else "")
    alt = (f"Bar chart of questions per day from {series.span()}, stacked by answered, "
           f"clarified and declined{line}. {series.summary()}.")
    try:
        png = render_png(series, title)
    except ChartUnavailable as exc:
        return Chart(title, alt, note=f"No chart: {exc}")
    return Chart(title, alt, png)


def render_png(series: StatsSeries, title: str) -> bytes:
    """The PNG; raises `ChartUnavailable` without matplotlib."""
    try:
        from matplotlib import dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator, PercentFormatter
    except ImportError as exc:
        raise ChartUnavailable(f"matplotlib is not installed ({INSTALL_HINT})",
                               package="matplotlib") from exc
    import numpy as np

    # matplotlib's own date numbers (days as floats): what its date axis reads. Its date
    # helpers carry no annotations.
    days = mdates.date2num([datetime(d.day.year, d.day.month, d.day.day)  # type: ignore[no-untyped-call]
                            for d in series.daily])
    answered = np.array([d.answered for d in series.daily])
    clarified = np.array([d.clarified for d in series.daily])
    declined = np.array([d.declined for d in series.daily])
    share = np.array(series.helpful_share(), dtype=float)

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 if len(days) <= 45 else 1.0
    bars = [
        axes.bar(days, answered, width, color=ANSWERED, label="answered"),
        axes.bar(days, clarified, width, bottom=answered, color=CLARIFIED, label="clarified"),
        axes.bar(days, declined, width, bottom=answered + clarified, color=DECLINED,
                 hatch="///", edgecolor="white", linewidth=0, label="declined"),
    ]
    # Room above the tallest bar, so that neither it nor a 100% point touches the frame.
    axes.set_ylim(0, max(float((answered + clarified + declined).max()) * 1.12, 1.0))
    axes.set_ylabel("questions", fontsize=FONT_SIZE)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.set_xlim(float(days[0]) - 0.6, float(days[-1]) + 0.6)
    axes.tick_params(labelsize=FONT_SIZE - 1)
    axes.spines[["top"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)

    handles: list[Any] = list(bars)
    if not np.isnan(share).all():
        # Without a single rating an empty percent axis would only puzzle; the summary
        # line says that nothing was rated.
        helpful = axes.twinx()
        (line,) = helpful.plot(days, share, color=HELPFUL, marker="o", markersize=4,
                               linewidth=2, label=f"rated helpful, {SHARE_DAYS} days (right)")
        helpful.set_ylim(0, 1.12)
        helpful.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        helpful.set_ylabel("rated helpful", fontsize=FONT_SIZE)
        helpful.tick_params(labelsize=FONT_SIZE - 1)
        helpful.spines[["top"]].set_visible(False)
        handles.append(line)

    figure.suptitle(title, fontsize=FONT_SIZE + 2, fontweight="bold")
    axes.set_title(series.summary(), fontsize=FONT_SIZE - 1, loc="left")
    figure.legend(handles=handles, loc="outside lower center", ncols=4,
                  frameon=False, fontsize=FONT_SIZE - 1)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()
