"""render_text: the human form reads like an order book and ends with Terraform's summary line."""

from __future__ import annotations

from rebalancer.cli.render import render_text, summary_line
from rebalancer.core.plan import compute_plan
from rebalancer.job import Limits
from rebalancer.models import OrderStatus, Side
from tests.core.kit import D, job, order, pct, side_ladder, snapshot

B, S = Side.BUY, Side.SELL
JOB = job(buy=side_ladder(levels=2), sell=side_ladder(levels=2), limits=Limits(band=pct("5"), post_only=True))
BOOK = (
    order("504", B, "29700.00", "0.0100"),
    order("505", S, "30150.00", "0.0100"),
    order("9", S, "30150.00", "0.0300", deal="0.0100", status=OrderStatus.PARTIALLY_FILLED),
)


def test_text_reads_like_an_order_book() -> None:
    text = render_text(compute_plan(JOB, snapshot(BOOK), None), color=False)
    lines = text.splitlines()
    assert lines[0] == "Plan for job test-job on btcusdt"
    assert "reference 30000.00" in lines[1] and "best bid 29990.00" in lines[1] and "best ask 30010.00" in lines[1]
    assert lines[2] == "  Ownership: tracked (only orders this job placed)"
    assert lines[3:12] == [
        "SELL",
        "  + sell[1]    30225.00 × 0.0100",
        "  - order 9    30150.00 × 0.0200  (partially_filled)",
        "  = sell[0]    30150.00 × 0.0100  (order 505)",
        "  ---- reference 30000.00 ----",
        "BUY",
        "  + buy[0]     29850.00 × 0.0100",
        "  + buy[1]     29775.00 × 0.0100",
        "  - order 504  29700.00 × 0.0100  (price_out_of_tolerance)",
    ]
    assert lines.index("SELL") < lines.index("BUY")
    assert text.rstrip("\n").splitlines()[-1] == "Plan: 3 to place, 2 to cancel, 1 unchanged."


def test_rows_are_aligned_and_sorted_by_price_descending() -> None:
    text = render_text(compute_plan(JOB, snapshot(BOOK), None), color=False)
    rows = [line for line in text.splitlines() if line[:4] in ("  + ", "  - ", "  = ")]
    prices = [line.split("×")[0].split()[-1] for line in rows]
    assert [D(p) for p in prices] == sorted((D(p) for p in prices), reverse=True)
    assert len({line.index("×") for line in rows}) == 1
    assert any("(order 505)" in line and line.startswith("  = sell[0]") for line in rows)
    assert any("partially_filled" in line and line.startswith("  - order 9") for line in rows)


def test_color_marks_places_green_cancels_red_warnings_yellow() -> None:
    plan = compute_plan(JOB, snapshot((*BOOK, order("7", S, "40000.00", "1"))), None)
    text = render_text(plan, color=True)
    assert "\x1b[32m  + sell[1]" in text and "\x1b[31m  - order 7" in text
    assert plan.warnings == () and "Warnings:" not in text
    assert "\x1b[" not in render_text(plan, color=False)


def test_warnings_are_listed() -> None:
    plan = compute_plan(
        job(buy=side_ladder(levels=2), limits=Limits(band=pct("0.6"), post_only=False)), snapshot(), None
    )
    text = render_text(plan, color=True)
    assert "\x1b[33m  ! buy[1]" in text


def test_no_changes_sentence() -> None:
    plan = compute_plan(job(buy=side_ladder(levels=1)), snapshot((order("1", B, "29850.00", "0.0100"),)), None)
    assert summary_line(plan) == "No changes. Open orders match the target ladder."
    assert render_text(plan, color=False).splitlines()[-1] == "No changes. Open orders match the target ladder."
    assert "= buy[0]" in render_text(plan, color=False)
