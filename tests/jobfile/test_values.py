"""What a valid job file turns into: exact decimals, defaults that agree with the Job dataclasses, hashes."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rebalancer import job as jobmod
from rebalancer.jobfile.checks import to_amount, to_rate, to_seconds
from rebalancer.jobfile.load import build_job, load_job
from rebalancer.jobfile.schema import SCHEMA_RESOURCE, default_of, schema, subschema
from rebalancer.models import Side

HEADER = "version: 1\nname: t\nsymbol: btcusdt\n"
MINIMAL = HEADER + "ladder:\n  buy: {levels: 3, first: 1%, step: 1%, size: 1}\n"


def _field_default(cls: type, name: str) -> Any:
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


# (schema path, dataclass, field, converter from the schema's default to the field's value)
DEFAULTS: list[tuple[tuple[str, ...], type, str, Callable[[Any], Any]]] = [
    (("paused",), jobmod.Job, "paused", bool),
    (("reference",), jobmod.Reference, "kind", jobmod.ReferenceKind),
    (("ownership",), jobmod.Job, "ownership", jobmod.Ownership),
    (("on_stop",), jobmod.Job, "on_stop", jobmod.OnStop),
    (("exchange", "url"), jobmod.ExchangeConfig, "url", str),
    (("exchange", "api_key_env"), jobmod.ExchangeConfig, "api_key_env", str),
    (("exchange", "secret_key_env"), jobmod.ExchangeConfig, "secret_key_env", str),
    (("exchange", "time_unit"), jobmod.ExchangeConfig, "time_unit", jobmod.TimeUnit),
    (("exchange", "page_size"), jobmod.ExchangeConfig, "page_size", int),
    (("exchange", "insecure"), jobmod.ExchangeConfig, "insecure", bool),
    (("exchange", "timeout"), jobmod.ExchangeConfig, "timeout_seconds", to_seconds),
    (("exchange", "max_batch"), jobmod.ExchangeConfig, "max_batch", int),
    (("exchange", "sign"), jobmod.ExchangeConfig, "sign", jobmod.SignMethod),
    (("exchange", "account"), jobmod.ExchangeConfig, "account", jobmod.AccountUse),
    (("exchange", "stream_stale"), jobmod.ExchangeConfig, "stream_stale_seconds", to_seconds),
    (("exchange", "rate_limit", "reads"), jobmod.ExchangeConfig, "read_rate", to_rate),
    (("exchange", "rate_limit", "writes"), jobmod.ExchangeConfig, "write_rate", to_rate),
    (("schedule", "jitter"), jobmod.Schedule, "jitter_seconds", to_seconds),
    (("schedule", "min_gap"), jobmod.Schedule, "min_gap_seconds", to_seconds),
    (("tolerance", "price"), jobmod.Tolerance, "price", to_amount),
    (("tolerance", "size"), jobmod.Tolerance, "size", to_amount),
    (("limits", "post_only"), jobmod.Limits, "post_only", bool),
    (("limits", "max_jump"), jobmod.Limits, "max_jump", to_amount),
    (("limits", "on_blind"), jobmod.Limits, "on_blind", jobmod.OnBlind),
    (("ladder", "buy", "spacing"), jobmod.SideLadder, "spacing", jobmod.Spacing),
    (("notify", "after_failures"), jobmod.Notify, "after_failures", int),
]


@pytest.mark.parametrize(("path", "cls", "name", "convert"), DEFAULTS, ids=[".".join(d[0]) for d in DEFAULTS])
def test_schema_default_matches_the_dataclass_default(path: Any, cls: type, name: str, convert: Any) -> None:
    assert convert(default_of(path)) == _field_default(cls, name)


def test_every_leaf_default_in_the_schema_is_covered_by_the_table() -> None:
    covered = {d[0] for d in DEFAULTS}
    leaves = set()

    def visit(path: tuple[str, ...]) -> None:
        node = subschema(path)
        for key in node.get("properties", {}):
            child = subschema((*path, key))
            if "properties" in child:
                visit((*path, key))
            elif "default" in child:
                leaves.add((*path, key))

    visit(())
    covered |= {("ladder", "sell", "spacing")}
    assert leaves == covered


def test_a_minimal_file_gets_exactly_the_dataclass_defaults(write: Callable[..., Path]) -> None:
    job = load_job(write(MINIMAL))
    assert job.exchange == jobmod.ExchangeConfig()
    assert job.schedule == jobmod.Schedule()
    assert job.reference == jobmod.Reference()
    assert job.tolerance == jobmod.Tolerance()
    assert job.limits == jobmod.Limits()
    assert (job.ownership, job.on_stop, job.paused) == (jobmod.Ownership.TRACKED, jobmod.OnStop.KEEP, False)
    assert job.buy is not None and job.buy.spacing is jobmod.Spacing.LINEAR and job.sell is None


def test_bare_numbers_are_exact_decimals_from_the_source_text(write: Callable[..., Path]) -> None:
    text = HEADER + (
        "reference: 6400.10\n"
        "ladder:\n  sell: {levels: 2, first: 0.1, step: 0.30000000000000004, size: 0.1, size_step: -0.01}\n"
        "orders:\n  - {side: buy, price: 1234.5678901234567890123, size: '0.1'}\n"
        "tolerance: {price: 0.1%, size: 0.05}\n"
    )
    job = load_job(write(text))
    assert job.reference == jobmod.Reference(jobmod.ReferenceKind.FIXED, Decimal("6400.10"))
    assert str(job.reference.price) == "6400.10"
    assert job.sell is not None
    assert job.sell.first == jobmod.Amount(Decimal("0.1"))
    assert job.sell.step.value == Decimal("0.30000000000000004")
    assert job.sell.size == Decimal("0.1") and job.sell.size_step == Decimal("-0.01")
    assert job.orders == (jobmod.FixedOrder(Side.BUY, Decimal("1234.5678901234567890123"), Decimal("0.1")),)
    percent, absolute = jobmod.Amount(Decimal("0.1"), True), jobmod.Amount(Decimal("0.05"))
    assert job.tolerance == jobmod.Tolerance(percent, absolute)
    assert all(type(v) is not float for v in _leaves(dataclasses.asdict(job)))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", Decimal("0.5")), ("30s", Decimal(30)), ("5m", Decimal(300)), ("1h", Decimal(3600)),
     ("2.5", Decimal("2.5")), ("7", Decimal(7)), ("0.25m", Decimal(15))],
)  # fmt: skip
def test_durations(write: Callable[..., Path], text: str, seconds: Decimal) -> None:
    job = load_job(write(MINIMAL + f"schedule: {{every: {text}, jitter: {text}}}\n"))
    assert job.schedule.every_seconds == seconds == job.schedule.jitter_seconds


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("10/1s", 10, Decimal(1)), ("100/10s", 100, Decimal(10)), ("600/1m", 600, Decimal(60)),
     ("5/500ms", 5, Decimal("0.5")), ("3/2", 3, Decimal(2))],
)  # fmt: skip
def test_rate_limits(write: Callable[..., Path], text: str, count: int, seconds: Decimal) -> None:
    job = load_job(write(MINIMAL + f"exchange: {{rate_limit: {{reads: '{text}'}}}}\n"))
    assert job.exchange.read_rate == jobmod.Rate(count, seconds)
    assert job.exchange.write_rate == jobmod.Rate(100, Decimal(10)), "an unset kind keeps its default"


def test_cron_schedule_and_the_rest_of_the_keys(write: Callable[..., Path]) -> None:
    text = MINIMAL + (
        "paused: true\n"
        'schedule: {cron: "*/5  * * * 1-5"}\n'
        "exchange: {url: 'http://127.0.0.1:8080', time_unit: s, page_size: 200, api_key_env: K1, "
        "secret_key_env: _S}\n"
        "limits: {max_orders: 7, band: 12, post_only: false}\n"
        "ownership: tracked\non_stop: cancel\nreference: last\n"
    )
    job = load_job(write(text))
    assert job.schedule == jobmod.Schedule(every_seconds=None, cron="*/5 * * * 1-5")
    assert job.exchange == jobmod.ExchangeConfig("http://127.0.0.1:8080", "K1", "_S", jobmod.TimeUnit.S, 200)
    assert job.limits == jobmod.Limits(7, jobmod.Amount(Decimal(12)), post_only=False)
    assert job.paused and job.reference.kind is jobmod.ReferenceKind.LAST
    assert (job.ownership, job.on_stop) == (jobmod.Ownership.TRACKED, jobmod.OnStop.CANCEL)


def test_exchange_profile_keys(write: Callable[..., Path]) -> None:
    text = MINIMAL + (
        "exchange: {url: 'https://h.example/exchange-open-api', timeout: 30s, max_batch: 100, sign: hmac-sha256}\n"
    )
    config = load_job(write(text)).exchange
    expected = (Decimal(30), 100, jobmod.SignMethod.HMAC_SHA256)
    assert (config.timeout_seconds, config.max_batch, config.sign) == expected


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_batch: 0", "exchange.max_batch"),
        ("max_batch: 1001", "exchange.max_batch"),
        ("max_batch: 2.5", "exchange.max_batch"),
        ("sign: sha1", "exchange.sign"),
        ("sign: MD5", "exchange.sign"),
        ("timeout: 0s", "exchange.timeout"),
        ("timeout: -3", "exchange.timeout"),
        ("timeout: 2h", "exchange.timeout: a timeout of at most 600s"),
        ("timeout: soon", "exchange.timeout"),
    ],
)
def test_exchange_profile_keys_out_of_range_are_positioned_problems(
    write: Callable[..., Path], setting: str, message: str
) -> None:
    from rebalancer.errors import JobFileError

    path = write(MINIMAL + f"exchange:\n  {setting}\n")
    with pytest.raises(JobFileError) as error:
        load_job(path)
    assert f"{path}:7:" in str(error.value) and message in str(error.value)


def test_plain_http_to_a_remote_host_is_allowed_when_insecure(write: Callable[..., Path]) -> None:
    job = load_job(write(MINIMAL + "exchange: {url: 'http://10.0.0.5:9000/api', insecure: true}\n"))
    assert job.exchange.insecure and job.exchange.url == "http://10.0.0.5:9000/api"


def test_source_is_the_path_as_given_and_hash_the_file_bytes(write: Callable[..., Path]) -> None:
    path = write(MINIMAL)
    job = load_job(str(path))
    assert job.source == str(path)
    assert job.source_hash == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_environment_variables_are_never_interpolated(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMBOL", "ethusdt")
    job = load_job(write(MINIMAL.replace("btcusdt", "btcusdt") + "exchange: {api_key_env: SYMBOL}\n"))
    assert job.symbol == "btcusdt" and job.exchange.api_key_env == "SYMBOL"


def test_the_schema_ships_in_the_package_and_is_2020_12() -> None:
    assert SCHEMA_RESOURCE == ("schemas", "job.schema.json")
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_build_job_uses_schema_defaults_for_missing_keys() -> None:
    order = {"side": "sell", "price": "1", "size": 2}
    data = {"version": 1, "name": "x", "symbol": "ethusdt", "orders": [order]}
    job = build_job(data)
    assert job.orders == (jobmod.FixedOrder(Side.SELL, Decimal(1), Decimal(2)),)
    assert job.schedule.every_seconds == Decimal(30)
