"""The four refresh policies the churn benchmark compares; each runs one pass on a snapshot it was handed.

1. ``replace_all``: cancel every order and place the whole ladder, every pass, in one mass_replaceV2 batch.
2. ``all_or_nothing``: keep the book if every order fits its level (orders paired with levels by rank, nearest
   first, within the job's price and size tolerance), else cancel everything and re-place, in one batch.
3. ``per_order``: our diff (``compute_plan``), each cancel and placement sent as its own request.
4. ``rebalancer``: the product's pass on an account that is the job's own (``exchange.account: dedicated``): the
   diff; the balances only when its placements cost more than its cancels release and the last read, less what was
   placed since, no longer pays for them; one mass_replaceV2 batch through the product's executor (which reads the
   book back only when the answer left an order unsettled).
5. ``rebalancer_shared``: the same on an account others may trade on (the default, ``exchange.account: shared``):
   the balances are read whenever the placements cost more than the cancels release.

The first three are handed the full snapshot (ticker, balances, open orders: a refresh that places checks what it
can pay for); the two ``rebalancer`` ones one without the balances, as the product reads it (``LATE_BALANCES``).
A policy returns how many order operations (cancels + placements) it sent; the caller counts HTTP requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from market_sim import CountingClient

from rebalancer.core import diff, gate, ladder
from rebalancer.core.plan import compute_plan, draft_plan, finish_plan
from rebalancer.engine.executor import execute
from rebalancer.errors import RejectedError
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, Side, Target

Policy = Callable[[Job, MarketSnapshot, CountingClient], int]


def by_rank(orders: Sequence[Order], targets: Sequence[Target]) -> list[tuple[Order, Target]]:
    """Orders paired with targets of their side by rank, nearest the reference first (unpaired ones dropped).

    Targets come from the ladder nearest first; orders are put in the same order (highest buy, lowest sell).
    """
    pairs: list[tuple[Order, Target]] = []
    for side in (Side.BUY, Side.SELL):
        mine = sorted((o for o in orders if o.side is side), key=lambda o: o.price, reverse=side is Side.BUY)
        wanted = sorted((t for t in targets if t.side is side), key=lambda t: t.price, reverse=side is Side.BUY)
        pairs.extend(zip(mine, wanted, strict=False))
    return pairs


def _replace_everything(job: Job, snapshot: MarketSnapshot, client: CountingClient, targets: Sequence[Target]) -> int:
    cancel_ids = [o.id for o in snapshot.open_orders if o.is_open]
    client.replace(snapshot.rules, cancel_ids, targets)
    return len(cancel_ids) + len(targets)


def replace_all(job: Job, snapshot: MarketSnapshot, client: CountingClient) -> int:
    """Policy 1: cancel every open order and place the whole ladder in one batch, whatever stands."""
    return _replace_everything(job, snapshot, client, ladder.build(job, snapshot).targets)


def all_or_nothing(job: Job, snapshot: MarketSnapshot, client: CountingClient) -> int:
    """Policy 2: nothing when every level has an order that fits it, else replace everything in one batch."""
    targets = ladder.build(job, snapshot).targets
    standing = [o for o in snapshot.open_orders if o.is_open]
    pairs = by_rank(standing, targets)
    if len(standing) == len(targets) == len(pairs) and all(diff.fits(o, t, job.tolerance) for o, t in pairs):
        return 0
    return _replace_everything(job, snapshot, client, targets)


def per_order(job: Job, snapshot: MarketSnapshot, client: CountingClient) -> int:
    """Policy 3: our minimal diff, one ``cancel_order`` / ``create_order`` request per operation.

    A refused operation (none is expected on the manual clock) still counts: it was sent.
    """
    plan = compute_plan(job, snapshot, None)
    sent = 0
    for action in plan.actions:
        if action.action == "keep":
            continue
        sent += 1
        try:
            if action.action == "cancel":
                assert action.order_id is not None
                client.cancel_order(job.symbol, action.order_id)
            else:
                assert action.level is not None
                client.create_order(snapshot.rules, Target(action.level, action.side, action.price, action.volume))
        except RejectedError:
            continue
    return sent


def rebalancer(job: Job, snapshot: MarketSnapshot, client: CountingClient) -> int:
    """Policies 4 and 5: the product's pass after the snapshot: draft, balances if needed, plan, ``execute``.

    Whether the balances are read or carried is the client's (``dedicated``), as in the product.
    """
    draft = draft_plan(job, snapshot, None)
    plan = finish_plan(draft, client.balances(draft.funding_need) if draft.needs_balances else None)
    if not plan.has_changes:
        return 0
    ticker = snapshot.ticker
    book = gate.book_of(snapshot.rules, snapshot.open_orders, None, plan.reference_price, ticker.bid, ticker.ask)
    execute(client, snapshot.rules, plan, snapshot.open_orders, gate=gate.Checkpoint(job, book))
    return plan.summary["cancel"] + plan.summary["place"]


POLICIES: dict[str, Policy] = {
    "replace_all": replace_all,
    "all_or_nothing": all_or_nothing,
    "per_order": per_order,
    "rebalancer": rebalancer,
    "rebalancer_shared": rebalancer,
}
"""The policies in the order the tables show them."""

LATE_BALANCES = frozenset({"rebalancer", "rebalancer_shared"})
"""Policies that read the balances themselves, only when they need them."""

DEDICATED = frozenset({"rebalancer"})
"""Policies whose client has the account to itself (``exchange.account: dedicated``)."""
