"""The simulated exchange's engine: symbols, accounts, orders, the market clock and fills, behind one lock.

Rules it enforces the way the /open/api template does: precision (``10062``), minimum volume (``10063``),
positive price and volume (``10064``), available balance (``19``), known order ids (``22``). Placing locks the
quote coin for a buy (price × volume) and the base coin for a sell; cancelling releases what is still locked.

The market moves in one-second ticks. On each tick every symbol's mid takes a seeded random step and every
resting order the synthetic crowd crosses (a buy at or above the synthetic ask, a sell at or below the
synthetic bid) fills, fully or by a seeded share, at its own price. There are no fees: a buy of ``q`` at ``p``
spends exactly ``p × q`` of the quote coin and credits ``q`` of the base coin. A marketable order (a buy at or
above the synthetic ask, a sell at or below the synthetic bid) trades at once against the crowd's depth, best
level first and at each level's price, as far as its limit allows; what is left rests. The accounts' orders
never match one another.

The clock is ``"real"`` (ticks follow wall time, ``catch_up`` runs the ticks that passed) or ``"manual"``
(time only moves through ``advance``), so a seed and a sequence of steps always yield the same world.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, Inexact, InvalidOperation, localcontext

from rebalancer.models import Balances, Order, OrderStatus, Side, SymbolRules, Ticker, quantize
from rebalancer.sandbox.book import Account, Fill, Reject, SimOrder
from rebalancer.sandbox.market import DEFAULT_SYMBOLS, MarketState, SymbolSpec, fill_share

DEMO_API_KEY = "5a4d8e0b1c2f43e6a7b8c9d0e1f2a3b4"
"""The demo account's API key: fixed and documented, so `url: sandbox` jobs need no environment variable."""
DEMO_SECRET_KEY = "demo0secret0not0a0real0secret000"
"""The demo account's secret: it protects nothing, it only makes signing work as on a real exchange."""
DEMO_BALANCES: Mapping[str, Decimal] = {"usdt": Decimal(1_000_000), "btc": Decimal(20), "eth": Decimal(300)}

TICK_MS = 1000
MAX_CATCH_UP_TICKS = 3600
"""Catching up simulates at most an hour of ticks; a longer absence jumps the clock over the rest."""
KEPT_CLOSED_ORDERS = 5000
KEPT_FILLS = 1000
CLOCKS = ("real", "manual")


Depth = tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
"""(bids, asks), best first, as (price, volume) pairs; kept between calls, so never changed by a reader."""


def _newest_first(order: SimOrder) -> int:
    return -order.id


