"""What the compute replicas score with, read from ``Compute.Describe`` before any work.

A scan's fingerprint names the feature and model versions, so knowing them up front lets the
gateway look a scan up in the caches before fetching or scoring anything. The description is read
once and again whenever a scored chunk reports other versions (replicas rolled to new models).
"""

from __future__ import annotations

import numpy as np
import structlog

from gateway.backends import Backends
from services.common.codec import encode_block
from services.common.singleflight import SingleFlight
from services.contract.features import FEATURE_VERSION, FEATURES, LEVEL_FIELDS, SPARKLINE_LENGTH
from services.contract.models import MODEL_NAMES
from technic.v1 import common_pb2, compute_pb2

log = structlog.get_logger(__name__)


class ModelCatalog:
    """The latest ``DescribeResponse`` of the compute replicas, read once and on a version change."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.description: compute_pb2.DescribeResponse | None = None
        self._calls: SingleFlight[str, compute_pb2.DescribeResponse] = SingleFlight()

    @property
    def feature_version(self) -> str:
        return self.description.feature_version if self.description else ""

    @property
    def model_versions(self) -> dict[str, str]:
        return dict(self.description.model_versions) if self.description else {}

    async def describe(self) -> compute_pb2.DescribeResponse:
        """The description, asked for when none is known yet (one call at a time)."""
        if self.description is not None:
            return self.description
        description = await self._calls.run("describe", self.backends.describe)
        self.description = description
        return description

    def check(self, response: compute_pb2.ScoreResponse) -> None:
        """Forget the description when a scored chunk was made with other versions."""
        described = self.description
        if described is None:
            return
        if response.feature_version != described.feature_version or dict(response.model_versions) != dict(
            described.model_versions
        ):
            log.info(
                "compute reports other versions, describing again",
                described=dict(described.model_versions),
                scored=dict(response.model_versions),
            )
            self.description = None

    def errored_response(self, symbols: list[str], chunk_index: int) -> compute_pb2.ScoreResponse:
        """A ScoreResponse with every row in state ERROR (NaN values), for a chunk that could not be scored."""
        described = self.description
        fields = {
            "features": tuple(described.feature_fields) if described else FEATURES,
            "scores": tuple(described.score_fields) if described else MODEL_NAMES,
            "levels": tuple(described.level_fields) if described else LEVEL_FIELDS,
        }
        response = compute_pb2.ScoreResponse(
            chunk_index=chunk_index,
            symbols=symbols,
            states=[common_pb2.SYMBOL_STATE_ERROR] * len(symbols),
            feature_version=self.feature_version or FEATURE_VERSION,
            model_versions=self.model_versions,
            stats=common_pb2.Stats(counters={"errored": len(symbols)}),
        )
        for name, names in fields.items():
            array = np.full((len(symbols), len(names)), np.nan, dtype=np.float32)
            setattr(response, name, encode_block(array, rows=symbols, fields=names))
        sparklines = np.full(
            (len(symbols), described.sparkline_length if described else SPARKLINE_LENGTH), np.nan, dtype=np.float32
        )
        response.sparklines = encode_block(sparklines, rows=symbols)
        return response
