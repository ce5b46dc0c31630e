"""Server behaviour switches of the sandbox: fault injection, rate limits and the strictness knobs.

``Faults`` is a mutable settings object shared by the running app; tests and the ``/sandbox/faults`` control
endpoint change it while the server runs. Fault decisions draw from its own seeded RNG, so a test that sets a
rate of 1.0 (always) or 0.0 (never) is exact, and any rate in between is reproducible for a given seed.

``RateLimiter`` counts requests per API key (per client address for unsigned reads) in sliding windows:
reads 10 per second, writes 100 per 10 seconds by default, like the documented deployment.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rebalancer.sandbox.checks import SIGN_MODES

ANSWER_SHAPES = ("grouped", "per_order", "null")
MAX_LATENCY_SECONDS = 60.0
"""Longer injected delays would only tie up server threads; no client waits that long for an answer."""
DROP_MODES = ("500", "close")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` requests in any ``seconds`` window."""

    count: int
    seconds: float


@dataclass
class Faults:
    """What the sandbox does wrong on purpose, and how strict it is. All faults are off by default.

    Rates are probabilities in [0, 1] per request. ``endpoints`` restricts the faults to those paths
    (e.g. ``{"/open/api/mass_replaceV2"}``); empty means every ``/open/api`` path.
    ``drop_after_apply`` applies a write and then loses the answer: ``drop_mode`` "500" answers HTTP 500,
    "close" drops the connection without an answer. ``reject_place`` refuses that share of placements
    with ``reject_code`` and ``reject_message`` (``{api_key}`` in it quotes the caller's key back, as some
    deployments' error messages do). ``answer_shape`` picks the mass_replaceV2 answer shape ("grouped", "per_order",
    or "null": the write applied, answered with ``data: null``). ``duplicate_ids`` gives every row of a v2/new_order
    page the page's first id (a hostile answer: rows sharing one id).
    ``sign`` is the signature the server accepts: "any", "md5" or "hmac-sha256" (a deployment requiring HMAC).
    ``unserved`` paths answer 404, like a deployment that lacks them (e.g. ``{"/open/api/get_allticker"}``);
    ``legacy_paths`` serves only the old paths (the v2 ones answer 404), like deployments that document no v2 paths.
    ``order_info_without_status`` leaves ``status`` out of ``order_info`` rows, as the template docs' example does.
    """

    latency: float = 0.0
    error_500: float = 0.0
    rate_429: float = 0.0
    drop_after_apply: float = 0.0
    drop_mode: str = "500"
    reject_place: float = 0.0
    reject_code: str = "5"
    reject_message: str = "order placement rejected (injected fault)"
    endpoints: set[str] = field(default_factory=set)
    unserved: set[str] = field(default_factory=set)
    answer_shape: str = "grouped"
    rate_limits: bool = True
    read_limit: Limit = Limit(10, 1.0)
    write_limit: Limit = Limit(100, 10.0)
    time_window_s: int = 60
    max_page_size: int = 1000
    duplicate_ids: bool = False
    legacy_paths: bool = False
    order_info_without_status: bool = False
    sign: str = "any"
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)
        self.check()

    def check(self) -> None:
        """Raise ``ValueError`` if a setting is out of range."""
        for name in ("error_500", "rate_429", "drop_after_apply", "reject_place"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        numbers = (self.latency, self.read_limit.seconds, self.write_limit.seconds)
        if not all(math.isfinite(float(value)) for value in numbers):
            raise ValueError("latency and rate-limit windows must be finite numbers")
        if not 0 <= self.latency <= MAX_LATENCY_SECONDS:
            raise ValueError(f"latency must be 0 to {MAX_LATENCY_SECONDS:g} seconds")
        if self.time_window_s <= 0 or self.max_page_size <= 0:
            raise ValueError("time window and page size must be positive")
        limits = (self.read_limit, self.write_limit)
        if any(limit.count < 1 or limit.seconds <= 0 for limit in limits):
            raise ValueError("rate limits need a count of at least 1 and a window above 0 seconds")
        if self.drop_mode not in DROP_MODES:
            raise ValueError(f"drop_mode must be one of {DROP_MODES}")
        if self.sign not in SIGN_MODES:
            raise ValueError(f"sign must be one of {SIGN_MODES}")
        if self.answer_shape not in ANSWER_SHAPES:
            raise ValueError(f"answer_shape must be one of {ANSWER_SHAPES}")

    def rejection(self, api_key: str) -> str:
        """The message of an injected rejection, quoting ``api_key`` where ``reject_message`` says ``{api_key}``."""
        return self.reject_message.replace("{api_key}", api_key)

    def applies_to(self, path: str) -> bool:
        """Whether the injected faults concern ``path``."""
        return path.startswith("/open/api/") and (not self.endpoints or path in self.endpoints)

    def roll(self, rate: float) -> bool:
        """Draw once: True with probability ``rate`` (exactly never at 0 and always at 1)."""
        if rate <= 0:
            return False
        return rate >= 1 or self.rng.random() < rate

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply settings from JSON (the control endpoint), all or none.

        Unknown names or bad values raise ``ValueError`` (or ``TypeError``/``KeyError`` for a wrong shape).
        """
        known = {f.name for f in fields(self)} - {"rng"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("read_limit", "write_limit"):
                value = Limit(int(value["count"]), float(value["seconds"]))
            elif name in ("endpoints", "unserved"):
                value = {str(v) for v in value}
            elif name in ("drop_mode", "reject_code", "reject_message", "answer_shape", "sign"):
                value = str(value)
            elif name in ("rate_limits", "duplicate_ids", "legacy_paths", "order_info_without_status"):
                value = bool(value)
            elif name in ("time_window_s", "max_page_size", "seed"):
                value = int(value)
            else:
                value = float(value)
            converted[name] = value
        before = {name: getattr(self, name) for name in converted}
        for name, value in converted.items():
            setattr(self, name, value)
        try:
            self.check()
        except ValueError:
            for name, value in before.items():
                setattr(self, name, value)
            raise
        if "seed" in changes:
            self.rng.seed(self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-safe data."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "rng":
                continue
            if isinstance(value, Limit):
                value = {"count": value.count, "seconds": value.seconds}
            elif isinstance(value, set):
                value = sorted(value)
            out[f.name] = value
        return out


class RateLimiter:
    """Sliding-window request counters per (client, class); thread-safe; the clock is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def allow(self, client: str, kind: str, limit: Limit) -> float | None:
        """Count one request; None if allowed, else the seconds until the window has room again."""
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault((client, kind), deque())
            while seen and seen[0] <= now - limit.seconds:
                seen.popleft()
            if len(seen) >= limit.count:
                return max(seen[0] + limit.seconds - now, 0.0)
            seen.append(now)
            return None

    def reset(self) -> None:
        """Forget every counter."""
        with self._lock:
            self._seen.clear()