def wall_ms() -> int:
    """Wall-clock time in milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class MarketView:
    """A symbol's ticker (best bid/ask including resting orders) and the day's figures."""

    ticker: Ticker
    high: Decimal
    low: Decimal
    volume: Decimal
    open: Decimal


class Engine:
    """The whole simulated world; every public method takes the one lock, for the threaded server."""

    def __init__(self, seed: int, clock: str, specs: Iterable[SymbolSpec], clock_ms: int | None = None) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
        self.lock = threading.RLock()
        self.seed = seed
        self.clock = clock
        self.clock_ms = wall_ms() if clock_ms is None else clock_ms
        self.walk_rng = random.Random(f"walk:{seed}")
        self.fill_rng = random.Random(f"fill:{seed}")
        self.markets: dict[str, MarketState] = {s.symbol: MarketState.start(s) for s in specs}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, SimOrder] = {}
        self.open_by_symbol: dict[str, dict[int, SimOrder]] = {s: {} for s in self.markets}
        self.closed_ids: deque[int] = deque()
        self.fills: deque[Fill] = deque(maxlen=KEPT_FILLS)
        self.next_order_id = 1001
        self.next_trade_id = 1
        self._depths: dict[str, tuple[tuple[int, str], Depth]] = {}
        """Each symbol's crowd depth with the (tick count, mid) it was drawn for: it is the same until either moves."""
        self.listeners: list[Callable[[str], None]] = []
        """Called with a symbol, under the lock, after its market stepped or its orders changed: must not block."""

    @classmethod
    def create(cls, seed: int = 7, *, clock: str = "real", symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS) -> Engine:
        """A fresh world: the default symbols (btcusdt, ethusdt) and the generously funded demo account."""
        engine = cls(seed, clock, symbols)
        engine.add_account(DEMO_API_KEY, DEMO_SECRET_KEY, DEMO_BALANCES)
        return engine

    @contextmanager
    def batch(self) -> Iterator[Engine]:
        """Hold the lock across several calls, so a mass_replaceV2 batch is applied as one step."""
        with self.lock:
            yield self

    def add_account(self, api_key: str, secret_key: str, balances: Mapping[str, Decimal | str | int]) -> None:
        """Open (or replace) an account with the given available balances."""
        with self.lock:
            account = Account(api_key, secret_key)
            for coin, amount in balances.items():
                account.coin(coin).available = Decimal(str(amount))
            self.accounts[api_key] = account

    def secret_for(self, api_key: str) -> str | None:
        """The secret of ``api_key``, or None for an unknown key (used only to verify signatures)."""
        with self.lock:
            account = self.accounts.get(api_key)
            return account.secret_key if account else None

    def specs(self) -> list[SymbolSpec]:
        """Every symbol's specification, in name order."""
        with self.lock:
            return [m.spec for _, m in sorted(self.markets.items())]

    def rules(self, symbol: str) -> SymbolRules:
        """The trading rules of ``symbol``; ``Reject('100004')`` for an unknown one."""
        return self._market(symbol).spec.rules

    def balances(self, api_key: str) -> Balances:
        """The account's balances (available and locked per coin)."""
        with self.lock:
            return self._account(api_key).snapshot()

    def now_ms(self) -> int:
        """The engine's notion of now: wall time on the real clock, the simulated time on the manual one."""
        return wall_ms() if self.clock == "real" else self.clock_ms

    def advance(self, seconds: int | Decimal) -> None:
        """Run ``seconds`` whole one-second ticks: every mid steps and crossed orders fill."""
        ticks = int(seconds)
        if ticks < 0:
            raise ValueError("cannot advance by a negative time")
        with self.lock:
            for _ in range(ticks):
                self._tick()

    def catch_up(self, now_ms: int | None = None) -> int:
        """On the real clock, run the ticks that passed since the last one (at most an hour's, then jump).

        Returns the number of ticks simulated; the manual clock never catches up.
        """
        with self.lock:
            if self.clock != "real":
                return 0
            passed = ((wall_ms() if now_ms is None else now_ms) - self.clock_ms) // TICK_MS
            if passed <= 0:
                return 0
            simulated = min(passed, MAX_CATCH_UP_TICKS)
            self.clock_ms += (passed - simulated) * TICK_MS
            for _ in range(simulated):
                self._tick()
            return simulated

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        """Put ``symbol``'s mid at ``price`` (rounded down to the tick); crossed orders fill."""
        with self.lock:
            market = self._market(symbol)
            try:
                value = Decimal(str(price))
                if not value.is_finite() or value <= 0:
                    raise InvalidOperation
                market.set_mid(value)
            except InvalidOperation:
                raise Reject("100004", "price must be a positive number in range") from None
            self._match(market)
            self._notify(symbol)

    def market_view(self, symbol: str) -> MarketView:
        """Ticker and day figures of ``symbol``; best bid and ask include the accounts' resting orders."""
        with self.lock:
            market = self._market(symbol)
            crowd_bid, crowd_ask = market.synthetic_bid(), market.synthetic_ask()
            resting = self.open_by_symbol[symbol].values()
            own_bid = max((o.price for o in resting if o.side is Side.BUY), default=None)
            own_ask = min((o.price for o in resting if o.side is Side.SELL), default=None)
            bid = crowd_bid if own_bid is None else max(crowd_bid, own_bid)
            ask = crowd_ask if own_ask is None else min(crowd_ask, own_ask)
            # The crowd trades against an order that reaches its side (it fills on the next tick); it never
            # rests behind it, so its best price sits one tick beyond. Accounts' orders crossing each other stay.
            tick = market.spec.rules.tick
            if own_bid is not None and own_bid >= crowd_ask:
                ask = own_bid + tick if own_ask is None else min(own_ask, own_bid + tick)
            if own_ask is not None and own_ask <= crowd_bid:
                bid = own_ask - tick if own_bid is None else max(own_bid, own_ask - tick)
            ticker = Ticker(
                bid=bid, ask=ask, last=market.mid if market.last is None else market.last, time=self.now_ms()
            )
            return MarketView(ticker, market.high, market.low, market.volume, market.open)

    def ticker(self, symbol: str) -> Ticker:
        """Best bid, best ask and last price of ``symbol``, resting orders included."""
        return self.market_view(symbol).ticker

    def mid(self, symbol: str) -> Decimal:
        """The current mid price of ``symbol``."""
        with self.lock:
            return self._market(symbol).mid

    def depth(self, symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks), best first: the synthetic crowd's levels plus the accounts' resting orders, as the ticker
        sees the book (``market_view``). The crowd trades against an account's order that reaches its side on the
        next tick and never rests behind it, so the crowd's levels such an order crosses are left out: the book
        is crossed only where accounts' orders cross each other. REST depth and the stream's push both read this."""
        with self.lock:
            market = self._market(symbol)
            bids, asks = self._crowd_depth(market)
            sides = {Side.BUY: dict(bids), Side.SELL: dict(asks)}
            for order in self.open_by_symbol[symbol].values():
                levels = sides[order.side]
                levels[order.price] = levels.get(order.price, Decimal(0)) + order.remaining
            ticker = self.market_view(symbol).ticker
            assert ticker.bid is not None and ticker.ask is not None  # the crowd always quotes both sides
            return (
                sorted(((p, v) for p, v in sides[Side.BUY].items() if p <= ticker.bid), reverse=True),
                sorted((p, v) for p, v in sides[Side.SELL].items() if p >= ticker.ask),
            )

    def recent_fills(self) -> list[Fill]:
        """The most recent fills of every account, oldest first."""
        with self.lock:
            return list(self.fills)

    def place(self, api_key: str, symbol: str, side: Side, price: Decimal, volume: Decimal) -> int:
        """Place a limit order and lock what it may spend; its id, or ``Reject`` with the code."""
        with self.lock:
            account = self._account(api_key)
            spec = self._market(symbol).spec
            if not price.is_finite() or not volume.is_finite() or price <= 0 or volume <= 0:
                raise Reject("10064", "price and volume must be positive")
            rules = spec.rules
            try:
                too_fine = price != price.quantize(rules.tick) or volume != volume.quantize(rules.lot)
                with localcontext() as exact:
                    exact.traps[Inexact] = True
                    _ = price * volume  # the notional must be exact, or locks would not balance
            except (InvalidOperation, Inexact):
                raise Reject("100004", "price or volume out of range") from None
            if too_fine:
                raise Reject("10062", "price or volume precision too fine")
            if volume < spec.min_volume:
                raise Reject("10063", f"volume below the minimum {spec.min_volume}")
            if side is Side.BUY:
                account.lock(spec.quote, price * volume)
            else:
                account.lock(spec.base, volume)
            order = SimOrder(self.next_order_id, api_key, symbol, side, price, volume, self.now_ms())
            self.next_order_id += 1
            self.orders[order.id] = order
            self.open_by_symbol[symbol][order.id] = order
            self._take(self.markets[symbol], order)
            self._notify(symbol)
            return order.id

    def cancel(self, api_key: str, symbol: str, order_id: int) -> None:
        """Cancel an open order and release what it still locks; ``Reject('22')`` if not open."""
        with self.lock:
            order = self.open_by_symbol.get(symbol, {}).get(order_id)
            if order is None or order.api_key != api_key:
                raise Reject("22", "order does not exist")
            spec = self.markets[symbol].spec
            account = self._account(api_key)
            if order.side is Side.BUY:
                account.release(spec.quote, order.price * order.remaining)
            else:
                account.release(spec.base, order.remaining)
            order.status = OrderStatus.CANCELLED
            self._close(order)
            self._notify(symbol)

    def cancel_all(self, api_key: str, symbol: str, limit: int = 2000) -> list[int]:
        """Cancel up to ``limit`` of the account's open orders on ``symbol``, oldest first; their ids."""
        with self.lock:
            self._market(symbol)
            ids = sorted(o.id for o in self.open_by_symbol[symbol].values() if o.api_key == api_key)[:limit]
            for order_id in ids:
                self.cancel(api_key, symbol, order_id)
            return ids

    def fill(self, order_id: int, volume: Decimal | str | None = None) -> None:
        """Fill an open order by ``volume`` (down to the lot; all that remains when None) at its price.

        For tests and demos that need a fill without walking the market there.
        """
        with self.lock:
            order = self.orders.get(order_id)
            if order is None or not order.is_open:
                raise Reject("22", "order does not exist")
            market = self.markets[order.symbol]
            amount = order.remaining if volume is None else Decimal(str(volume))
            amount = quantize(amount, market.spec.amount_precision, up=False)
            if not 0 < amount <= order.remaining:
                raise Reject("100004", f"fill volume must be between one lot and {order.remaining}")
            self._fill(market, order, amount)
            self._notify(order.symbol)

    def open_order_records(self, api_key: str, symbol: str) -> list[SimOrder]:
        """Copies of the account's open orders on ``symbol``, newest first (as the API lists them)."""
        with self.lock:
            self._market(symbol)
            mine = (o for o in self.open_by_symbol[symbol].values() if o.api_key == api_key)
            return [o.copy() for o in sorted(mine, key=lambda o: o.id, reverse=True)]

    def open_order_page(self, api_key: str, symbol: str, start: int, stop: int) -> tuple[int, list[SimOrder]]:
        """How many open orders the account has on ``symbol``, and copies of those at ``start:stop`` newest first
        (a page of the API's list: only the page is copied)."""
        with self.lock:
            self._market(symbol)
            mine = sorted((o for o in self.open_by_symbol[symbol].values() if o.api_key == api_key), key=_newest_first)
            return len(mine), [o.copy() for o in mine[start:stop]]

    def open_orders(self, api_key: str, symbol: str) -> tuple[Order, ...]:
        """The account's open orders on ``symbol`` as shared frozen values, newest first."""
        return tuple(o.to_model() for o in self.open_order_records(api_key, symbol))

    def order_records(self, api_key: str, symbol: str) -> list[SimOrder]:
        """Copies of every order of the account on ``symbol``, whatever its status, newest first (order history)."""
        with self.lock:
            self._market(symbol)
            mine = (o for o in self.orders.values() if o.api_key == api_key and o.symbol == symbol)
            return [o.copy() for o in sorted(mine, key=lambda o: o.id, reverse=True)]

    def order_record(self, api_key: str, symbol: str, order_id: int) -> SimOrder:
        """A copy of one order of the account, whatever its status; ``Reject('22')`` if unknown."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None or order.api_key != api_key or order.symbol != symbol:
                raise Reject("22", "order does not exist")
            return order.copy()

    def _notify(self, symbol: str) -> None:
        for listener in self.listeners:
            listener(symbol)

    def _market(self, symbol: str) -> MarketState:
        market = self.markets.get(symbol)
        if market is None:
            raise Reject("100004", f"unknown symbol {symbol!r}")
        return market

    def _account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise Reject("100005", "unknown api_key")
        return account

    def _tick(self) -> None:
        self.clock_ms += TICK_MS
        for _, market in sorted(self.markets.items()):
            market.step(self.walk_rng)
            self._match(market)
            self._notify(market.spec.symbol)

    def _crowd_depth(self, market: MarketState) -> Depth:
        """The crowd's depth of ``market``, drawn once per tick and mid (the draw is seeded by both)."""
        key = (market.tick_count, str(market.mid))
        kept = self._depths.get(market.spec.symbol)
        if kept is not None and kept[0] == key:
            return kept[1]
        depth = market.synthetic_depth(self.seed)
        self._depths[market.spec.symbol] = (key, depth)
        return depth

    def _match(self, market: MarketState) -> None:
        resting = self.open_by_symbol[market.spec.symbol]
        if not resting:
            return
        bid, ask = market.synthetic_bid(), market.synthetic_ask()
        for order_id in sorted(resting):
            order = resting[order_id]
            crossed = order.price >= ask if order.side is Side.BUY else order.price <= bid
            if crossed:
                self._fill(market, order, fill_share(self.fill_rng, order.remaining, market.spec.amount_precision))

    def _take(self, market: MarketState, order: SimOrder) -> None:
        """A marketable order trades at once with the crowd's depth, best level first, at each level's price."""
        bids, asks = self._crowd_depth(market)
        for price, available in asks if order.side is Side.BUY else bids:
            reachable = price <= order.price if order.side is Side.BUY else price >= order.price
            if not reachable or order.remaining <= 0:
                break
            self._fill(market, order, min(available, order.remaining), price, taker=True)

    def _fill(
        self,
        market: MarketState,
        order: SimOrder,
        volume: Decimal,
        price: Decimal | None = None,
        *,
        taker: bool = False,
    ) -> None:
        """Fill ``volume`` of ``order`` at ``price`` (its own when None; ``taker``: the order took the crowd's
        level on arrival); a buy filled below its price gets the difference of what it locked back."""
        spec = market.spec
        account = self._account(order.api_key)
        quote, base = account.coin(spec.quote), account.coin(spec.base)
        price = order.price if price is None else price
        funds = price * volume
        if order.side is Side.BUY:
            quote.locked -= order.price * volume
            quote.available += order.price * volume - funds
            base.available += volume
        else:
            base.locked -= volume
            quote.available += funds
        fill = Fill(self.next_trade_id, order.id, spec.symbol, order.side, price, volume, self.clock_ms, taker)
        self.next_trade_id += 1
        order.fills.append(fill)
        self.fills.append(fill)
        order.deal_volume += volume
        market.volume += volume
        market.last = price
        if order.remaining <= 0:
            order.status = OrderStatus.FILLED
            self._close(order)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED

    def _close(self, order: SimOrder) -> None:
        self.open_by_symbol[order.symbol].pop(order.id, None)
        self.closed_ids.append(order.id)
        while len(self.closed_ids) > KEPT_CLOSED_ORDERS:
            self.orders.pop(self.closed_ids.popleft(), None)
