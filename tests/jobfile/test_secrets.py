"""A credential pasted into a job file is reported, and its value never appears in any message."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalancer.errors import JobFileError
from rebalancer.jobfile.load import check_paths, load_job
from rebalancer.jobfile.yamlpos import looks_like_secret

HEADER = "version: 1\nname: t\nsymbol: btcusdt\nladder:\n  buy: {levels: 3, first: 1%, step: 1%, size: 1}\n"
HEX = st.text(alphabet="0123456789abcdef", min_size=32, max_size=64)
ALPHABET64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BASE64 = st.text(alphabet=ALPHABET64, min_size=40, max_size=64).filter(looks_like_secret)
PLACES = [
    "exchange: {{api_key_env: {s}}}\n",
    "exchange: {{secret_key_env: '{s}'}}\n",
    "api_key: {s}\n",
    "secret: '{s}'\n",
    "exchange: {{url: sandbox, secret_key: {s}}}\n",
    "exchange: {{url: 'https://user:{s}@api.example.com'}}\n",
    "orders:\n  - {{side: buy, price: 1, size: 1, password: {s}}}\n",
    "reference: {s}\n",
    "name2: {s}\n",
    "{s}: 1\n",
    "tolerance: {{price: '{s}'}}\n",
    "token:\n  value: {s}\n",
]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "secret.yaml"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.one_of(HEX, BASE64), place=st.sampled_from(PLACES))
def test_a_pasted_secret_is_reported_and_never_echoed(scratch: Path, secret: str, place: str) -> None:
    scratch.write_text(HEADER + place.format(s=secret), encoding="utf-8")
    with pytest.raises(JobFileError) as caught:
        load_job(scratch)
    assert caught.value.problems
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.problems)


@pytest.mark.parametrize("name", ["REBALANCER_API_KEY", "MY_EXCHANGE_KEY_2", "_K"])
def test_ordinary_variable_names_are_not_taken_for_secrets(tmp_path: Path, name: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(HEADER + f"exchange: {{api_key_env: {name}, secret_key_env: {name}}}\n", encoding="utf-8")
    assert check_paths([path]) == []


def test_short_values_that_are_not_names_are_not_echoed_either(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(HEADER + "exchange: {api_key_env: 'p4ss word'}\n", encoding="utf-8")
    (problem,) = check_paths([path])
    assert "p4ss" not in str(problem) and problem.path == "exchange.api_key_env"


def test_secret_like_text_in_other_messages_is_redacted(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(HEADER + "on_stop: a1b2c3d4e5f6a7b8c9\n", encoding="utf-8")
    (problem,) = check_paths([path])
    assert "a1b2c3d4e5f6a7b8c9" not in str(problem)
    assert problem.message == "expected one of keep, cancel, got a value that looks like a secret"
