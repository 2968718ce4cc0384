"""Ranker gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.ranker import convert
from services.ranker.core import Ranker
from services.ranker.engine import ScoredChunk
from services.ranker.errors import RankerInputError, ScanNotFoundError
from technic.v1 import ranker_pb2, ranker_pb2_grpc, scan_pb2


class RankerService(ranker_pb2_grpc.RankerServicer):
    """Rank (header, then scored chunks), GetResults (pages of cached scans), AttachExplanations."""

    def __init__(self, ranker: Ranker) -> None:
        self.ranker = ranker

    async def Rank(
        self, request_iterator: AsyncIterator[ranker_pb2.RankRequest], context: grpc.aio.ServicerContext
    ) -> scan_pb2.ScanResult:
        try:
            first = await anext(aiter(request_iterator), None)
            if first is None or first.WhichOneof("item") != "header":
                raise RankerInputError("the first message of Rank must be a RankHeader")
            inp = convert.rank_input(first.header)
            known_issues = convert.encoded_issues(inp.issues)

            async def chunks() -> AsyncIterator[ScoredChunk]:
                async for msg in request_iterator:
                    item = msg.WhichOneof("item")
                    if item == "end":
                        return
                    if item != "chunk":
                        raise RankerInputError("only ScoreResponse chunks and a RankEnd may follow the RankHeader")
                    yield convert.scored_chunk(msg.chunk)
                # A cancelled client's stream reads as ended: only RankEnd says every chunk came.
                raise RankerInputError("the Rank stream stopped before its RankEnd: nothing is ranked or kept")

            scan, cached = await self.ranker.rank(inp, chunks())
            return convert.scan_result(
                scan,
                inp.spec.page,
                scan_id=inp.scan_id or scan.scan_id,
                cached=cached,
                include_issues=True,
                known_issues=known_issues,
            )
        except RankerInputError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # abort raises; this line only satisfies the type checker

    async def GetResults(
        self, request: ranker_pb2.GetResultsRequest, context: grpc.aio.ServicerContext
    ) -> scan_pb2.ScanResult:
        try:
            page = convert.page_of(request)
            scan = await self.ranker.lookup(request.scan_id, request.fingerprint)
            return convert.scan_result(
                scan, page, scan_id=request.scan_id or scan.scan_id, cached=True, include_issues=request.include_issues
            )
        except RankerInputError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        except ScanNotFoundError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise

    async def AttachExplanations(
        self, request: ranker_pb2.AttachExplanationsRequest, context: grpc.aio.ServicerContext
    ) -> ranker_pb2.AttachExplanationsResponse:
        try:
            attached = await self.ranker.attach_explanations(request.fingerprint, convert.explanations(request))
            return ranker_pb2.AttachExplanationsResponse(attached=attached)
        except RankerInputError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        except ScanNotFoundError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
