"""Every /open/api path the sandbox serves, with its method, whether it is signed and whether it writes.

The v2 paths and the old ones are both served; ``V2_ONLY`` are the paths a deployment that documents only the old
ones lacks (``Faults.legacy_paths``, ``rebalancer sandbox --legacy-paths``: they answer 404 there).
"""

from __future__ import annotations

from dataclasses import dataclass

from rebalancer.sandbox import history, legacy
from rebalancer.sandbox.openapi import (
    Handler,
    account,
    all_tickers,
    cancel_all,
    cancel_order,
    create_order,
    depth,
    mass_replace,
    open_orders,
    order_info,
    symbols,
    ticker,
)


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: HTTP method, whether it is signed, whether it writes, and its handler."""

    method: str
    signed: bool
    writes: bool
    handler: Handler


ROUTES: dict[str, Route] = {
    "/open/api/common/symbols": Route("GET", False, False, symbols),
    "/open/api/get_ticker": Route("GET", False, False, ticker),
    "/open/api/get_allticker": Route("GET", False, False, all_tickers),
    "/open/api/market_dept": Route("GET", False, False, depth),
    "/open/api/user/account": Route("GET", True, False, account),
    "/open/api/v2/new_order": Route("GET", True, False, open_orders),
    "/open/api/new_order": Route("GET", True, False, open_orders),
    "/open/api/order_info": Route("GET", True, False, order_info),
    "/open/api/v2/all_order": Route("GET", True, False, history.all_orders),
    "/open/api/all_order": Route("GET", True, False, history.all_orders),
    "/open/api/all_trade": Route("GET", True, False, history.all_trades),
    "/open/api/market": Route("GET", True, False, legacy.market),
    "/open/api/get_trades": Route("GET", False, False, legacy.get_trades),
    "/open/api/get_records": Route("GET", False, False, legacy.get_records),
    "/open/api/cancel_order_all": Route("POST", True, True, cancel_all),
    "/open/api/mass_replaceV2": Route("POST", True, True, mass_replace),
    "/open/api/create_order": Route("POST", True, True, create_order),
    "/open/api/cancel_order": Route("POST", True, True, cancel_order),
}
"""Every /open/api path the sandbox serves, as OPEN_API.md and the deployments spell them."""

V2_ONLY = frozenset(path for path in ROUTES if path.startswith("/open/api/v2/"))
"""The paths that deployments documenting only the old ones do not serve."""
