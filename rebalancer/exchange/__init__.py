"""The one narrow door to the exchange.

The runner and the executor see only the ``Exchange`` protocol below. ``rebalancer.exchange.client`` implements it
over HTTP for every /open/api deployment (the sandbox included); tests of the pure core may pass a small fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rebalancer.models import Balances, BatchAnswer, FundingNeed, Order, SymbolRules, Target, Ticker


class Exchange(Protocol):
    """What a reconcile pass needs from an exchange. Every method raises only ``rebalancer.errors`` exceptions."""

    def rules(self, symbol: str) -> SymbolRules:
        """Trading rules of ``symbol`` (cached by implementations: they change rarely)."""
        ...

    def ticker(self, symbol: str) -> Ticker:
        """Best bid, best ask and last price of ``symbol``."""
        ...

    def balances(self, need: FundingNeed | None = None) -> Balances:
        """Available and locked amount of every coin of the account.

        With ``need``, an implementation may answer with balances it knows to be at most the true ones, provided
        they pay for ``need`` (a funding check then keeps exactly what it would keep with the true ones).
        """
        ...

    def forget_balances(self) -> None:
        """Drop any balances carried between reads: the account may have been traded on by someone else."""
        ...

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        """Every open order (status 0, 1, 3 and 5) of ``symbol``, all pages; a failed page fails the whole read."""
        ...

    def order_info(self, symbol: str, order_id: str) -> Order:
        """One order by id, whatever its status."""
        ...

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        """One mass_replaceV2 request (≤ max_batch cancels and placements); ``OutcomeUnknown`` if the answer is lost."""
        ...

    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order of ``symbol`` (cancel_order_all)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
