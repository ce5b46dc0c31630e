"""Details of the pictures a reader trips over: marker labels that share a price never overprint, and the job page
shows its times to the second."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.pictures import ladder_svg
from rebalancer.pictures.ladder_svg import LABEL_GAP, Marker, Row
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.scheduler.pages import StatusPages
from rebalancer.state.store import StateStore
from tests.depth import examples
from tests.jobtext import ladder_job

_MARKER = re.compile(
    r'<g class="marker ([a-z-]+)"[^>]*><line x1="4" x2="\d+" y1="([0-9.]+)" y2="[0-9.]+"/>'
    r'<text x="\d+" y="([0-9.]+)"'
)
_HEIGHT = re.compile(r'<svg [^>]*height="(\d+)"')


def _labels(svg: str) -> dict[str, tuple[float, float]]:
    """Per marker kind: (its line's y, its label's baseline y), read from the drawing."""
    return {kind: (float(line), float(label)) for kind, line, label in _MARKER.findall(svg)}


def _row(price: str) -> Row:
    return Row("place", "BUY", Decimal(price), Decimal("0.01"), price, "0.01", level="buy[0]")


def test_a_reference_on_the_best_bid_gets_two_labels_apart() -> None:
    markers = [
        Marker("reference", Decimal("100"), "100"),
        Marker("best-bid", Decimal("100"), "100"),
        Marker("best-ask", Decimal("101"), "101"),
    ]
    svg = ladder_svg.render([_row("99"), _row("98")], markers, title="t")
    labels = _labels(svg)
    (ref_line, ref_label), (bid_line, bid_label) = labels["reference"], labels["best-bid"]
    assert ref_line == bid_line, "both lines are drawn at the shared price"
    assert ref_label == ref_line - 3, "the first label keeps its place just above the line"
    assert bid_label - ref_label >= LABEL_GAP, "the second is moved out of its way"
    assert labels["best-ask"][1] == labels["best-ask"][0] - 3


@given(
    prices=st.lists(st.integers(min_value=95, max_value=105), min_size=1, max_size=3),
    rows=st.lists(st.integers(min_value=90, max_value=110), min_size=0, max_size=8),
)
@settings(max_examples=examples(200), deadline=None)
def test_marker_labels_never_overlap_and_stay_in_the_picture(prices: list[int], rows: list[int]) -> None:
    kinds = ["reference", "best-bid", "best-ask"]
    markers = [Marker(kinds[i], Decimal(p), str(p)) for i, p in enumerate(prices)]
    svg = ladder_svg.render([_row(str(r)) for r in rows], markers, title="t")
    labels = sorted(label for _, label in _labels(svg).values())
    assert len(labels) == len(markers)
    assert all(b - a >= LABEL_GAP for a, b in itertools.pairwise(labels))
    height = int(_HEIGHT.search(svg).group(1))  # type: ignore[union-attr]
    assert all(0 < y <= height - 4 for y in labels)
    for line, label in _labels(svg).values():
        assert line - 3 <= label <= line - 3 + LABEL_GAP * (len(markers) - 1), "each label stays by its line"


def test_plan_html_of_a_job_hung_from_the_bid_keeps_both_labels_readable(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    job = tmp_path / "bid.yaml"
    job.write_text(ladder_job("bid", sandbox.url, levels=2).replace("reference: mid", "reference: bid"))
    page = tmp_path / "plan.html"
    result = cli("plan", str(job), "--html", str(page))
    assert result.exit_code == 0, result.output
    labels = _labels(page.read_text(encoding="utf-8"))
    assert labels["reference"][0] == labels["best-bid"][0], "the reference is the best bid"
    assert abs(labels["reference"][1] - labels["best-bid"][1]) >= LABEL_GAP


def test_the_job_page_shows_its_times_to_the_second(
    sandbox: Any, tmp_path: Path, wait_for: Callable[..., bool]
) -> None:
    path = tmp_path / "timed.yaml"
    path.write_text(ladder_job("timed", sandbox.url, every="300ms", levels=1, ownership="tracked", limits="{}"))
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=lambda job: open_exchange(job, env), stop_wait=10)
        daemon.start([load_job(path)])
        server = HealthServer(daemon.metrics, "127.0.0.1", 0, daemon.ready, StatusPages(daemon, daemon.holder).respond)
        server.start()
        try:
            assert wait_for(lambda: len(store.history("timed", limit=5)) >= 2)
            text = requests.get(f"{server.url}/jobs/timed", timeout=10).text
        finally:
            server.stop()
            daemon.stop()
    started = re.findall(r"<tr class='pass'[^>]*><td>([^<]+)</td>", text)
    assert len(started) >= 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", s) for s in started), started
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", text), "no fractions of a second anywhere on the page"
