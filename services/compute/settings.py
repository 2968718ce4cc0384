"""Compute settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from services.common.settings import CommonSettings


class ComputeSettings(CommonSettings):
    # Each replica gets its own port (supervisord: 50061-50064).
    compute_port: int = 50061
    # Threads per replica: 4 replicas on 4 CPUs means 1 each.
    numba_threads: int = 1
    xgboost_threads: int = 1
