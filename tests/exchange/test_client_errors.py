"""Error mapping over real HTTP: what the caller is told for every way an answer can go wrong."""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.wrappers import Response

from rebalancer.errors import (
    AuthError,
    BadResponse,
    ClockError,
    ExchangeError,
    OutcomeUnknown,
    RateLimited,
    RejectedError,
    RequestError,
    TransientError,
)
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.models import Side, SymbolRules, Target

from .conftest import API_KEY, SECRET, CannedServer, SleepRecorder, drop, envelope

RULES = SymbolRules("btcusdt", "btc", "usdt", price_precision=2, amount_precision=4)
PLACE = [Target("buy[0]", Side.BUY, Decimal("100.00"), Decimal("1.0000"))]
TICKER = envelope({"buy": "1", "sell": "2", "last": "1.5"})


def slow(seconds: float, body: str) -> Any:
    def handler(_request: Any) -> Response:
        time.sleep(seconds)
        return Response(body)

    return handler


# Writes: an answer lost after sending is an unknown outcome; a refusal before applying is not.

WRITE_CASES = [
    ("500", lambda c: c.add("mass_replaceV2", "oops", status=500), OutcomeUnknown),
    ("503", lambda c: c.add("mass_replaceV2", "", status=503), OutcomeUnknown),
    ("dropped", lambda c: c.add_handler("mass_replaceV2", drop), OutcomeUnknown),
    ("not json", lambda c: c.add("mass_replaceV2", "<html>gateway</html>"), OutcomeUnknown),
    ("system error code", lambda c: c.add("mass_replaceV2", envelope(None, code="100001")), OutcomeUnknown),
    ("timeout", lambda c: c.add_handler("mass_replaceV2", slow(1.0, envelope(None))), OutcomeUnknown),
    ("429", lambda c: c.add("mass_replaceV2", "", status=429, headers={"Retry-After": "3"}), RateLimited),
    ("rate code", lambda c: c.add("mass_replaceV2", envelope(None, code=110041, msg="slow")), RateLimited),
    ("balance", lambda c: c.add("mass_replaceV2", envelope(None, code="19", msg="no money")), RejectedError),
    ("unknown code", lambda c: c.add("mass_replaceV2", envelope(None, code="777")), RejectedError),
    ("signature", lambda c: c.add("mass_replaceV2", envelope(None, code="100005")), AuthError),
    ("illegal", lambda c: c.add("mass_replaceV2", envelope(None, code=100004)), RequestError),
    ("403 page", lambda c: c.add("mass_replaceV2", "forbidden", status=403), AuthError),
    ("404 page", lambda c: c.add("mass_replaceV2", "nope", status=404), RequestError),
]


