"""Exchange profiles: the error-code tables and the time unit."""

from __future__ import annotations

import pytest

from rebalancer.errors import (
    AccountError,
    AuthError,
    ClockError,
    ExchangeError,
    RateLimited,
    RejectedError,
    RequestError,
    TransientError,
)
from rebalancer.exchange.profile import ALT_NUMBERING, ExchangeProfile, RateLimit

TEMPLATE_CASES = [
    ("5", RejectedError),
    ("6", RejectedError),
    ("10063", RejectedError),
    ("8", RejectedError),
    ("9", AccountError),
    ("13", TransientError),
    ("100001", TransientError),
    ("100002", TransientError),
    ("19", RejectedError),
    ("22", RejectedError),
    ("23", RequestError),
    ("10069", RateLimited),
    ("110041", RateLimited),
    ("100004", RequestError),
    ("100005", AuthError),
    ("100007", AuthError),
    ("100008", ClockError),
    ("110025", AccountError),
    ("not_sufficient_funds", RejectedError),
]


@pytest.mark.parametrize(("code", "expected"), TEMPLATE_CASES)
def test_template_table(code: str, expected: type[ExchangeError]) -> None:
    assert ExchangeProfile().classify(code) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("1", TransientError),
        ("2", RequestError),
        ("4", RejectedError),
        ("34", RateLimited),
        ("10069", RejectedError),
    ],
)
def test_alt_numbering(code: str, expected: type[ExchangeError]) -> None:
    assert ExchangeProfile(error_codes=ALT_NUMBERING).classify(code) is expected


def test_unknown_codes_default_by_direction() -> None:
    profile = ExchangeProfile()
    assert profile.classify("424242") is ExchangeError
    assert profile.classify("424242", write=True) is RejectedError


def test_with_codes_overrides_one_entry() -> None:
    profile = ExchangeProfile().with_codes({"5": TransientError})
    assert profile.classify("5") is TransientError
    assert profile.classify("100005") is AuthError


@pytest.mark.parametrize(("unit", "expected"), [("ms", "1562006070123"), ("s", "1562006070")])
def test_time_unit(unit: str, expected: str) -> None:
    assert ExchangeProfile(time_unit=unit).time_value(1562006070123) == expected


@pytest.mark.parametrize("kwargs", [{"time_unit": "us"}, {"page_size": 0}, {"read_retries": -1}, {"read_timeout": 0}])
def test_invalid_profiles_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ExchangeProfile(**kwargs)  # type: ignore[arg-type]


def test_rate_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimit(0, 1.0)
