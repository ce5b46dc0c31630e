"""Job → a connected ``Exchange``: the HTTP client with credentials from the environment, or the embedded sandbox.

``url: sandbox`` serves the simulated exchange in this process on a loopback port, from the world saved in the
state directory (``rebalancer.sandbox.host``), and trades on it with the demo account's keys. ``stream: sandbox``
resolves to that sandbox's own market stream (``stream_url``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from rebalancer.defaults import OPEN_ORDER_BOUND, OPEN_ORDER_MARGIN
from rebalancer.errors import CredentialsMissing
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.marketdata import shared_for
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import ExchangeConfig, Job
from rebalancer.jobfile.urls import check_stream_url
from rebalancer.logs import register_secret
from rebalancer.state.paths import state_dir
from rebalancer.vocab import AccountUse

LimiterFactory = Callable[[str, str, ExchangeProfile], KeyLimiter]
"""Makes the rate limiter of a client from its base URL, API key and profile (a cluster shares it cluster-wide)."""


def credentials(config: ExchangeConfig, env: Mapping[str, str]) -> tuple[str, str]:
    """The API key and secret named by the job, read from ``env``; every missing one is named in one error."""
    wanted = (("API key", config.api_key_env), ("secret key", config.secret_key_env))
    missing = [(what, name) for what, name in wanted if not env.get(name)]
    names = list(dict.fromkeys(name for _, name in missing))
    if len(names) == 1:
        whats = " and ".join(what for what, _ in missing)
        raise CredentialsMissing(f"environment variable {names[0]} is not set (it should hold the {whats})")
    if names:
        raise CredentialsMissing(
            f"environment variables {' and '.join(names)} are not set (they should hold the API key and secret key)"
        )
    api_key, secret_key = env[config.api_key_env], env[config.secret_key_env]
    register_secret(api_key)
    register_secret(secret_key)
    return api_key, secret_key


def open_order_bound(job: Job) -> int:
    """The most open orders a read for ``job`` accepts: twice the orders it can own (its ladder's levels and fixed
    orders, at most ``max_orders``) and ``OPEN_ORDER_MARGIN``."""
    own = sum(ladder.levels for ladder in (job.buy, job.sell) if ladder is not None) + len(job.orders)
    if job.limits.max_orders is not None:
        own = min(own, job.limits.max_orders)
    return 2 * own + OPEN_ORDER_MARGIN


def make_client(
    config: ExchangeConfig,
    base_url: str,
    api_key: str,
    secret_key: str,
    *,
    ticker_max_age: float = 0.0,
    open_orders: int = OPEN_ORDER_BOUND,
    connect_timeout: float | None = None,
    read_timeout_cap: float | None = None,
    limiter: LimiterFactory | None = None,
    carry_balances: bool = True,
) -> OpenApiClient:
    """An HTTP client for one exchange with the job's profile settings (time unit, page size, timeout, batch
    size, signature, rate limits, whether the account is the job's alone); ``open_orders`` bounds an open-order
    read (``open_order_bound``). Messages name the venue as the job does (``sandbox``, or the URL's host).

    Clients of one deployment and key share one rate limiter (``limiter_for``, or what ``limiter`` makes of the URL,
    the key and the profile), whichever job made them; clients of one deployment share its symbol list and, up to
    ``ticker_max_age`` seconds old, its tickers. ``connect_timeout`` and ``read_timeout_cap`` shorten the job's
    timeouts; without ``carry_balances`` a dedicated account's balances are read as a shared one's are.
    """

    read_timeout = float(config.timeout_seconds)
    profile = ExchangeProfile(
        time_unit=config.time_unit,
        page_size=config.page_size,
        read_timeout=read_timeout if read_timeout_cap is None else min(read_timeout, read_timeout_cap),
        max_batch=config.max_batch,
        sign=config.sign,
        read_limit=RateLimit(config.read_rate.count, float(config.read_rate.seconds)),
        write_limit=RateLimit(config.write_rate.count, float(config.write_rate.seconds)),
    )
    if connect_timeout is not None:
        profile = replace(profile, connect_timeout=connect_timeout)
    return OpenApiClient(
        base_url,
        api_key,
        secret_key,
        profile,
        limiter=None if limiter is None else limiter(base_url, api_key, profile),
        insecure=config.insecure,
        market=shared_for(base_url),
        ticker_max_age=ticker_max_age,
        dedicated=carry_balances and config.account is AccountUse.DEDICATED,
        venue="sandbox" if config.is_sandbox else (urlsplit(config.url).hostname or config.url),
        credentials="" if config.is_sandbox else f"{config.api_key_env} and {config.secret_key_env}",
        open_order_bound=open_orders,
    )


@contextlib.contextmanager
def open_exchange(
    job: Job,
    env: Mapping[str, str] | None = None,
    *,
    ticker_max_age: float = 0.0,
    connect_timeout: float | None = None,
    read_timeout_cap: float | None = None,
    limiter: LimiterFactory | None = None,
    carry_balances: bool = True,
) -> Iterator[OpenApiClient]:
    """Connect to the job's exchange for the duration of the ``with`` block; the options are ``make_client``'s."""
    with _endpoint(job, os.environ if env is None else env) as (url, api_key, secret_key):
        client = make_client(
            job.exchange,
            url,
            api_key,
            secret_key,
            ticker_max_age=ticker_max_age,
            open_orders=open_order_bound(job),
            connect_timeout=connect_timeout,
            read_timeout_cap=read_timeout_cap,
            limiter=limiter,
            carry_balances=carry_balances,
        )
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def _endpoint(job: Job, env: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    """The job's base URL and keys: the embedded sandbox's (served for the block) and its demo keys, or the job's
    URL and the keys its environment variables hold."""
    if not job.exchange.is_sandbox:
        yield (job.exchange.url, *credentials(job.exchange, env))
        return
    from rebalancer.sandbox import engine, host

    with host.embedded_sandbox(state_dir()) as url:
        yield url, engine.DEMO_API_KEY, engine.DEMO_SECRET_KEY


@contextlib.contextmanager
def stream_url(job: Job) -> Iterator[str]:
    """The URL of the job's market stream for the block: its ``exchange.stream``, or for ``sandbox`` the embedded
    sandbox's stream (the sandbox served, or found served, for the block). ``StateError`` when it serves none."""
    if not job.exchange.is_sandbox_stream:
        yield check_stream_url(job.exchange.stream or "", insecure=job.exchange.insecure)
        return
    from rebalancer.sandbox.host import embedded_sandbox_stream

    with embedded_sandbox_stream(state_dir()) as (_, url):
        yield url
