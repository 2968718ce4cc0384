"""Raw sessions side by side in process memory, so a panel chunk is one numpy take.

Raw sessions are immutable, and a scan asks for the same window again and again (and the next day
for the window moved by one session). :class:`SessionStack` keeps the decoded sessions of one span
of consecutive calendar sessions in a single float32 array laid out (ticker id, session, field):
every symbol's whole window is then one contiguous run of memory, and a chunk of symbols is a single
fancy index instead of one random read per symbol and session.

Each slot remembers the serial of the :class:`~services.fetcher.store.SessionData` it was filled
from, so a session fetched again (one that was still in progress, or that failed before) replaces
the old column and a failed session stays NaN. The span has spare slots after its end, so the next
sessions are appended in place; a window outside the span moves it (the overlap is kept). Windows
longer than ``max_slots`` are not stacked: the caller gathers those from the sessions directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.fetcher.store import PANEL_FIELDS, SessionData

# Spare session slots after the span's end (appended sessions) and spare ticker rows (new listings).
HEADROOM_SLOTS = 16
HEADROOM_ROWS = 512


class SessionStack:
    """float32 (ticker id, session slot, OHLCV) for one span of consecutive calendar sessions."""

    def __init__(self, max_slots: int) -> None:
        self.max_slots = max_slots
        self.base = 0
        self.data = np.empty((0, 0, len(PANEL_FIELDS)), dtype=np.float32)
        self.serials = np.zeros(0, dtype=np.int64)  # serial of the SessionData in each slot; 0: NaN

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def _covers(self, first: int, n: int, n_ids: int) -> bool:
        # The last row stays NaN (never a ticker's): ids -1 are pointed at it.
        return self.base <= first and first + n <= self.base + self.data.shape[1] and n_ids < self.data.shape[0]

    def _reshape(self, first: int, n: int, n_ids: int) -> None:
        """A new span holding sessions ``first``..``first + n - 1``, keeping what overlaps the old one."""
        old, old_base = self.data, self.base
        old_end = old_base + old.shape[1]
        start, end = first, first + n
        # Keep the old span too when both fit: two windows in use (say two as-of dates) then share it.
        if old.shape[1] and min(start, old_base) + self.max_slots >= max(end, old_end - HEADROOM_SLOTS):
            start, end = min(start, old_base), max(end, old_end - HEADROOM_SLOTS)
        rows = max(n_ids + 1 + HEADROOM_ROWS, old.shape[0])
        data = np.full((rows, end - start + HEADROOM_SLOTS, len(PANEL_FIELDS)), np.nan, dtype=np.float32)
        serials = np.zeros(data.shape[1], dtype=np.int64)
        lo, hi = max(start, old_base), min(start + data.shape[1], old_end)
        if hi > lo:
            # The old NaN row moves to the new last row; every ticker row keeps its id.
            data[: old.shape[0] - 1, lo - start : hi - start] = old[:-1, lo - old_base : hi - old_base]
            serials[lo - start : hi - start] = self.serials[lo - old_base : hi - old_base]
        self.data, self.serials, self.base = data, serials, start

    def load(self, first: int, sessions: Sequence[SessionData | None], n_ids: int) -> bool:
        """Make slots ``first``.. hold ``sessions`` (None: NaN); False when the window is too long to stack.

        ``first`` is the calendar position of ``sessions[0]``; ``n_ids`` the ticker index's size.
        """
        n = len(sessions)
        if n > self.max_slots:
            return False
        if not self._covers(first, n, n_ids):
            self._reshape(first, n, n_ids)
        width = len(PANEL_FIELDS)
        for j, data in enumerate(sessions):
            slot = first - self.base + j
            serial = data.serial if data is not None else 0
            if self.serials[slot] == serial:
                continue
            column = self.data[:, slot]
            if self.serials[slot]:
                column[:] = np.nan
            if data is not None:
                column[data.ids] = data.padded[:-1, :width]
            self.serials[slot] = serial
        return True

    def holds(self, first: int, sessions: Sequence[SessionData | None]) -> bool:
        """Whether slots ``first``.. hold exactly ``sessions`` now (another window may have moved the span)."""
        n = len(sessions)
        if not (self.base <= first and first + n <= self.base + self.data.shape[1]):
            return False
        serials = [d.serial if d is not None else 0 for d in sessions]
        return bool(np.array_equal(self.serials[first - self.base : first - self.base + n], serials))

    def take(self, ids: np.ndarray, first: int, n: int) -> np.ndarray:
        """(len(ids), n, 5) float32 of sessions ``first``..``first + n - 1``; NaN rows for ids -1.

        The span must hold them: :meth:`load` first, and :meth:`holds` after any await in between.
        """
        rows = np.where(ids >= 0, ids, self.data.shape[0] - 1)
        lo = first - self.base
        return self.data[rows, lo : lo + n]
