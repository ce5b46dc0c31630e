"""Writing a recording of the market stream: gzip JSON lines, the input of ``replay``.

The first line, when the deployment's rules are known, is ``{"t": <ms>, "rules": {"<sym>": {"tick": "0.01",
"lot": "0.0001"}}}``; then one ``{"t": <receive time ms>, "frame": <message>}`` per frame of the followed channels,
acknowledgements included, in the order received. The message is the frame's decompressed JSON text itself, so
its numbers stay exactly as the exchange wrote them (never read back through a float, trailing zeros kept); only
line breaks between its tokens become spaces, to keep one record a line. Pings are answered by the client and not
recorded; frames the client cannot parse are counted there and not recorded either.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Mapping
from pathlib import Path

from rebalancer.models import SymbolRules, format_decimal
from rebalancer.stream.client import Received
from rebalancer.stream.frames import SubAck


def rules_line(t_ms: int, rules: Mapping[str, SymbolRules]) -> str:
    """The first line of a recording: each symbol's price tick and volume lot, as strings."""
    body = {sym: {"tick": format_decimal(r.tick), "lot": format_decimal(r.lot)} for sym, r in sorted(rules.items())}
    return json.dumps({"t": t_ms, "rules": body}, separators=(",", ":"))


def frame_line(received_ms: int, text: str) -> str:
    """One frame's line: the frame's own JSON text (valid JSON has line breaks only between tokens)."""
    flat = text.replace("\r", " ").replace("\n", " ")
    return f'{{"t":{received_ms},"frame":{flat}}}'


class Recorder:
    """A subscriber that writes every frame it is given to a gzip file; ``close()`` leaves a whole gzip file.

    ``refused`` lists the channels the stream refused to subscribe (their acknowledgement's status not ``ok``).
    ``error`` says why the file could not be written (a full disk...): the first failure, kept for the owner to
    report, since writes happen on the stream client's thread. Opening a file that cannot be made raises OSError.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: gzip.GzipFile | None = gzip.GzipFile(path, "wb")
        self.frames = 0
        self.bytes = 0
        self.refused: list[str] = []
        self.error: str | None = None

    def write_rules(self, t_ms: int, rules: Mapping[str, SymbolRules]) -> None:
        """Write the rules line (call before any frame)."""
        self._write(rules_line(t_ms, rules))

    def __call__(self, frame: Received) -> None:
        """Record one frame (called from the stream client's thread)."""
        if isinstance(frame.message, SubAck) and frame.message.status != "ok":
            with self._lock:
                self.refused.append(frame.message.channel)
        with self._lock:
            self.frames += 1
        self._write(frame_line(frame.received_ms, frame.text))

    def _write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        with self._lock:
            if self._file is None or self.error is not None:
                return
            try:
                self._file.write(data)
            except OSError as exc:
                self.error = exc.strerror or str(exc)
                return
            self.bytes += len(data)

    def flush(self) -> None:
        """Push what was written so far into the file as whole gzip blocks: a reader (or a crash) sees every
        frame up to here. The recorder's owner calls it about once a second."""
        with self._lock:
            if self._file is not None and self.error is None:
                try:
                    self._file.flush()
                except OSError as exc:
                    self.error = exc.strerror or str(exc)

    def close(self) -> None:
        """Finish the gzip stream and close the file; idempotent."""
        with self._lock:
            handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                self.error = self.error or exc.strerror or str(exc)
