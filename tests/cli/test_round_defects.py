"""The red-team round's defects, each through the command line against the sandbox and local servers: the loss
limit while the reference source is down, credentials and plain http in every URL of a job file, order rows that
claim more fill than volume, and names with a trailing line break."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from werkzeug.wrappers import Request, Response

from rebalancer.models import Side
from tests.cli.conftest import Answer


def job_text(name: str, url: str, *, reference: str = "mid", limits: str = "{band: 10%}", extra: str = "") -> str:
    """A one-level ladder job (tracked) with the given reference, limits and extra keys."""
    return (
        f'version: 1\nname: {name}\nsymbol: btcusdt\nexchange: {{url: "{url}"}}\nreference: {reference}\n'
        'ladder:\n  buy: {levels: 1, first: 0.5%, step: 0.25%, size: "0.01"}\n'
        '  sell: {levels: 1, first: 0.5%, step: 0.25%, size: "0.01"}\n'
        f"limits: {limits}\nownership: tracked\n{extra}"
    )


def _write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _status(cli: Callable[..., Result], name: str) -> dict[str, Any]:
    shown = cli("status", "--json")
    assert shown.exit_code == 0, shown.output
    (row,) = [r for r in json.loads(shown.output) if r["job"] == name]
    return row


def _book(sandbox: Any) -> tuple[Any, ...]:
    return tuple(sandbox.engine.open_orders(sandbox.api_key, "btcusdt"))


# Defect 1: a stale or unreachable reference must never hide a loss the venue's own book shows.


def test_the_loss_limit_fires_on_the_venue_book_while_the_reference_source_is_down(
    cli: Callable[..., Result], sandbox: Any, venue: Callable[[Answer], str], tmp_path: Path
) -> None:
    up = {"yes": True}
    mid = sandbox.engine.mid("btcusdt")

    def quote(request: Request) -> Response:
        if not up["yes"]:
            return Response("down for maintenance", status=503)
        return Response(json.dumps({"bid": str(mid - 1), "ask": str(mid + 1)}), mimetype="application/json")

    source = venue(quote)
    reference = f'{{source: {{url: "{source}/price", bid: /bid, ask: /ask}}, max_age: 10s}}'
    path = _write(tmp_path, job_text("marked", sandbox.url, reference=reference, limits='{band: 10%, max_loss: "1"}'))
    first = cli("apply", str(path), "--yes")
    assert first.exit_code == 0, first.output
    (sell,) = [o for o in _book(sandbox) if o.side is Side.SELL]
    sandbox.engine.fill(int(sell.id))  # short 0.01 at about mid × 1.005
    up["yes"] = False  # the reference source goes down ...
    sandbox.engine.set_price("btcusdt", mid * Decimal("1.05"))  # ... while this venue's market rises 5 %
    # Marked at the last trusted reference (mid) the short is 1.5 in profit; at this venue's ask it has lost
    # 0.01 × (1.05 − 1.005) × mid ≈ 13.5, past the limit of 1.
    second = cli("apply", str(path), "--yes")
    assert second.exit_code == 0, second.output
    row = _status(cli, "marked")
    assert row["paused_by"] == "max_loss", row
    assert "past limits.max_loss" in row["paused_why"]
    assert _book(sandbox) == (), "the job's orders are cancelled"


# Defects 3 and 9: every URL of a job file keeps the rules exchange.url keeps.


@pytest.mark.parametrize(
    ("reference", "extra", "where"),
    [
        ('{source: "https://trader:hunter22@venue.example.com"}', "", "reference.source"),
        ('{source: {url: "https://trader:hunter22@venue.example.com/", bid: /b, ask: /a}}', "", "reference.source.url"),
        ("mid", 'notify: {webhook: "https://trader:hunter22@hooks.example.com/x"}\n', "notify.webhook"),
    ],
)
def test_credentials_in_any_url_are_refused_at_validation_without_echoing_them(
    cli: Callable[..., Result], tmp_path: Path, reference: str, extra: str, where: str
) -> None:
    path = _write(tmp_path, job_text("creds", "sandbox", reference=reference, extra=extra))
    result = cli("validate", str(path))
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if f": {where}: " in line]
    assert line.startswith(f"{path}:") and "credentials" in line
    assert "hunter22" not in result.output and "trader" not in result.output


def test_an_open_api_reference_url_with_a_query_is_refused_at_validation(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    path = _write(tmp_path, job_text("query", "sandbox", reference='{source: "https://venue.example.com/?t=abc"}'))
    result = cli("validate", str(path))
    assert result.exit_code == 1
    assert ": reference.source: a base URL carries no query or fragment" in result.output


def test_a_json_endpoint_token_never_reaches_plans_history_or_the_store(
    cli: Callable[..., Result], sandbox: Any, venue: Callable[[Answer], str], tmp_path: Path
) -> None:
    source = venue(lambda request: Response("no", status=500))
    token = "tok3n-5ecret-value"
    reference = f'{{source: {{url: "{source}/p?apikey={token}", bid: /b, ask: /a}}}}'
    path = _write(tmp_path, job_text("tokened", sandbox.url, reference=reference))
    shown = [cli("plan", str(path)), cli("plan", str(path), "--json"), cli("apply", str(path), "--yes")]
    shown += [cli("history", "--json"), cli("status", "--json")]
    assert all(r.exit_code == 0 for r in shown), [r.output for r in shown]
    assert "is unavailable" in shown[0].output
    for result in shown:
        assert token not in result.output
    store = (tmp_path / "state" / "state.db").read_bytes()
    assert token.encode() not in store


@pytest.mark.parametrize(
    ("reference", "extra"),
    [
        ('{source: "ftp://venue.example.com/?token=abcdef123"}', ""),
        ('{source: {url: "gopher://venue.example.com/?token=abcdef123", bid: /b, ask: /a}}', ""),
        ("mid", 'notify: {webhook: "ftp://hooks.example.com/x?token=abcdef123"}\n'),
    ],
)
def test_a_url_refused_for_its_shape_is_not_echoed(
    cli: Callable[..., Result], tmp_path: Path, reference: str, extra: str
) -> None:
    path = _write(tmp_path, job_text("echo", "sandbox", reference=reference, extra=extra))
    result = cli("validate", str(path))
    assert result.exit_code == 1 and f"{path}:" in result.output
    assert "abcdef123" not in result.output


@pytest.mark.parametrize(
    "reference",
    ['{source: "http://venue.example.com"}', '{source: {url: "http://venue.example.com/p", bid: /b, ask: /a}}'],
)
def test_plain_http_reference_to_another_host_is_refused_unless_insecure(
    cli: Callable[..., Result], tmp_path: Path, reference: str
) -> None:
    path = _write(tmp_path, job_text("plain", "sandbox", reference=reference))
    result = cli("validate", str(path))
    assert result.exit_code == 1
    assert "plain http to a host other than this machine" in result.output
    assert f"{path}:5:" in result.output
    allowed = _write(tmp_path, job_text("plain", "sandbox", reference=reference[:-1] + ", insecure: true}"))
    assert cli("validate", str(allowed)).exit_code == 0


# Defect 7: an order row claiming more fill than its volume is an exchange error, not a fill.


def test_an_order_row_filled_beyond_its_volume_is_reported_and_never_enters_the_ledger(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    path = _write(tmp_path, job_text("overfill", sandbox.url, limits='{band: 10%, max_loss: "1"}'))
    assert cli("apply", str(path), "--yes").exit_code == 0
    orders = {o.side: o for o in _book(sandbox)}
    for side in (Side.BUY, Side.SELL):  # bought low and sold high 100 times over: a fake profit of about 300
        with sandbox.engine.lock:
            record = sandbox.engine.orders[int(orders[side].id)]
            record.deal_volume = record.volume * 100
    result = cli("apply", str(path), "--yes")
    assert f"exchange error: order {orders[Side.SELL].id} reports 1.0000 filled of its volume 0.0100" in result.output
    row = _status(cli, "overfill")
    assert row["fills"] == {}, "nothing was learnt from the rows"
    history = json.loads(cli("history", "--json").output)
    assert any("exchange error: order" in w for p in history for w in p["warnings"])


def test_a_row_that_grows_its_volume_with_its_fill_is_not_learnt_past_the_volume_placed(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    path = _write(tmp_path, job_text("grown", sandbox.url, limits='{band: 10%, max_loss: "1"}'))
    assert cli("apply", str(path), "--yes").exit_code == 0
    (buy,) = [o for o in _book(sandbox) if o.side is Side.BUY]
    with sandbox.engine.lock:
        record = sandbox.engine.orders[int(buy.id)]
        record.volume = record.deal_volume = Decimal(5)  # "5 of 5 filled" for an order placed with 0.01
    result = cli("apply", str(path), "--yes")
    assert f"exchange error: order {buy.id} reports 5.0000 filled of its volume 0.0100" in result.output
    assert _status(cli, "grown")["fills"] == {}


# Defect 10: a trailing line break is not part of a name.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", '"trail\\n"'),
        ("symbol", '"btcusdt\\n"'),
        ("exchange", '{url: "https://openapi.example.com\\n"}'),
        ("exchange", '{url: sandbox, api_key_env: "MY_KEY\\n"}'),
        ("reference", '{source: sandbox, symbol: "ethusdt\\n"}'),
    ],
)
def test_a_trailing_line_break_fails_validation(
    cli: Callable[..., Result], tmp_path: Path, field: str, value: str
) -> None:
    lines = job_text("trail", "sandbox").splitlines()
    replaced = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in lines]
    path = _write(tmp_path, "\n".join(replaced) + "\n")
    result = cli("validate", str(path))
    assert result.exit_code == 1, (field, value, result.output)
    assert f"{path}:" in result.output


def test_init_refuses_a_symbol_with_a_trailing_line_break(cli: Callable[..., Result]) -> None:
    result = cli("init", "--symbol", "btcusdt\n")
    assert result.exit_code == 1
    assert "Error: --symbol" in result.output
