"""Balances carried between reads for a job that has its account to itself (``exchange.account: dedicated``).

On an account nobody else trades on, what is available of a coin only goes down when an order is placed: cancels
and fills of the account's own orders give back (a filled buy locks nothing more and credits the base coin, a filled
sell credits the quote coin, and fees come out of what a fill credits: the product never asks to pay them in a
platform coin). So the last balance read, less everything placed since, is a lower bound on what is available now.
A pass whose placements that bound pays for needs no read: funding would keep every placement with the true balance
as well, so the plan is the same. Otherwise the pass reads, and the read becomes the new bound. Releases and fills
are never added back, so a busy job reads again once its placements have used up what the last read showed.

The bound lives in one ledger per API key in the process, which every client of the key spends through, dedicated
or not; only a dedicated client that is the key's one open client may answer from it (two clients could both find
it sufficient before either sends). A placement refused, an answer lost (the batch may still land for a while: no
bound is trusted until ``LATE_WRITE_WINDOW`` has passed), or the job's lease taken afresh (another process may
have run the job meanwhile) forgets it. Another process or person trading on the account breaks the assumption
the job file declares; the refusal that follows makes the next pass read again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from rebalancer.defaults import LATE_WRITE_WINDOW
from rebalancer.models import ZERO, Balance, Balances, FundingNeed


class AccountLedger:
    """What one API key's clients in this process know of its available balances (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._bound: dict[str, Decimal] | None = None
        self._clients = 0
        self._sent: dict[str, Decimal] = {}  # everything placed since the process started, per coin
        self._not_before = 0.0

    def cover(self, need: FundingNeed) -> Balances | None:
        """The carried balances if they pay for ``need`` (every coin's bound ≥ its shortfall), else None."""
        with self._lock:
            bound = self._bound
            if bound is None or self._clients != 1 or self._clock() < self._not_before:
                return None
            if any(bound.get(coin, ZERO) < short for coin, short in need.shortfall.items()):
                return None
            return Balances({coin: Balance(amount) for coin, amount in bound.items()})

    def mark(self) -> dict[str, Decimal]:
        """Taken before a balance read: what had been placed by then (``observe`` subtracts anything since)."""
        with self._lock:
            return dict(self._sent)

    def observe(self, balances: Balances, mark: Mapping[str, Decimal]) -> None:
        """A balance read that started at ``mark``: the new bound, less what was placed while it was under way
        (none while a lost batch may still land)."""
        with self._lock:
            if self._clock() < self._not_before:  # a lost batch may land after this read
                self._bound = None
                return
            bound = {coin: balance.available for coin, balance in balances.coins.items()}
            for coin, total in self._sent.items():
                since = total - mark.get(coin, ZERO)
                if since:
                    bound[coin] = max(ZERO, bound.get(coin, ZERO) - since)
            self._bound = bound

    def spend(self, locks: Mapping[str, Decimal]) -> None:
        """Placements are being sent: what they lock comes off the bound (never below zero), whatever the answer."""
        with self._lock:
            for coin, amount in locks.items():
                self._sent[coin] = self._sent.get(coin, ZERO) + amount
                if self._bound is not None:
                    self._bound[coin] = max(ZERO, self._bound.get(coin, ZERO) - amount)

    def forget(self, *, for_seconds: float = 0.0) -> None:
        """Drop the bound; with ``for_seconds``, trust none (not even a new read) until that time has passed."""
        with self._lock:
            self._bound = None
            self._not_before = max(self._not_before, self._clock() + for_seconds)

    def forget_after_lost_write(self) -> None:
        """A write whose answer was lost may still land: no bound is trusted until the late-write window ends."""
        self.forget(for_seconds=LATE_WRITE_WINDOW.total_seconds())

    def opened(self) -> None:
        """One more client of the key is open."""
        with self._lock:
            self._clients += 1

    def closed(self) -> None:
        """A client of the key closed; with the last one goes the bound (nothing tracks the key any more)."""
        with self._lock:
            self._clients -= 1
            if self._clients <= 0:
                self._bound = None


_ledgers: dict[str, AccountLedger] = {}
_ledgers_lock = threading.Lock()


def ledger_for(api_key: str) -> AccountLedger:
    """The ledger every client of ``api_key`` in this process spends through (kept by a digest, never the key).

    Keyed by the key alone, whatever URL reaches it: one key is one account, and counting one account twice only
    costs reads.
    """
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    with _ledgers_lock:
        return _ledgers.setdefault(digest, AccountLedger())


def forget_ledgers() -> None:
    """Drop every key's ledger (for tests that replace an exchange's whole world under the same keys)."""
    with _ledgers_lock:
        _ledgers.clear()
