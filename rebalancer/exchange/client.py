"""``OpenApiClient``: the ``Exchange`` protocol over HTTP, for every /open/api deployment (the sandbox too).

Endpoints live here; how a request travels (signing, limits, retries, error mapping) lives in ``transport``,
and how an answer becomes model values lives in ``parse``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from rebalancer.core.funding import funding_need
from rebalancer.defaults import MAX_PAGES, OPEN_ORDER_BOUND
from rebalancer.errors import BadResponse, ConfigError, ExchangeError, OutcomeUnknown, RequestError
from rebalancer.exchange.funds import ledger_for
from rebalancer.exchange.marketdata import DeploymentData, UnlistedSymbol
from rebalancer.exchange.parse import (
    Depth,
    parse_account,
    parse_all_tickers,
    parse_batch_answer,
    parse_created_order,
    parse_depth,
    parse_order_info,
    parse_orders_page,
    parse_symbols,
    parse_ticker,
)
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.exchange.transport import Transport, WriteHook, mask
from rebalancer.models import (
    Balances,
    BatchAnswer,
    BatchRequest,
    FundingNeed,
    Order,
    OrderStatus,
    SymbolRules,
    Target,
    Ticker,
)

log = logging.getLogger(__name__)

KEPT_STATUSES = frozenset(
    {OrderStatus.INITIAL, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_PENDING}
)
"""Statuses ``open_orders`` returns: the open ones and cancel-pending (which the diff treats specially)."""


ORDER_PATHS = ("v2/new_order", "new_order")
"""The open-order list: the v2 path, and the old one of deployments that document no v2 paths."""


def mass_cancel_json(order_ids: Sequence[str]) -> str:
    """The ``mass_cancel`` parameter: a compact JSON array, numeric ids as JSON numbers."""
    ids: list[int | str] = [int(i) if i.isascii() and i.isdigit() else i for i in order_ids]
    return json.dumps(ids, separators=(",", ":"))


def mass_place_json(rules: SymbolRules, targets: Sequence[Target]) -> str:
    """The ``mass_place`` parameter: compact JSON limit orders, decimals formatted to the symbol's precision.

    A price or volume finer than the symbol allows raises ``RequestError``: rounding is the ladder's job, and
    rounding here could make an order more aggressive.
    """
    orders = []
    for target in targets:
        try:
            price, volume = rules.format_price(target.price), rules.format_volume(target.volume)
        except ValueError as error:
            raise RequestError(f"{target.level}: {error}", endpoint="mass_replaceV2") from None
        orders.append({"side": target.side.value, "type": "1", "volume": volume, "price": price})
    return json.dumps(orders, separators=(",", ":"))


class OpenApiClient:
    """The HTTP ``Exchange`` of one account on one /open/api deployment.

    One ``requests.Session`` (keep-alive) per client; clients of one API key share a rate limiter unless
    ``limiter`` is given. ``market`` is the deployment's symbol list and tickers, shared with other clients of it
    (``marketdata.shared_for``; a private one when None); ``ticker_max_age`` lets ``ticker`` answer from a ticker
    that young (0: always read the symbol's own). ``on_write`` is called after every write with the endpoint, the
    parameters sent (without ``api_key`` and ``sign``) and the decoded answer or the error text, for the state store.
    Every client spends through its key's ``AccountLedger``; a ``dedicated`` one (``exchange.account: dedicated``:
    the account is its job's alone) may answer balances from it between reads (``rebalancer.exchange.funds``).
    ``venue`` is the exchange as the user wrote it (``sandbox``, or the URL's host) for messages; ``credentials``
    names the variables the keys came from; ``open_order_bound`` is the most open orders one read accepts (what
    the job can own, with a margin): a server claiming more is refused rather than read for minutes.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        secret_key: str,
        profile: ExchangeProfile | None = None,
        *,
        limiter: KeyLimiter | None = None,
        insecure: bool = False,
        on_write: WriteHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
        market: DeploymentData | None = None,
        ticker_max_age: float = 0.0,
        dedicated: bool = False,
        venue: str = "",
        credentials: str = "",
        open_order_bound: int = OPEN_ORDER_BOUND,
    ) -> None:
        if not api_key or not secret_key:
            raise ConfigError("the API key and the secret key must not be empty")
        self.profile = profile or ExchangeProfile()
        self.transport = Transport(
            base_url,
            api_key,
            secret_key,
            self.profile,
            limiter=limiter,
            insecure=insecure,
            on_write=on_write,
            sleep=sleep,
            credentials=credentials,
        )
        self.market = market or DeploymentData(self.transport.base_url)
        self.venue = venue or self.transport.host
        self.open_order_bound = max(1, open_order_bound)
        self.ticker_max_age = ticker_max_age
        self.dedicated = dedicated
        self.ledger = ledger_for(api_key)
        self.ledger.opened()
        self._open = True

    def __repr__(self) -> str:
        return f"OpenApiClient({self.transport.base_url!r}, api_key={mask(self.transport.api_key)!r})"

    @property
    def base_url(self) -> str:
        """The base URL requests go to (``/open/api/...`` is appended)."""
        return self.transport.base_url

    def close(self) -> None:
        """Release the pooled connections."""
        if self._open:
            self._open = False
            self.ledger.closed()
        self.transport.close()

    def __enter__(self) -> OpenApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def symbols(self) -> dict[str, SymbolRules]:
        """Every symbol's rules (``common/symbols``); refreshes the shared rules cache."""
        rules = parse_symbols(self.transport.read("common/symbols", {}, signed=False))
        self.market.store_symbols(rules)
        return rules

    def rules(self, symbol: str) -> SymbolRules:
        """Rules of ``symbol``, cached per deployment; an unlisted symbol is a ``ConfigError`` naming the venue and
        the closest listed symbols (the job names a symbol the venue does not know, most likely misspelt)."""
        try:
            return self.market.rules(
                symbol, lambda: parse_symbols(self.transport.read("common/symbols", {}, signed=False))
            )
        except UnlistedSymbol as unlisted:
            close = difflib.get_close_matches(symbol.lower(), unlisted.listed, n=3, cutoff=0.6)
            hint = f"the closest listed: {', '.join(close)}" if close else f"it lists {len(unlisted.listed)} symbols"
            raise ConfigError(f"symbol {symbol!r} is not listed on {self.venue} ({hint})") from None

    def ticker(self, symbol: str) -> Ticker:
        """Best bid, best ask and last price: ``get_ticker``, or a shared one younger than ``ticker_max_age``."""
        return self.market.ticker(symbol, self.ticker_max_age, self.symbol_ticker, self.all_tickers)

    def symbol_ticker(self, symbol: str) -> Ticker:
        """The symbol's own ticker (``get_ticker``), read now."""
        return parse_ticker(self.transport.read("get_ticker", {"symbol": symbol}, signed=False))

    def all_tickers(self) -> Mapping[str, Ticker]:
        """Every symbol's ticker in one request (``get_allticker``, where the deployment serves it)."""
        return parse_all_tickers(self.transport.read("get_allticker", {}, signed=False))

    def depth(self, symbol: str) -> Depth:
        """The order book (``market_dept``, ``type=step0``)."""
        data = self.transport.read("market_dept", {"symbol": symbol, "type": "step0"}, signed=False)
        return parse_depth(data)

    def balances(self, need: FundingNeed | None = None) -> Balances:
        """Available and locked amount of every coin (``user/account``).

        With ``need`` on a dedicated account, the carried lower bound answers instead when it pays for ``need``
        (its ``locked`` amounts are then unknown and given as zero). Every read becomes the key's new bound.
        """
        if need is not None and self.dedicated:
            carried = self.ledger.cover(need)
            if carried is not None:
                return carried
        mark = self.ledger.mark()
        read = parse_account(self.transport.read("user/account", {}, signed=True))
        self.ledger.observe(read, mark)
        return read

    def forget_balances(self) -> None:
        """Drop the balances carried for the key (someone else may have traded on it: the lease moved)."""
        self.ledger.forget()

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        """Every order of ``symbol`` with status 0, 1, 3 or 5, read over all pages of ``v2/new_order`` (or of
        ``new_order`` on a deployment without the v2 path, found out once: ``DeploymentData.orders_path``).

        Pages are read until ``count`` distinct rows are in hand or a page comes back empty. The server may cap
        ``pageSize`` silently, so a short page is not the end. An order may move to the next page while pages are
        read (one row seen twice is kept once), but an answer that cannot be the truth is a ``BadResponse``: rows
        sharing one id in one page, a page of nothing but rows already seen before ``count`` is reached (a server
        that ignores ``page``), more pages than ``count`` and the page size allow, or more orders (claimed in
        ``count`` or handed over) than ``open_order_bound``. Any failed page fails the whole read: a partial list
        is never taken for the truth.
        """
        rows: dict[str, Order] = {}
        smallest_page = self.profile.page_size
        bound = self.open_order_bound
        for page in range(1, MAX_PAGES + 1):
            params = {"symbol": symbol, "page": str(page), "pageSize": str(self.profile.page_size)}
            path, data = self.market.first_served(
                ORDER_PATHS, functools.partial(self.transport.read, params=params, signed=True)
            )
            count, orders = parse_orders_page(data, path)
            claimed = max(count, len(rows) + len(orders))
            if claimed > bound:
                raise BadResponse(
                    f"the exchange claims {claimed} open orders on {symbol}, more than the {bound} this job could"
                    " own; the read stops here",
                    endpoint=path,
                )
            if not orders:
                break
            fresh = [order for order in orders if order.id not in rows]
            if not fresh:
                raise BadResponse(
                    f"page {page} repeats orders already read ({len(rows)} of {count}); the list would be partial",
                    endpoint=path,
                )
            for order in fresh:
                rows[order.id] = order
            if len(rows) >= count:
                break
            smallest_page = min(smallest_page, len(orders))
            if page >= -(-count // smallest_page) + 1:
                raise BadResponse(
                    f"{page} pages of up to {smallest_page} rows still fall short of count {count}",
                    endpoint=path,
                )
        else:
            raise BadResponse(f"still more pages after {MAX_PAGES}", endpoint=path)
        return tuple(order for order in rows.values() if order.status in KEPT_STATUSES)

    def order_info(self, symbol: str, order_id: str) -> Order:
        """One order by id, whatever its status (``order_info``)."""
        data = self.transport.read("order_info", {"symbol": symbol, "order_id": order_id}, signed=True)
        return parse_order_info(data)

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        """One ``mass_replaceV2`` request: cancel ``cancel_ids`` and place ``place`` on ``rules.symbol``.

        Refuses more than the profile's ``max_batch`` of either before sending; sends nothing for two empty
        lists. The answer is returned as the exchange filed it (a hint: read the open orders back), carrying the
        request as sent; an error carries it too (``ExchangeError.request``). ``OutcomeUnknown`` when the answer
        was lost after sending.
        """
        limit = self.profile.max_batch
        if len(cancel_ids) > limit or len(place) > limit:
            raise RequestError(
                f"batch too large: {len(cancel_ids)} cancels, {len(place)} placements (at most {limit} each)",
                endpoint="mass_replaceV2",
            )
        if not cancel_ids and not place:
            return BatchAnswer()
        request = BatchRequest(
            rules.symbol,
            mass_cancel=mass_cancel_json(cancel_ids) if cancel_ids else None,
            mass_place=mass_place_json(rules, place) if place else None,
        )
        self._spend(rules, place)
        try:
            answer = self._send_batch(request)
        except ExchangeError as exc:
            self._forget_after(exc)
            exc.request = request
            raise
        if not all(group.ok for group in answer.place):  # a failed cancel releases nothing, and nothing is credited
            self.ledger.forget()
        return dataclasses.replace(answer, request=request)

    def _spend(self, rules: SymbolRules, place: Sequence[Target]) -> None:
        if place:
            self.ledger.spend(funding_need(place, (), rules).locks)

    def _forget_after(self, error: ExchangeError) -> None:
        if isinstance(error, OutcomeUnknown):
            self.ledger.forget_after_lost_write()
        else:
            self.ledger.forget()

    def _send_batch(self, request: BatchRequest) -> BatchAnswer:
        data = self.transport.write("mass_replaceV2", request.params())
        try:
            return parse_batch_answer(data)
        except BadResponse as error:
            # The write was received and answered: whatever it did stands, so only reading back can tell.
            raise OutcomeUnknown(
                f"answer not understood ({error}); read the open orders back", endpoint="mass_replaceV2"
            ) from None

    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order of ``symbol`` (``cancel_order_all``, at most 2000 per call server-side)."""
        self.transport.write("cancel_order_all", {"symbol": symbol})

    def create_order(self, rules: SymbolRules, target: Target) -> str:
        """Place one limit order (``create_order``); its id. For exchanges or bots without batch support.

        Decimals are formatted to the symbol's precision like ``mass_place_json`` (never rounded here).
        """
        try:
            price, volume = rules.format_price(target.price), rules.format_volume(target.volume)
        except ValueError as error:
            raise RequestError(f"{target.level}: {error}", endpoint="create_order") from None
        params = {"symbol": rules.symbol, "side": target.side.value, "type": "1", "volume": volume, "price": price}
        self._spend(rules, (target,))
        try:
            return parse_created_order(self.transport.write("create_order", params))
        except ExchangeError as error:
            self._forget_after(error)
            raise

    def cancel_order(self, symbol: str, order_id: str) -> None:
        """Cancel one order by id (``cancel_order``); an order no longer open is ``RejectedError`` (code 22)."""
        self.transport.write("cancel_order", {"symbol": symbol, "order_id": order_id})
