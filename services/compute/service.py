"""Compute gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import grpc
import structlog
from google.protobuf.message import DecodeError

from services.common.grpc_server import Health
from services.common.redis_client import ResilientRedis
from services.compute.features import FEATURE_VERSION, FEATURES, LEVEL_FIELDS, SPARKLINE_LENGTH, warm_up
from services.compute.models import AlphaModels
from services.compute.scored_cache import scored_key
from services.compute.scoring import ChunkError, explain_rows, parse_features, parse_panel, score_chunk
from services.compute.settings import ComputeSettings
from technic.v1 import common_pb2, compute_pb2, compute_pb2_grpc

log = structlog.get_logger(__name__)
MAX_EXPLAIN_ROWS = 500


def describe(models: AlphaModels, replica: str) -> compute_pb2.DescribeResponse:
    """What a replica with ``models`` scores with: the contract's block layouts and the models' metadata."""
    reply = compute_pb2.DescribeResponse(
        feature_version=FEATURE_VERSION,
        model_versions=models.versions,
        feature_fields=FEATURES,
        score_fields=models.names,
        level_fields=LEVEL_FIELDS,
        sparkline_length=SPARKLINE_LENGTH,
        models=[
            compute_pb2.ModelInfo(name=m.name, version=m.version, trained_on=m.trained_on, metrics=m.metrics)
            for m in models.models
        ],
        replica=replica,
    )
    table = models.win_prob
    if table is not None:
        reply.win_prob.CopyFrom(
            compute_pb2.WinProbCalibration(model=table.model, version=table.version, edges=table.edges, p_up=table.p_up)
        )
    return reply


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """``context.abort``, which returns only by raising (grpc has no type hints to tell mypy so)."""
    await context.abort(code, details)
    raise AssertionError("context.abort returns only by raising")


class ComputeService(compute_pb2_grpc.ComputeServicer):
    """Score, Explain and Describe; numeric work runs on one worker thread so health checks stay responsive."""

    def __init__(self, settings: ComputeSettings, redis: ResilientRedis | None = None) -> None:
        self.settings = settings
        self.redis = redis or ResilientRedis(settings.redis_url)
        self.models: AlphaModels | None = None
        self._description: compute_pb2.DescribeResponse | None = None
        self.replica = f"{socket.gethostname()}/{settings.grpc_host}:{settings.listen_port}"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute")

    async def warmup(self, health: Health) -> None:
        """Load the models and compile the kernels before the replica reports SERVING."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        models = await loop.run_in_executor(
            self._pool, AlphaModels.load, self.settings.model_dir, self.settings.xgboost_threads
        )
        self.use_models(models)
        await loop.run_in_executor(self._pool, warm_up)
        await health.set_dependency("redis", await self.redis.ping())
        log.info(
            "compute ready",
            models=models.versions,
            feature_version=FEATURE_VERSION,
            seconds=round(time.perf_counter() - started, 2),
        )

    def use_models(self, models: AlphaModels) -> None:
        """Serve ``models`` from now on (Describe's answer is built once here: it cannot change)."""
        self.models = models
        self._description = describe(models, self.replica)

    async def close(self) -> None:
        await self.redis.close()
        self._pool.shutdown(wait=False)

    async def Score(
        self, request: compute_pb2.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.ScoreResponse:
        if self.models is None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "models are still loading")
        chunk = request.chunk
        started = time.perf_counter()
        cache_key = ""
        if chunk.content_digest and self.settings.scored_ttl_seconds > 0:
            cache_key = scored_key(chunk.content_digest, FEATURE_VERSION, self.models.versions)
            cached = await self._cached_reply(cache_key, chunk)
            if cached is not None:
                cached.stats.CopyFrom(
                    common_pb2.Stats(
                        seconds={"read": time.perf_counter() - started},
                        counters={"symbols": len(cached.symbols), "cache_hits": 1},
                    )
                )
                cached.replica = self.replica
                return cached
        if chunk.key:
            data = await self.redis.get(chunk.key)
            if data is None:
                await _abort(context, grpc.StatusCode.NOT_FOUND, f"panel chunk {chunk.key!r} is not in Redis")
        elif chunk.inline_block:
            data = chunk.inline_block
        else:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "chunk has neither a Redis key nor an inline block")
        fetched = time.perf_counter()
        try:
            panel, symbols = parse_panel(data, tuple(chunk.symbols))
        except ChunkError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        loop = asyncio.get_running_loop()
        scored = await loop.run_in_executor(self._pool, score_chunk, panel, symbols, self.models)
        log.debug("scored chunk", scan_id=request.scan_id, chunk=chunk.chunk_index, symbols=len(symbols))
        reply = compute_pb2.ScoreResponse(
            chunk_index=chunk.chunk_index,
            symbols=scored.symbols,
            states=[int(s) for s in scored.states],
            features=scored.features,
            scores=scored.scores,
            levels=scored.levels,
            sparklines=scored.sparklines,
            feature_version=FEATURE_VERSION,
            model_versions=self.models.versions,
        )
        if cache_key:
            await self.redis.set(cache_key, reply.SerializeToString(), ttl=self.settings.scored_ttl_seconds)
        reply.stats.CopyFrom(
            common_pb2.Stats(
                seconds={"read": fetched - started, **scored.seconds},
                counters={"symbols": len(symbols), "bytes": len(data)},
            )
        )
        reply.replica = self.replica
        return reply

    async def _cached_reply(self, cache_key: str, chunk: common_pb2.ChunkRef) -> compute_pb2.ScoreResponse | None:
        """The cached answer for ``chunk``, or None (absent, unreadable, or for other symbols)."""
        blob = await self.redis.get(cache_key)
        if blob is None:
            return None
        try:
            reply = compute_pb2.ScoreResponse.FromString(blob)
        except DecodeError:
            log.warning("unreadable scored chunk in the cache", key=cache_key)
            return None
        if chunk.symbols and list(reply.symbols) != list(chunk.symbols):
            return None
        reply.chunk_index = chunk.chunk_index
        return reply

    async def Explain(
        self, request: compute_pb2.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.ExplainResponse:
        if self.models is None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "models are still loading")
        if request.top_k < 0:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "top_k must not be negative")
        try:
            features, symbols = parse_features(request.features)
        except ChunkError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if len(symbols) > MAX_EXPLAIN_ROWS:
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"explain at most {MAX_EXPLAIN_ROWS} symbols per call, got {len(symbols)}",
            )
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._pool, explain_rows, features, self.models, request.top_k or 5)
        out = compute_pb2.ExplainResponse(
            stats=common_pb2.Stats(
                seconds={"explain": time.perf_counter() - started}, counters={"symbols": len(symbols)}
            )
        )
        for symbol, models in zip(symbols, rows, strict=True):
            out.symbols.append(
                compute_pb2.SymbolExplanation(
                    symbol=symbol,
                    models=[
                        compute_pb2.ModelExplanation(
                            model=e.model,
                            base_value=e.base_value,
                            prediction=e.prediction,
                            contributions=[
                                compute_pb2.FeatureContribution(
                                    feature=c.feature, label=c.label, value=c.value, contribution=c.contribution
                                )
                                for c in e.contributions
                            ],
                        )
                        for e in models
                    ],
                )
            )
        return out

    async def Describe(
        self, request: compute_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> compute_pb2.DescribeResponse:
        if self._description is None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "models are still loading")
        return self._description