@pytest.mark.parametrize(("case", "setup", "error"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_write_errors(canned: CannedServer, case: str, setup: Any, error: type[ExchangeError]) -> None:
    setup(canned)
    recorded: list[tuple[str, dict[str, str], object]] = []
    # Only the slow answer needs a short total (a request's whole time): the others are immediate, and 0.3 s could
    # expire before the write under load.
    profile = ExchangeProfile(read_timeout=0.3 if case == "timeout" else 5.0)
    limiter = KeyLimiter(RateLimit(100, 1.0), RateLimit(100, 1.0))
    hook = recorded.append
    with (
        OpenApiClient(canned.url, API_KEY, SECRET, profile, limiter=limiter, on_write=lambda *a: hook(a)) as client,
        pytest.raises(error) as caught,
    ):
        client.replace(RULES, ["1"], PLACE)
    assert type(caught.value) is error
    assert caught.value.endpoint == "mass_replaceV2"
    assert SECRET not in str(caught.value) and API_KEY not in str(caught.value)
    assert len(canned.calls("mass_replaceV2")) == 1, "a write is never retried"
    (call,) = canned.calls("mass_replaceV2")
    sent = {k: v for k, v in call.params.items() if k not in ("api_key", "time", "sign")}
    assert caught.value.request is not None and caught.value.request.params() == sent
    ((endpoint, params, answer),) = recorded
    assert endpoint == "mass_replaceV2"
    assert "api_key" not in params and "sign" not in params and params["symbol"] == "btcusdt"
    assert isinstance(answer, str) and error.__name__ in answer


def test_rejection_carries_code_and_message(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("mass_replaceV2", envelope(None, code="10067", msg="price outside band"))
    with pytest.raises(RejectedError) as caught:
        client.replace(RULES, [], PLACE)
    assert caught.value.code == "10067"
    assert "price outside band" in str(caught.value)


def test_429_honours_retry_after(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("mass_replaceV2", "", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        client.replace(RULES, ["1"], [])
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        ("2.5", 2.5, 2.5),
        ("inf", None, None),
        ("soon", None, None),
        ("99999", 300.0, 300.0),
        ("date+60", 55, 61),
    ],
)
def test_retry_after_forms(
    client: OpenApiClient, canned: CannedServer, header: str, low: float | None, high: float | None
) -> None:
    if header == "date+60":
        header = email.utils.formatdate(time.time() + 60, usegmt=True)
    canned.add("cancel_order_all", "", status=429, headers={"Retry-After": header})
    with pytest.raises(RateLimited) as caught:
        client.cancel_all("btcusdt")
    seconds = caught.value.retry_after
    if low is None:
        assert seconds is None
    else:
        assert seconds is not None and low <= seconds <= high  # type: ignore[operator]


def test_connection_refused_is_transient_not_unknown() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        OpenApiClient(f"http://127.0.0.1:{port}", API_KEY, SECRET) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.replace(RULES, ["1"], [])
    assert type(caught.value) is TransientError
    assert "nothing was sent" in str(caught.value)


def test_a_successful_write_is_recorded_without_secrets(canned: CannedServer) -> None:
    canned.add("cancel_order_all", envelope({"done": 1}))
    recorded: list[Any] = []
    with OpenApiClient(canned.url, API_KEY, SECRET, on_write=lambda *a: recorded.append(a)) as client:
        client.cancel_all("btcusdt")
    ((endpoint, params, answer),) = recorded
    assert (endpoint, answer) == ("cancel_order_all", {"done": 1})
    assert set(params) == {"symbol", "time"}


def test_a_failing_hook_does_not_fail_the_write(canned: CannedServer, caplog: pytest.LogCaptureFixture) -> None:
    canned.add("cancel_order_all", envelope(None))

    def broken(*_args: Any) -> None:
        raise RuntimeError("disk full")

    with OpenApiClient(canned.url, API_KEY, SECRET, on_write=broken) as client:
        client.cancel_all("btcusdt")
    assert "on_write hook failed" in caplog.text


# Reads: retried on transient failures, a bounded number of times.


@pytest.mark.parametrize(
    "first",
    [
        lambda c: c.add("get_ticker", "", status=502),
        lambda c: c.add_handler("get_ticker", drop),
        lambda c: c.add("get_ticker", envelope(None, code=13)),
        lambda c: c.add("get_ticker", "", status=429),
    ],
)
def test_reads_retry_transient_failures(
    client: OpenApiClient, canned: CannedServer, sleeps: SleepRecorder, first: Any
) -> None:
    first(canned)
    canned.add("get_ticker", TICKER)
    assert client.ticker("btcusdt").bid == Decimal(1)
    assert len(canned.calls("get_ticker")) == 2
    assert sleeps.delays, "the retry backs off first"


def test_read_retries_are_bounded(client: OpenApiClient, canned: CannedServer, sleeps: SleepRecorder) -> None:
    canned.always("get_ticker", lambda _r: Response("", status=500))
    with pytest.raises(TransientError, match="HTTP 500"):
        client.ticker("btcusdt")
    assert len(canned.calls("get_ticker")) == 1 + client.profile.read_retries
    assert all(0 <= d <= client.profile.backoff_max for d in sleeps.delays)


def test_read_retry_waits_at_least_retry_after(
    client: OpenApiClient, canned: CannedServer, sleeps: SleepRecorder
) -> None:
    canned.add("get_ticker", "", status=429, headers={"Retry-After": "4"})
    canned.add("get_ticker", TICKER)
    client.ticker("btcusdt")
    assert sleeps.delays[0] >= 4


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda c: c.add("user/account", envelope(None, code="100005")), AuthError),
        (lambda c: c.add("user/account", "not json"), BadResponse),
        (lambda c: c.add("user/account", envelope({"coin_list": "x"})), BadResponse),
    ],
)
def test_reads_do_not_retry_definite_errors(
    client: OpenApiClient, canned: CannedServer, setup: Any, error: type[ExchangeError]
) -> None:
    setup(canned)
    with pytest.raises(error, match="user/account"):
        client.balances()
    assert len(canned.calls("user/account")) == 1


def test_a_timed_out_read_is_transient(canned: CannedServer, sleeps: SleepRecorder) -> None:
    canned.always("get_ticker", slow(1.0, TICKER))
    profile = ExchangeProfile(read_timeout=0.2, read_retries=0)
    with (
        OpenApiClient(canned.url, API_KEY, SECRET, profile, sleep=sleeps) as client,
        pytest.raises(TransientError, match=r"Timeout|no complete answer"),
    ):
        client.ticker("btcusdt")


# The clock: a refused time carries the offset measured from the server's Date header.


def test_clock_error_on_a_write_measures_the_offset(client: OpenApiClient, canned: CannedServer) -> None:
    canned.date_skew_s = 120
    canned.add("cancel_order_all", envelope(None, code="100008", msg="time expired"))
    canned.add("cancel_order_all", envelope(None))
    with pytest.raises(ClockError) as caught:
        client.cancel_all("btcusdt")
    offset = caught.value.offset_ms
    assert offset is not None and 115_000 <= offset <= 125_000
    assert client.transport.time_offset_ms == offset
    client.cancel_all("btcusdt")
    first, second = (int(c.params["time"]) for c in canned.calls("cancel_order_all"))
    assert 115_000 <= second - first <= 125_000


def test_clock_error_on_a_read_is_retried_once_with_the_correction(client: OpenApiClient, canned: CannedServer) -> None:
    canned.date_skew_s = -90
    canned.add("user/account", envelope(None, code=100008))
    canned.add("user/account", envelope({"coin_list": []}))
    client.balances()
    first, second = (int(c.params["time"]) for c in canned.calls("user/account"))
    assert -95_000 <= second - first <= -85_000


def test_clock_error_twice_is_raised(client: OpenApiClient, canned: CannedServer) -> None:
    canned.always("user/account", lambda _r: Response(envelope(None, code=100008)))
    with pytest.raises(ClockError):
        client.balances()
    assert len(canned.calls("user/account")) == 2


def test_secrets_never_reach_the_logs(
    client: OpenApiClient, canned: CannedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canned.add("user/account", "", status=500)
    canned.add("user/account", envelope({"coin_list": []}))
    canned.add("mass_replaceV2", envelope(None, code="110041"))
    client.balances()
    with pytest.raises(RateLimited):
        client.replace(RULES, ["5"], [])
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("rebalancer")]
    assert ours, "the client logs its requests at debug level"
    assert SECRET not in caplog.text
    assert not [line for line in ours if API_KEY in line or "sign" in line]
