"""Domain errors of the ranker; the servicer maps them to gRPC status codes."""

from __future__ import annotations

from collections.abc import Iterable


class RankerInputError(ValueError):
    """Invalid options or chunks (INVALID_ARGUMENT); the message names the allowed values."""


class ScanNotFoundError(LookupError):
    """No cached ranked scan under the given scan id or fingerprint (NOT_FOUND)."""


def allowed(values: Iterable[object]) -> str:
    """``"a, b, c"`` from any iterable of names, sorted, for error messages."""
    return ", ".join(sorted(str(v) for v in values))
