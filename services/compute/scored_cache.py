"""Scored chunks cached under the content digest of the panel chunk they were computed from.

The fetcher sets ``ChunkRef.content_digest`` from what defines a chunk (as-of session, lookback,
symbols, sessions present, splits applied), so one digest always means one block. Its scores are
then a pure function of the digest, the feature version and the model versions: a warm scan, or any
scan that builds the same chunk again, reads them instead of computing them. A chunk without a
digest (written by hand, or inline in degraded mode) is never cached. Every replica shares the cache
through Redis (degraded: each its own memory).

Keyspace: ``technic:scored:<models digest>:<content digest>`` holds one serialized ScoreResponse
without its per-call fields (stats, replica); it expires after ``TECHNIC_COMPUTE_SCORED_TTL_SECONDS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

PREFIX = "technic:scored:"


def scored_key(content_digest: str, feature_version: str, model_versions: Mapping[str, str]) -> str:
    """The cache key of the scores of the chunk with ``content_digest`` under these feature and model versions."""
    models = ",".join(f"{name}={version}" for name, version in sorted(model_versions.items()))
    digest = hashlib.blake2b(f"{feature_version}|{models}".encode(), digest_size=8).hexdigest()
    return f"{PREFIX}{digest}:{content_digest}"
