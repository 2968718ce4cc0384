"""Fault knobs of the simulator and the dice that decide, per request, which fault (if any) to inject.

Rates are probabilities per Polygon request (booleans count as 0 or 1). The knobs:

* ``latency_ms`` + ``jitter_ms``: added delay (fixed plus uniform 0..jitter) before answering.
* ``rate_429``: "too many requests" answers; ``retry_after`` adds a ``Retry-After`` header
  (``true`` = 1 second, a number = that many seconds, ``false``/0 = no header, as Polygon sometimes does).
* ``rate_5xx``: 500/502/503/504 answers.
* ``rate_malformed``: a 200 whose body is not JSON (a NUL byte injected mid-body).
* ``rate_truncated``: a 200 whose body stops part-way (Content-Length matches the cut body).
* ``results_null``: answers without results carry ``"results": null`` instead of no key.
* ``drip_seconds``: the body is sent in small pieces spread over this many seconds.
* ``auth_fail``: rate of answers refused as if the key were unknown (``auth_fail_status`` 401, or 403
  NOT_AUTHORIZED).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class FaultError(ValueError):
    """A knob name or value the simulator does not understand."""


@dataclass
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_5xx: float = 0.0
    rate_malformed: float = 0.0
    rate_truncated: float = 0.0
    results_null: float = 0.0
    drip_seconds: float = 0.0
    auth_fail: float = 0.0
    auth_fail_status: float = 401.0

    def update(self, knobs: Mapping[str, Any]) -> None:
        """Set the given knobs (bools become 0/1); raises :class:`FaultError` on unknown names or bad values."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(knobs) - names)
        if unknown:
            raise FaultError(f"unknown fault knob(s) {unknown}; known: {sorted(names)}")
        parsed: dict[str, float] = {}
        for name, value in knobs.items():
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, int | float) or value < 0:
                raise FaultError(f"fault knob {name!r} must be a non-negative number or a boolean, got {value!r}")
            if (name.startswith("rate_") or name in ("results_null", "auth_fail")) and value > 1:
                raise FaultError(f"fault knob {name!r} is a probability: 0..1, got {value!r}")
            if name == "auth_fail_status" and value not in (401, 403):
                raise FaultError("auth_fail_status must be 401 or 403")
            parsed[name] = float(value)
        for name, value in parsed.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What to do with one request."""

    delay_s: float = 0.0
    status: int = 200  # 401/403/429/5xx replace the answer
    retry_after: int | None = None
    malformed: bool = False
    truncated: bool = False
    results_null: bool = False
    drip_seconds: float = 0.0

    @property
    def kind(self) -> str | None:
        """Name of the injected fault for the statistics (None when the answer is clean)."""
        if self.status != 200:
            return str(self.status)
        if self.malformed:
            return "malformed"
        if self.truncated:
            return "truncated"
        return None


class FaultDice:
    """Rolls the knobs into a :class:`Decision` per request, from a seeded generator (replayable)."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self.rng = random.Random(seed)

    def roll(self) -> Decision:
        f, rng = self.faults, self.rng
        delay = (f.latency_ms + (rng.uniform(0.0, f.jitter_ms) if f.jitter_ms else 0.0)) / 1000.0
        status, retry_after = 200, None
        if f.auth_fail and rng.random() < f.auth_fail:
            status = int(f.auth_fail_status)
        elif f.rate_429 and rng.random() < f.rate_429:
            status = 429
            retry_after = max(1, round(f.retry_after)) if f.retry_after else None
        elif f.rate_5xx and rng.random() < f.rate_5xx:
            status = rng.choice((500, 502, 503, 504))
        malformed = status == 200 and bool(f.rate_malformed) and rng.random() < f.rate_malformed
        truncated = status == 200 and not malformed and bool(f.rate_truncated) and rng.random() < f.rate_truncated
        null = bool(f.results_null) and rng.random() < f.results_null
        return Decision(
            delay_s=delay,
            status=status,
            retry_after=retry_after,
            malformed=malformed,
            truncated=truncated,
            results_null=null,
            drip_seconds=f.drip_seconds,
        )

    def cut_point(self, size: int) -> int:
        """Where to cut or corrupt a body of ``size`` bytes (strictly inside it)."""
        return self.rng.randint(1, max(1, size - 1))
