"""What the generation and judge stages keep about a server while they send: whether to give it up, and why
requests failed.

:class:`ServerHealth` gives a server up after :data:`GIVE_UP_AFTER` connection failures in a row while none of its
requests has succeeded yet (a wrong URL or a dead server), so the rest are not sent one timeout at a time. A server
that answered once is never given up: its later failures are counted like any other.
:class:`FailureTally` counts failures by kind and keeps the first message, for one line in the console and the log.
"""

from __future__ import annotations

from collections import Counter

GIVE_UP_AFTER = 5


class ServerHealth:
    """``record`` each answer; ``given_up`` is the reason once the server is given up, else ``None``."""

    def __init__(self, server: str) -> None:
        self.server = server  # e.g. "the server of qwen-7b at http://localhost:8000/v1"
        self.ok = 0
        self.connection_failures_in_row = 0
        self.given_up: str | None = None

    def record(self, error_kind: str | None, error: str | None = None) -> bool:
        """One answer (``error_kind`` ``None`` when it succeeded); True when this answer gave the server up."""
        if error_kind is None:
            self.ok += 1
        self.connection_failures_in_row = self.connection_failures_in_row + 1 if error_kind == "connection" else 0
        if self.ok or self.given_up or self.connection_failures_in_row < GIVE_UP_AFTER:
            return False
        last = f" (last: {error})" if error else ""
        self.given_up = f"{self.server} failed {GIVE_UP_AFTER} requests in a row and none succeeded{last}"
        return True


class FailureTally:
    """Failures by kind, and the first one's message."""

    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self.first: str | None = None

    def add(self, kind: str | None, message: str) -> None:
        self.by_kind[kind or "error"] += 1
        self.first = self.first or message

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def describe(self) -> str:
        """``"(http_503: 3, timeout: 1); first: <message>"``."""
        return f"({', '.join(f'{k}: {v}' for k, v in self.by_kind.most_common())}); first: {self.first}"
