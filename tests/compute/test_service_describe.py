"""Compute.Describe on an in-process grpc.aio server, with the shipped models (no kernels compiled)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import orjson
import pytest

from services.compute.features import FEATURE_VERSION, FEATURES, LEVEL_FIELDS, SPARKLINE_LENGTH
from services.compute.models import AlphaModels
from services.compute.service import ComputeService
from services.compute.settings import ComputeSettings
from services.contract.models import MODEL_NAMES, WIN_PROB_MODEL
from technic.v1 import compute_pb2, compute_pb2_grpc
from tests.support import free_port

SETTINGS = ComputeSettings()


@pytest.fixture
async def served() -> AsyncIterator[tuple[ComputeService, compute_pb2_grpc.ComputeStub]]:
    service = ComputeService(SETTINGS)
    server = grpc.aio.server()
    compute_pb2_grpc.add_ComputeServicer_to_server(service, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield service, compute_pb2_grpc.ComputeStub(channel)
    await server.stop(None)
    await service.close()


async def test_describe_is_unavailable_until_the_models_are_loaded(
    served: tuple[ComputeService, compute_pb2_grpc.ComputeStub],
) -> None:
    _, stub = served
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Describe(compute_pb2.DescribeRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "loading" in (err.value.details() or "")


async def test_describe_reports_the_contract_and_the_shipped_models(
    served: tuple[ComputeService, compute_pb2_grpc.ComputeStub],
) -> None:
    service, stub = served
    service.use_models(AlphaModels.load(SETTINGS.model_dir))
    reply = await stub.Describe(compute_pb2.DescribeRequest())

    assert reply.feature_version == FEATURE_VERSION
    assert tuple(reply.feature_fields) == FEATURES and tuple(reply.level_fields) == LEVEL_FIELDS
    assert tuple(reply.score_fields) == MODEL_NAMES and reply.sparkline_length == SPARKLINE_LENGTH
    assert reply.replica == service.replica and reply.replica.endswith(f":{SETTINGS.listen_port}")

    metas = {name: orjson.loads((SETTINGS.model_dir / f"{name}.json").read_bytes()) for name in MODEL_NAMES}
    assert dict(reply.model_versions) == {name: meta["version"] for name, meta in metas.items()}
    assert [m.name for m in reply.models] == list(MODEL_NAMES)
    for info in reply.models:
        meta = metas[info.name]
        assert info.version == meta["version"]
        # The shipped metadata has no "market" entry: the phrase comes from its data source and window.
        window = meta["training_window"]
        assert info.trained_on == f"simulator seed 7, {window['start']}..{window['end']}"
        assert dict(info.metrics) == pytest.approx({k: float(v) for k, v in meta["metrics"].items()})

    table = metas[WIN_PROB_MODEL]["win_prob"]
    assert reply.win_prob.model == WIN_PROB_MODEL
    assert reply.win_prob.version == reply.model_versions[WIN_PROB_MODEL]
    assert list(reply.win_prob.edges) == table["edges"] and list(reply.win_prob.p_up) == table["p_up"]
