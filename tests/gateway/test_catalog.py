"""The model catalog: one Describe call for many callers, forgotten when a chunk reports other versions."""

from __future__ import annotations

import asyncio

import numpy as np
import structlog

from gateway.catalog import ModelCatalog
from services.common.codec import decode_block
from services.contract.features import FEATURE_VERSION, FEATURES, LEVEL_FIELDS, SPARKLINE_LENGTH
from services.contract.models import MODEL_NAMES
from technic.v1 import common_pb2, compute_pb2

DESCRIBED = compute_pb2.DescribeResponse(
    feature_version="f9",
    model_versions={"alpha_5d": "v5", "alpha_10d": "v10"},
    feature_fields=["a", "b", "c"],
    score_fields=["s1"],
    level_fields=["l1", "l2"],
    sparkline_length=4,
)


class DescribingBackends:
    """Answers Describe after a short wait and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def describe(self) -> compute_pb2.DescribeResponse:
        self.calls += 1
        await asyncio.sleep(0.01)
        return DESCRIBED


def catalog() -> tuple[ModelCatalog, DescribingBackends]:
    backends = DescribingBackends()
    return ModelCatalog(backends), backends  # type: ignore[arg-type]


async def test_versions_are_empty_until_described_then_read_once() -> None:
    cat, backends = catalog()
    assert (cat.feature_version, cat.model_versions) == ("", {})
    first = await asyncio.gather(*(cat.describe() for _ in range(5)))
    assert backends.calls == 1 and all(d is first[0] for d in first)
    assert await cat.describe() is first[0] and backends.calls == 1
    assert cat.feature_version == "f9" and cat.model_versions == {"alpha_5d": "v5", "alpha_10d": "v10"}


async def test_a_chunk_with_other_versions_makes_it_describe_again() -> None:
    cat, backends = catalog()
    cat.check(compute_pb2.ScoreResponse(feature_version="other"))  # nothing described yet: no effect
    await cat.describe()
    same = compute_pb2.ScoreResponse(feature_version="f9", model_versions={"alpha_10d": "v10", "alpha_5d": "v5"})
    cat.check(same)
    assert cat.description is not None
    other = {"alpha_5d": "v6", "alpha_10d": "v10"}
    with structlog.testing.capture_logs() as logs:
        cat.check(compute_pb2.ScoreResponse(feature_version="f9", model_versions=other))
    assert cat.description is None
    assert logs == [
        {
            "event": "compute reports other versions, describing again",
            "log_level": "info",
            "described": dict(DESCRIBED.model_versions),
            "scored": other,
        }
    ]
    await cat.describe()
    assert backends.calls == 2
    cat.check(compute_pb2.ScoreResponse(feature_version="f8", model_versions=dict(DESCRIBED.model_versions)))
    assert cat.description is None


def blocks(response: compute_pb2.ScoreResponse) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], np.ndarray]]:
    out = {}
    for name in ("features", "scores", "levels", "sparklines"):
        block = decode_block(getattr(response, name))
        out[name] = (block.rows, block.fields, block.array)
    return out


async def test_an_errored_chunk_has_the_described_shape_all_nan() -> None:
    cat, _ = catalog()
    await cat.describe()
    response = cat.errored_response(["AAA", "BBB"], chunk_index=7)
    assert response.chunk_index == 7 and list(response.symbols) == ["AAA", "BBB"]
    assert list(response.states) == [common_pb2.SYMBOL_STATE_ERROR] * 2
    assert response.feature_version == "f9" and dict(response.model_versions) == dict(DESCRIBED.model_versions)
    assert dict(response.stats.counters) == {"errored": 2}
    got = blocks(response)
    assert got["features"][:2] == (("AAA", "BBB"), ("a", "b", "c")) and got["features"][2].shape == (2, 3)
    assert got["scores"][1] == ("s1",) and got["levels"][1] == ("l1", "l2")
    assert got["sparklines"][0] == ("AAA", "BBB") and got["sparklines"][2].shape == (2, 4)
    for _rows, _fields, array in got.values():
        assert array.dtype == np.float32 and np.isnan(array).all()


async def test_an_errored_chunk_before_any_description_uses_the_contract() -> None:
    cat, _ = catalog()
    response = cat.errored_response(["AAA"], chunk_index=0)
    assert response.feature_version == FEATURE_VERSION and dict(response.model_versions) == {}
    got = blocks(response)
    assert got["features"][1] == tuple(FEATURES) and got["scores"][1] == tuple(MODEL_NAMES)
    assert got["levels"][1] == tuple(LEVEL_FIELDS) and got["sparklines"][2].shape == (1, SPARKLINE_LENGTH)
