"""Compile every Numba kernel into the disk cache and check the shipped models load.

``python -m services.compute.warm`` runs at image build time, so that a replica started from the
image finds its kernels cached and reports SERVING within seconds.
"""

from __future__ import annotations

import sys

from services.compute.features import warm_up
from services.compute.models import AlphaModels
from services.compute.settings import ComputeSettings


def main() -> int:
    settings = ComputeSettings()
    AlphaModels.load(settings.model_dir, settings.xgboost_threads)
    warm_up()
    return 0


if __name__ == "__main__":
    sys.exit(main())
