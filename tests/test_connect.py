"""Job → client: the job file's ``exchange.rate_limit`` reaches the limiter every client of a deployment and key
shares."""

from __future__ import annotations

from decimal import Decimal

from rebalancer.engine.connect import make_client
from rebalancer.exchange.profile import RateLimit
from rebalancer.job import ExchangeConfig, Rate


def test_clients_of_one_deployment_and_key_share_one_limiter_with_every_jobs_limits() -> None:
    url = "https://rate-limit-test.example"
    default = ExchangeConfig(url=url)
    stricter = ExchangeConfig(url=url, read_rate=Rate(3, Decimal("0.5")))
    with make_client(default, url, "key-a", "secret") as one, make_client(stricter, url, "key-a", "secret") as two:
        assert one.transport.limiter is two.transport.limiter
        assert one.transport.limiter.limits == {
            "read": (RateLimit(10, 1.0), RateLimit(3, 0.5)),
            "write": (RateLimit(100, 10.0),),
        }
        with make_client(stricter, url, "key-b", "secret") as other:
            assert other.transport.limiter is not one.transport.limiter
            assert other.transport.limiter.limits["read"] == (RateLimit(3, 0.5),)
