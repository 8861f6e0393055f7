"""Adaptive concurrency: fewer requests in flight when a server rate-limits, more again when it copes.

Additive increase, multiplicative decrease (as TCP does): a 429 halves the number of requests allowed in
flight (never below one); every ``grow_after`` successes in a row allow one more, up to the configured
concurrency. A burst of 429s from requests that were all sent under the same limit halves it once, not once
per response: each slot remembers the limit's epoch when it was taken, and only a 429 from the current
epoch lowers the limit again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger("vlmpipe.core.limiter")

RATE_LIMITED_KINDS = frozenset({"http_429"})


@dataclass
class Slot:
    """One request in flight; the caller sets ``outcome`` to its ``error_kind`` or ``"ok"``."""

    epoch: int
    outcome: str | None = None


#: successes in a row after which the limiter allows one more request in flight (generation and judge)
GROW_AFTER = 8


class AdaptiveLimiter:
    """An async semaphore whose size follows the server's 429s."""

    def __init__(self, maximum: int, *, grow_after: int = 8, name: str = "") -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self.limit = maximum
        self.grow_after = max(1, grow_after)
        self.name = name
        self.in_flight = 0
        self.epoch = 0
        self.min_limit = maximum
        self.backoffs = 0
        self.changes: list[tuple[float, int, str]] = []
        self._streak = 0
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            slot = Slot(self.epoch)
        try:
            yield slot
        finally:
            async with self._cond:
                self.in_flight -= 1
                self._record(slot)
                self._cond.notify_all()

    def _record(self, slot: Slot) -> None:
        if slot.outcome in RATE_LIMITED_KINDS:
            self._streak = 0
            if slot.epoch == self.epoch:
                self._set(max(1, self.limit // 2), "rate limited (429)")
                self.backoffs += 1
        elif slot.outcome == "ok":
            self._streak += 1
            if self._streak >= self.grow_after and self.limit < self.maximum:
                self._streak = 0
                self._set(self.limit + 1, f"{self.grow_after} successes in a row")

    def _set(self, limit: int, why: str) -> None:
        if limit != self.limit:
            log.info("%s: concurrency %d -> %d (%s)", self.name or "model", self.limit, limit, why)
        self.limit = limit
        self.epoch += 1
        self.min_limit = min(self.min_limit, limit)
        self.changes.append((time.monotonic(), limit, why))
