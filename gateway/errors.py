"""What can go wrong with a request, in words a client may read (no grpc here)."""

from __future__ import annotations


class ScanError(Exception):
    """A request the gateway cannot serve; the message is safe to show to a client."""


class InvalidRequest(ScanError):
    """The request itself is wrong."""


class NotFound(ScanError):
    """The scan or symbol asked for does not exist."""


class Unavailable(ScanError):
    """A backend needed for the request cannot be reached."""
