"""Typed clients of the fetcher, compute and ranker: each call owns its deadline and its error mapping.

The rest of the gateway sees messages in and messages out, and :mod:`gateway.errors` exceptions
instead of gRPC statuses. Retries: unary fetcher and ranker calls are retried on UNAVAILABLE by the
channel's retry policy; a compute ``Score`` is retried by :meth:`Backends.score` on another replica
(its channel has no retry policy, so one layer retries); the ``Prefetch`` stream is resumed by the
pipeline, which knows which symbols are still missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import InvalidRequest, NotFound, Unavailable
from gateway.settings import GatewaySettings
from services.common.channels import make_channel
from services.common.grpc_server import DEPENDENCY_PREFIX
from technic.v1 import (
    compute_pb2,
    compute_pb2_grpc,
    fetcher_pb2,
    fetcher_pb2_grpc,
    ranker_pb2,
    ranker_pb2_grpc,
    scan_pb2,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Failures of one replica (or of the network to it): the chunk goes to another replica.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
    }
)


class StreamBroken(Exception):
    """A ``Prefetch`` stream ended with an error; ``retryable`` when another attempt may succeed."""

    def __init__(self, detail: str, retryable: bool) -> None:
        super().__init__(detail)
        self.retryable = retryable


def status_text(exc: grpc.aio.AioRpcError) -> str:
    return f"{exc.code().name}: {exc.details() or ''}".strip()


def compute_addresses(target: str) -> list[str]:
    """The individual replica addresses of an ``ipv4:a,b`` target; the target itself otherwise."""
    if target.startswith(("ipv4:", "ipv6:")):
        return [a.strip() for a in target.split(":", 1)[1].split(",") if a.strip()]
    return [target]


class Backends:
    """The gateway's channels and the calls it makes on them."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._channels = {
            "fetcher": make_channel(settings.fetcher_target, settings),
            "compute": make_channel(settings.compute_target, settings, retries=False),
            "ranker": make_channel(settings.ranker_target, settings),
        }
        self._fetcher = fetcher_pb2_grpc.FetcherStub(self._channels["fetcher"])
        self._compute = compute_pb2_grpc.ComputeStub(self._channels["compute"])
        self._ranker = ranker_pb2_grpc.RankerStub(self._channels["ranker"])
        self._health_channels: dict[str, grpc.aio.Channel] = {}

    async def close(self) -> None:
        for channel in (*self._channels.values(), *self._health_channels.values()):
            await channel.close()

    @staticmethod
    async def _call(stage: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await one unary call; a gRPC failure becomes NotFound / InvalidRequest / Unavailable."""
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(exc.details() or f"{stage}: not found") from None
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(exc.details() or f"{stage}: invalid argument") from None
            log.warning("backend call failed", stage=stage, error=status_text(exc))
            # The backend's own message says what failed (e.g. which session the source did not serve).
            raise Unavailable(f"{stage} failed: {status_text(exc)}") from None

    # ---- fetcher ---------------------------------------------------------------------------------

    async def universe(self) -> fetcher_pb2.GetUniverseResponse:
        return await self._call(
            "universe",
            lambda: self._fetcher.GetUniverse(
                fetcher_pb2.GetUniverseRequest(), timeout=self.settings.gateway_universe_deadline
            ),
        )

    async def details(self, symbols: list[str]) -> fetcher_pb2.GetUniverseResponse:
        """Reference data (name, sector, industry, market cap) of ``symbols``."""
        if not symbols:
            return fetcher_pb2.GetUniverseResponse()
        return await self._call(
            "universe",
            lambda: self._fetcher.GetUniverse(
                fetcher_pb2.GetUniverseRequest(symbols=symbols, with_details=True),
                timeout=self.settings.gateway_universe_deadline,
            ),
        )

    async def snapshot(self, as_of: str) -> fetcher_pb2.GetSnapshotResponse:
        return await self._call(
            "snapshot",
            lambda: self._fetcher.GetSnapshot(
                fetcher_pb2.GetSnapshotRequest(as_of=as_of, window=self.settings.gateway_snapshot_window),
                timeout=self.settings.gateway_snapshot_deadline,
            ),
        )

    async def bars(self, symbol: str, days: int, as_of: str = "") -> fetcher_pb2.GetBarsResponse:
        return await self._call(
            "bars",
            lambda: self._fetcher.GetBars(
                fetcher_pb2.GetBarsRequest(symbol=symbol, days=days, as_of=as_of),
                timeout=self.settings.gateway_bars_deadline,
            ),
        )

    async def prefetch(
        self, requests: AsyncIterator[fetcher_pb2.PrefetchRequest]
    ) -> AsyncIterator[fetcher_pb2.PrefetchResponse]:
        """The fetcher's chunk references for the symbols streamed in; :class:`StreamBroken` on failure."""
        try:
            async for response in self._fetcher.Prefetch(requests, timeout=self.settings.gateway_prefetch_deadline):
                yield response
        except grpc.aio.AioRpcError as exc:
            raise StreamBroken(status_text(exc), exc.code() in RETRYABLE) from None

    # ---- compute ---------------------------------------------------------------------------------

    async def describe(self) -> compute_pb2.DescribeResponse:
        """What the replicas score with, from the first replica that answers."""
        reply = await self._on_some_replica(
            lambda: self._compute.Describe(
                compute_pb2.DescribeRequest(), timeout=self.settings.gateway_results_deadline
            ),
            "describe",
        )
        if reply is None:
            raise Unavailable("compute failed: no replica answered Describe")
        return reply

    async def score(
        self, request: compute_pb2.ScoreRequest, on_retry: Callable[[], None]
    ) -> compute_pb2.ScoreResponse | None:
        """The scored chunk, retried on another replica when one fails; None when every attempt failed."""
        return await self._on_some_replica(
            lambda: self._compute.Score(request, timeout=self.settings.gateway_score_deadline),
            f"score chunk {request.chunk.chunk_index}",
            on_retry,
        )

    async def _on_some_replica(
        self, call: Callable[[], Awaitable[T]], what: str, on_retry: Callable[[], None] | None = None
    ) -> T | None:
        """``call`` until a replica answers (round_robin picks another one each time), at most
        ``gateway_score_attempts`` times; None when every attempt failed."""
        attempts = max(1, self.settings.gateway_score_attempts)
        for attempt in range(attempts):
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == attempts - 1:
                    log.warning("compute call failed", call=what, error=status_text(exc), attempts=attempt + 1)
                    return None
                if on_retry is not None:
                    on_retry()
                await asyncio.sleep(0.05 * 2**attempt)
        return None

    async def explain(self, request: compute_pb2.ExplainRequest) -> compute_pb2.ExplainResponse | None:
        """Feature contributions, or None when the call failed (rows are then left unexplained)."""
        try:
            return await self._compute.Explain(request, timeout=self.settings.gateway_explain_deadline)
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "explain failed, rows left without contributions", scan_id=request.scan_id, error=status_text(exc)
            )
            return None

    # ---- ranker ----------------------------------------------------------------------------------

    async def rank(self, requests: AsyncIterator[ranker_pb2.RankRequest]) -> scan_pb2.ScanResult:
        call = self._ranker.Rank(requests, timeout=self.settings.gateway_rank_deadline)
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            log.warning("rank failed", error=status_text(exc))
            raise Unavailable(f"rank failed: {exc.code().name}") from None
        finally:
            call.cancel()

    async def results(self, request: ranker_pb2.GetResultsRequest) -> scan_pb2.ScanResult:
        """A page of a ranked scan; NotFound when the ranker does not have it."""
        return await self._call(
            "results", lambda: self._ranker.GetResults(request, timeout=self.settings.gateway_results_deadline)
        )

    async def cached_results(self, request: ranker_pb2.GetResultsRequest) -> scan_pb2.ScanResult | None:
        """A page of a ranked scan when the ranker has it, else None (a failure is logged)."""
        try:
            return await self.results(request)
        except NotFound:
            return None
        except (Unavailable, InvalidRequest) as exc:
            log.warning("ranker cache lookup failed", error=str(exc))
            return None

    async def attach_explanations(self, fingerprint: str, explanations: list[compute_pb2.SymbolExplanation]) -> int:
        """Store explanations with the ranked scan; the number of rows that carry one (0 on failure)."""
        request = ranker_pb2.AttachExplanationsRequest(fingerprint=fingerprint, explanations=explanations)
        try:
            reply = await self._call(
                "explain",
                lambda: self._ranker.AttachExplanations(request, timeout=self.settings.gateway_results_deadline),
            )
        except (NotFound, Unavailable, InvalidRequest) as exc:
            log.warning("explanations not stored with the scan", fingerprint=fingerprint, error=str(exc))
            return 0
        return reply.attached

    # ---- health ----------------------------------------------------------------------------------

    async def health(self) -> dict[str, dict[str, str]]:
        """Health of each backend process and of its Redis dependency, by name."""
        targets = {"fetcher": self.settings.fetcher_target, "ranker": self.settings.ranker_target}
        for address in compute_addresses(self.settings.compute_target):
            targets[f"compute {address}"] = address
        names = list(targets)
        checks = await asyncio.gather(*(self._check(targets[name]) for name in names))
        return dict(zip(names, checks, strict=True))

    async def _check(self, target: str) -> dict[str, str]:
        channel = self._health_channels.get(target)
        if channel is None:
            channel = self._health_channels[target] = make_channel(target, self.settings)
        stub = health_pb2_grpc.HealthStub(channel)
        answer = {"target": target}
        for key, service in (("status", ""), ("redis", DEPENDENCY_PREFIX + "redis")):
            try:
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=self.settings.gateway_health_deadline
                )
                answer[key] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                answer[key] = "UNKNOWN" if exc.code() == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
        return answer
