"""A market read once and kept compact, for ``--vary``: the parent reads and checks the recording (or steps the walk)
once, and every worker replays the same events from this file, paying only for its own passes.

The file holds ``marshal`` chunks of plain tuples: a book as ``(t_ms, "p v p v …", "p v …")`` (its bids, then its
asks, each price and volume as the exact decimal's own text), a print as ``(t_ms, id, price, volume, side)``. Reading
it gives back equal events: ``Decimal(str(d))`` is ``d``, digits and exponent alike. The file is written and read by
one command in its own temporary directory; it is not an input format.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import chain
from pathlib import Path

from rebalancer.replay.market import Book, Event, Level, Print

CHUNK = 4096
"""Events per chunk: a worker holds one chunk of text at a time, not the market."""


def write_compact(events: Iterable[Event], path: Path) -> int:
    """Write ``events`` to ``path``; how many."""
    count = 0
    chunk: list[tuple[object, ...]] = []
    with path.open("wb") as out:
        for event in events:
            if isinstance(event, Book):
                chunk.append((event.t_ms, _text(event.bids), _text(event.asks)))
            else:
                chunk.append((event.t_ms, event.trade_id, str(event.price), str(event.volume), event.side))
            if len(chunk) == CHUNK:
                marshal.dump(chunk, out)
                count += len(chunk)
                chunk = []
        if chunk:
            marshal.dump(chunk, out)
            count += len(chunk)
    return count


def read_compact(path: Path) -> Iterator[Event]:
    """The events written to ``path``, in order."""
    with path.open("rb") as source:
        while True:
            try:
                chunk = marshal.load(source)
            except EOFError:
                return
            for record in chunk:
                if len(record) == 3:
                    t_ms, bids, asks = record
                    yield Book(t_ms, _levels(bids), _levels(asks))
                else:
                    t_ms, trade_id, price, volume, side = record
                    yield Print(t_ms, trade_id, Decimal(price), Decimal(volume), side)


def _text(levels: tuple[Level, ...]) -> str:
    return " ".join(map(str, chain.from_iterable(levels)))


def _levels(text: str) -> tuple[Level, ...]:
    if not text:
        return ()
    numbers = tuple(map(Decimal, text.split(" ")))
    return tuple(zip(numbers[::2], numbers[1::2], strict=True))
