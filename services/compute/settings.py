"""Compute settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import PROJECT_ROOT, CommonSettings


class ComputeSettings(CommonSettings):
    # Base port. Under supervisord numprocs, replica n (1-based, TECHNIC_COMPUTE_REPLICA) listens
    # on compute_port + n - 1, so four replicas take 50061-50064.
    compute_port: int = 50061
    compute_replica: int = 0
    # Threads per replica: 4 replicas on 4 CPUs means 1 each.
    numba_threads: int = 1
    xgboost_threads: int = 1
    # Seconds a scored chunk stays cached under its (content-addressed) panel chunk key; 0 turns the
    # cache off. Scores never go stale for a key, so this only bounds Redis memory.
    scored_ttl_seconds: int = 86_400
    # Folder of the alpha models (<name>.ubj + <name>.json).
    model_dir: Path = PROJECT_ROOT / "services" / "compute" / "artifacts"

    @property
    def listen_port(self) -> int:
        """The port this replica serves on."""
        return self.compute_port + max(self.compute_replica - 1, 0)
