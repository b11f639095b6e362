"""The stats chart: daily counts from a seeded log (SQLite and PostgreSQL), a PNG of the
size Slack previews well, an empty period that says so, and life without matplotlib."""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dbfixtures import db_url, in_ci, postgres_url, sqlite_url
from seeding import seed_learning, write_learning_catalogue

from bot.admin.chart import (
    HEIGHT_PX,
    INSTALL_HINT,
    WIDTH_PX,
    daily_series,
    render_png,
    stats_chart,
)
from bot.admin.reports import load_activity
from bot.catalogue.loader import load_catalog
from bot.errors import ChartUnavailable
from bot.matching.engine import build_matcher
from bot.store.database import Store
from bot.store.tables import utcnow

__all__ = ["db_url", "postgres_url", "sqlite_url"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def needs_matplotlib() -> None:
    """Skip without matplotlib, except in CI, which installs the chart extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("matplotlib (the chart extra) must be installed in CI")
        pytest.skip(f"matplotlib is not installed ({INSTALL_HINT})")


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_daily_counts_from_a_seeded_log(store: Store, tmp_path: Path) -> None:
    kdir = write_learning_catalogue(tmp_path / "knowledge")
    seeded = seed_learning(store, build_matcher(load_catalog(kdir), "lexical"))
    series = daily_series(load_activity(store, 7, now=seeded.now))
    assert len(series.daily) == 8  # the first and last day are both partly in the period
    by_day = {d.day: d for d in series.daily}
    today, yesterday = seeded.now.date(), (seeded.now - timedelta(days=1)).date()
    assert by_day[today].questions == 0
    # Asked a day ago: two laptop screens and the new laptop, as the matcher decided them.
    kinds = [seeded.decisions[n].kind.value for n in ("cracked1", "cracked_phone",
                                                      "new_laptop")]
    assert (by_day[yesterday].answered, by_day[yesterday].clarified) == (
        kinds.count("answer"), kinds.count("clarify")) == (1, 2)
    assert series.questions == 11  # all but the 20-day-old one
    # The helpful rating (3 days ago) and the not helpful one (2 days ago).
    assert sum(d.rated for d in series.daily) == 2
    share = series.helpful_share()
    assert math.isnan(share[0]) and share[-1] == 0.5


def test_the_chart_is_a_png_of_the_preview_size(store: Store, tmp_path: Path) -> None:
    needs_matplotlib()
    kdir = write_learning_catalogue(tmp_path / "knowledge")
    seeded = seed_learning(store, build_matcher(load_catalog(kdir), "lexical"))
    chart = stats_chart(daily_series(load_activity(store, 30, now=seeded.now)))
    assert chart.note is None and chart.png is not None
    assert png_size(chart.png) == (WIDTH_PX, HEIGHT_PX) == (1200, 675)
    assert chart.alt.startswith("Bar chart of questions per day from ")
    assert "12 questions: " in chart.alt and "50% of 2 ratings helpful" in chart.alt
    (tmp_path / "chart.png").write_bytes(chart.png)


def test_a_period_without_ratings_says_so_instead_of_an_empty_axis(
        store: Store, tmp_path: Path) -> None:
    needs_matplotlib()
    kdir = write_learning_catalogue(tmp_path / "knowledge")
    seeded = seed_learning(store, build_matcher(load_catalog(kdir), "lexical"))
    # The last day holds questions but neither rating (those were 2 and 3 days ago).
    series = daily_series(load_activity(store, 1, now=seeded.now))
    assert series.questions > 0 and sum(d.rated for d in series.daily) == 0
    chart = stats_chart(series)
    assert chart.png is not None and png_size(chart.png) == (WIDTH_PX, HEIGHT_PX)
    assert chart.alt.endswith("; no answer rated yet.")
    assert "a line for the share" not in chart.alt


def test_an_empty_period_says_so_instead_of_drawing(store: Store) -> None:
    store.close()
    series = daily_series(load_activity(store, 7, now=utcnow()))
    chart = stats_chart(series)
    assert chart.png is None
    assert chart.note == "No questions in the last 7 days: nothing to draw."


def test_without_matplotlib_the_chart_says_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch, store: Store, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    kdir = write_learning_catalogue(tmp_path / "knowledge")
    seeded = seed_learning(store, build_matcher(load_catalog(kdir), "lexical"))
    series = daily_series(load_activity(store, 7, now=seeded.now))
    with pytest.raises(ChartUnavailable):
        render_png(series, "t")
    chart = stats_chart(series)
    assert chart.png is None
    assert chart.note == f"No chart: matplotlib is not installed ({INSTALL_HINT})"
