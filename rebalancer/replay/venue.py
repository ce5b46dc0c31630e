"""The simulated venue: the ``Exchange`` protocol in process, over one account and the replayed market.

The runner talks to it exactly as to the HTTP client, and it counts the requests the client would have sent: the
symbol list once per ``SYMBOLS_TTL_SECONDS`` of market time, one per ticker, balances and order lookup, one per page
of open orders, one per batch. A dedicated account (``exchange.account: dedicated``) carries balances between reads
through the same ``AccountLedger`` the client uses, so it reads as rarely as the live daemon.

A batch (``replace``) is applied ``latency`` after it is sent: the market runs on to then first (``advance``), so a
resting order may still fill before its cancel lands, and an order joins the book (and its queue) only then. Its
answer is given as the sandbox gives it. Placing locks funds (quote for a buy, base for a sell; code 19 when short),
cancelling releases them, a fill moves them at the order's own price and takes the maker fee from the quote coin.
Orders never fill on placement, only when a print reaches them (``rebalancer.replay.matching``).

The ticker is the replayed book's best bid and ask, improved by the account's own resting orders (as on a live
venue, where they are part of the book; a side the book has moved through one of them stands one tick beyond it),
and the last print's price.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.funding import funding_need
from rebalancer.defaults import PAGE_SIZE, SYMBOLS_TTL_SECONDS
from rebalancer.errors import RejectedError
from rebalancer.exchange.funds import AccountLedger
from rebalancer.models import (
    ZERO,
    Balance,
    Balances,
    BatchAnswer,
    FundingNeed,
    Order,
    OrderStatus,
    ResultGroup,
    Side,
    SymbolRules,
    Target,
    Ticker,
)
from rebalancer.replay.ledger import Ledger
from rebalancer.replay.market import Book, Print
from rebalancer.replay.matching import FillModel, Resting, match_print


@dataclass(slots=True)
class SimOrder:
    """One order of the simulated account."""

    id: str
    side: Side
    price: Decimal
    volume: Decimal
    created_at: int
    joined: int
    ahead: Decimal = ZERO
    deal: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW

    def model(self) -> Order:
        """The order as the exchange reports it."""
        return Order(self.id, self.side, self.price, self.volume, self.deal, self.status, self.created_at)


@dataclass(slots=True)
class Counts:
    """What the live daemon would have sent: requests of every kind, batches, placements and cancels."""

    requests: int = 0
    batches: int = 0
    place: int = 0
    cancel: int = 0


class SimVenue:
    """One account on the replayed market; see the module docstring."""

    def __init__(
        self,
        rules: SymbolRules,
        balances: dict[str, Decimal],
        ledger: Ledger,
        *,
        model: FillModel,
        fee: Decimal = ZERO,
        latency_ms: int = 0,
        page_size: int = PAGE_SIZE,
        dedicated: bool = False,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self.symbol_rules = rules
        self.available = {coin.lower(): amount for coin, amount in balances.items()}
        self.locked: dict[str, Decimal] = {}
        self.ledger = ledger
        self.model = model
        self.fee = fee
        self.latency_ms = latency_ms
        self.page_size = max(1, page_size)
        self.advance = advance
        self.counts = Counts()
        self.filled_since: set[str] = set()
        self.learnt_fills = 0
        self.now_ms = 0
        self.book = Book(0, (), ())
        self.last: Decimal | None = None
        self.orders: dict[str, SimOrder] = {}
        self.open: dict[str, SimOrder] = {}
        self._next_id = 1001
        self._joined = 0
        self._rules_read_at: int | None = None
        self._reach = (Decimal(0), Decimal(0))  # (highest open buy, lowest open sell); 0 when none
        self._accounts = AccountLedger(clock=lambda: self.now_ms / 1000) if dedicated else None
        if self._accounts is not None:
            self._accounts.opened()

    # The market, driven by the replay.

    def on_book(self, book: Book) -> None:
        """A new book of the market; its mid becomes the ledger's mark."""
        self.book = book
        bid, ask = book.best_bid, book.best_ask
        if bid is not None and ask is not None:
            self.ledger.mid(book.t_ms, (bid + ask) / 2)

    def on_print(self, trade: Print) -> None:
        """A print of the market: fill what it reaches, sharing its volume in price-time order."""
        self.last = trade.price
        high_buy, low_sell = self._reach
        if not ((high_buy and trade.price <= high_buy) or (low_sell and trade.price >= low_sell)):
            return
        resting = [Resting(o.id, o.side, o.price, o.volume - o.deal, o.joined, o.ahead) for o in self.open.values()]
        matched = match_print(self.model, trade.price, trade.volume, resting)
        for order_id, ahead in matched.ahead:
            self.open[order_id].ahead = ahead
        for order_id, volume in matched.fills:
            self._fill(self.open[order_id], volume, trade.t_ms)

    def learn_fills(self) -> None:
        """Count the fills as the daemon's fills ledger records them: one per order whose deal volume grew since
        the last time (called before every pass and at the end)."""
        self.learnt_fills += len(self.filled_since)
        self.filled_since.clear()

    # The Exchange protocol.

    def rules(self, symbol: str) -> SymbolRules:
        """The symbol's rules; a symbol list read is counted once per ``SYMBOLS_TTL_SECONDS``."""
        if self._rules_read_at is None or self.now_ms - self._rules_read_at >= SYMBOLS_TTL_SECONDS * 1000:
            self._rules_read_at = self.now_ms
            self.counts.requests += 1
        return self.symbol_rules

    def ticker(self, symbol: str) -> Ticker:
        """The market (``market``), read as a request."""
        self.counts.requests += 1
        return self.market()

    def market(self) -> Ticker:
        """Best bid and ask of the book with the account's own orders in it, and the last print (what a ticker
        read and the live market stream show).

        An own order the recorded book has moved through is not crossed by it: as on a live venue the crowd would
        have traded against it rather than rest behind it, so the other side's best price is taken one tick beyond
        it.
        """
        bid, ask = self.book.best_bid, self.book.best_ask
        high_buy, low_sell = self._reach
        tick = self.symbol_rules.tick
        if high_buy and ask is not None and high_buy >= ask:
            ask = high_buy + tick
        if low_sell and bid is not None and low_sell <= bid:
            bid = low_sell - tick
        if high_buy and (bid is None or high_buy > bid):
            bid = high_buy
        if low_sell and (ask is None or low_sell < ask):
            ask = low_sell
        return Ticker(bid, ask, self.last, self.now_ms)

    def balances(self, need: FundingNeed | None = None) -> Balances:
        """The account's balances (a dedicated account may answer from what it carries, without a request)."""
        if need is not None and self._accounts is not None:
            carried = self._accounts.cover(need)
            if carried is not None:
                return carried
        self.counts.requests += 1
        coins = sorted(set(self.available) | set(self.locked))
        read = Balances({c: Balance(self.available.get(c, ZERO), self.locked.get(c, ZERO)) for c in coins})
        if self._accounts is not None:
            self._accounts.observe(read, self._accounts.mark())
        return read

    def forget_balances(self) -> None:
        """Drop the carried balances."""
        if self._accounts is not None:
            self._accounts.forget()

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        """Every open order, newest first; one request per page."""
        self.counts.requests += max(1, -(-len(self.open) // self.page_size))
        return tuple(o.model() for o in sorted(self.open.values(), key=lambda o: int(o.id), reverse=True))

    def order_info(self, symbol: str, order_id: str) -> Order:
        """One order by id, whatever its status."""
        self.counts.requests += 1
        order = self.orders.get(order_id)
        if order is None:
            raise RejectedError(f"order {order_id} does not exist", code="22")
        return order.model()

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        """One batch, applied ``latency`` after it is sent: cancels first, then placements; the sandbox's answer."""
        self.counts.requests += 1
        self.counts.batches += 1
        self.counts.cancel += len(cancel_ids)
        self.counts.place += len(place)
        if self._accounts is not None:
            self._accounts.spend(funding_need(place, (), rules).locks)
        if self.latency_ms and self.advance is not None:
            self.advance(self.now_ms + self.latency_ms)
        cancels = [self._cancel(order_id) for order_id in cancel_ids]
        places = [self._place(target) for target in place]
        return BatchAnswer(place=_groups(places), cancel=_groups(cancels))

    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order."""
        self.counts.requests += 1
        for order_id in sorted(self.open, key=int):
            self._cancel(order_id)

    def close(self) -> None:
        """Nothing to release."""

    # Inside.

    def _place(self, target: Target) -> tuple[str, str, str | None]:
        rules = self.symbol_rules
        if target.price != target.price.quantize(rules.tick) or target.volume != target.volume.quantize(rules.lot):
            return ("10062", "price or volume precision too fine", None)
        if rules.min_volume is not None and target.volume < rules.min_volume:
            return ("10063", f"volume below the minimum {rules.min_volume}", None)
        coin, amount = self._lock_of(target.side, target.price, target.volume)
        if self.available.get(coin, ZERO) < amount:
            return ("19", f"insufficient available {coin} balance", None)
        self.available[coin] = self.available.get(coin, ZERO) - amount
        self.locked[coin] = self.locked.get(coin, ZERO) + amount
        order_id = str(self._next_id)
        self._next_id += 1
        self._joined += 1
        ahead = self.book.depth_at(target.price, target.side is Side.BUY)
        order = SimOrder(order_id, target.side, target.price, target.volume, self.now_ms, self._joined, ahead)
        self.orders[order_id] = self.open[order_id] = order
        self._update_reach()
        return ("0", "Success", order_id)

    def _cancel(self, order_id: str) -> tuple[str, str, str | None]:
        order = self.open.pop(order_id, None)
        if order is None:
            return ("22", "order does not exist", order_id)
        coin, amount = self._lock_of(order.side, order.price, order.volume - order.deal)
        self.locked[coin] -= amount
        self.available[coin] = self.available.get(coin, ZERO) + amount
        order.status = OrderStatus.CANCELLED
        self._update_reach()
        return ("0", "Success", order_id)

    def _fill(self, order: SimOrder, volume: Decimal, t_ms: int) -> None:
        rules = self.symbol_rules
        base, quote = rules.base.lower(), rules.quote.lower()
        funds = order.price * volume
        fee = funds * self.fee
        if order.side is Side.BUY:
            self.locked[quote] -= funds
            self.available[base] = self.available.get(base, ZERO) + volume
        else:
            self.locked[base] -= volume
            self.available[quote] = self.available.get(quote, ZERO) + funds
        self.available[quote] = self.available.get(quote, ZERO) - fee
        order.deal += volume
        if order.deal >= order.volume:
            order.status = OrderStatus.FILLED
            del self.open[order.id]
            self._update_reach()
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        self.ledger.fill(t_ms, order.side, order.price, volume, fee)
        self.filled_since.add(order.id)

    def _lock_of(self, side: Side, price: Decimal, volume: Decimal) -> tuple[str, Decimal]:
        rules = self.symbol_rules
        return (rules.quote.lower(), price * volume) if side is Side.BUY else (rules.base.lower(), volume)

    def _update_reach(self) -> None:
        buys = [o.price for o in self.open.values() if o.side is Side.BUY]
        sells = [o.price for o in self.open.values() if o.side is Side.SELL]
        self._reach = (max(buys, default=ZERO), min(sells, default=ZERO))

    def base_total(self) -> Decimal:
        """The account's whole base balance."""
        base = self.symbol_rules.base.lower()
        return self.available.get(base, ZERO) + self.locked.get(base, ZERO)


def _groups(results: Sequence[tuple[str, str, str | None]]) -> tuple[ResultGroup, ...]:
    """Results grouped by code, as the sandbox answers (ids in the order given)."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for code, message, order_id in results:
        entry = groups.setdefault(code, (message, []))
        if order_id is not None:
            entry[1].append(order_id)
    return tuple(ResultGroup(code, message, tuple(ids)) for code, (message, ids) in groups.items())
