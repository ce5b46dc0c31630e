"""Balances carried between reads for a job that has its account to itself (``exchange.account: dedicated``).

On an account nobody else trades on, what is available of a coin only goes down when the job places an order:
cancels and fills of its own orders give back (a filled buy locks nothing more and credits the base coin; a filled
sell credits the quote coin). So the last balance read, less everything the job has placed since, is a lower bound
on what is available now. A pass whose placements that bound pays for needs no read: funding would keep every
placement with the true balance as well, so the plan is the same. Otherwise the pass reads, and the read becomes the
new bound. Releases and fills are never added back (the bound stays a lower bound), so a busy job reads again once
its placements have used up what the last read showed.

A refused write forgets the bound (a refusal may mean the balances are not what they seemed). A bound is kept only
while exactly one dedicated client of the (deployment, API key) is open in the process: two jobs on one account
spend from each other's balances, so neither may carry it. Another process or person trading on the account breaks
the assumption the job file declares; the refusal that follows makes the next pass read again.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from collections.abc import Mapping
from decimal import Decimal

from rebalancer.models import ZERO, Balance, Balances, FundingNeed

log = logging.getLogger(__name__)

_open: collections.Counter[tuple[str, str]] = collections.Counter()
_open_lock = threading.Lock()


class CarriedBalances:
    """A lower bound on one account's available balances, carried from its last read (see the module docstring)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        # The registry holds a digest of the key, never the key itself.
        self._account = (base_url.rstrip("/"), hashlib.sha256(api_key.encode("utf-8")).hexdigest())
        self._lock = threading.Lock()
        self._bound: dict[str, Decimal] | None = None
        self._closed = False
        self._warned = False
        with _open_lock:
            _open[self._account] += 1

    @property
    def sole(self) -> bool:
        """True while this is the only open dedicated client of its account in the process."""
        with _open_lock:
            return _open[self._account] == 1

    def cover(self, need: FundingNeed) -> Balances | None:
        """The carried balances if they pay for ``need`` (every coin's bound ≥ its shortfall), else None."""
        with self._lock:
            bound = self._bound
            if bound is None or self._closed:
                return None
            if not self.sole:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "exchange.account is dedicated, but several jobs trade on one account of %s: "
                        "balances are read whenever placements need them",
                        self._account[0],
                    )
                return None
            if any(bound.get(coin, ZERO) < short for coin, short in need.shortfall.items()):
                return None
            return Balances({coin: Balance(amount) for coin, amount in bound.items()})

    def observe(self, balances: Balances) -> None:
        """A balance read: it is the new bound."""
        with self._lock:
            self._bound = {coin: balance.available for coin, balance in balances.coins.items()}

    def spend(self, locks: Mapping[str, Decimal]) -> None:
        """Placements are being sent: what they lock comes off the bound (never below zero), whatever the answer."""
        with self._lock:
            if self._bound is None:
                return
            for coin, amount in locks.items():
                self._bound[coin] = max(ZERO, self._bound.get(coin, ZERO) - amount)

    def forget(self) -> None:
        """Drop the bound: the next pass that needs balances reads them."""
        with self._lock:
            self._bound = None

    def close(self) -> None:
        """The client is closed: it no longer counts as one of the account's dedicated clients."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._bound = None
        with _open_lock:
            _open[self._account] -= 1
            if _open[self._account] <= 0:
                del _open[self._account]
