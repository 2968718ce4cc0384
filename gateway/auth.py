"""The API-key check of the HTTP API, as a pure function.

A header value is compared as the bytes the client sent (HTTP header values reach the application
decoded as Latin-1, so encoding them back gives those bytes) with every configured key in UTF-8,
each in constant time and all of them every time, so the time does not tell which key matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence


def matching_key(sent: str | None, keys: Sequence[bytes]) -> bytes | None:
    """The configured key equal to ``sent``, or None (also for a missing or empty header)."""
    try:
        given = (sent or "").encode("latin-1")
    except UnicodeEncodeError:  # not a header value a client can send
        given = b""
    matched = None
    for key in keys:  # every key is compared, so the time does not depend on which one matched
        if hmac.compare_digest(given, key) and given:
            matched = key
    return matched


def key_matches(sent: str | None, keys: Sequence[bytes]) -> bool:
    """Whether ``sent`` is one of the configured ``keys``."""
    return matching_key(sent, keys) is not None
