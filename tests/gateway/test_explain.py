"""The explainer: features of the scan's scored chunks by symbol, early and late explanations attached."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.explain import Explainer
from services.common.codec import decode_block, encode_block
from technic.v1 import compute_pb2, scan_pb2

FIELDS = ("f1", "f2")


def chunk(symbols: list[str], first: float) -> compute_pb2.ScoreResponse:
    values = np.arange(first, first + 2 * len(symbols), dtype=np.float32).reshape(len(symbols), 2)
    return compute_pb2.ScoreResponse(symbols=symbols, features=encode_block(values, rows=symbols, fields=FIELDS))


class ExplainingBackends:
    """Explains every row of the features block it gets (or answers None) and keeps the requests."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.requests: list[compute_pb2.ExplainRequest] = []

    async def explain(self, request: compute_pb2.ExplainRequest) -> compute_pb2.ExplainResponse | None:
        self.requests.append(request)
        if not self.answer:
            return None
        rows = decode_block(request.features).rows
        return compute_pb2.ExplainResponse(symbols=[compute_pb2.SymbolExplanation(symbol=s) for s in rows])


def explainer(answer: bool = True) -> tuple[Explainer, ExplainingBackends]:
    backends = ExplainingBackends(answer)
    ex = Explainer(backends, "scan-9", top_k=4)  # type: ignore[arg-type]
    ex.add_chunk(chunk(["AAA", "BBB"], 0.0))
    ex.add_chunk(compute_pb2.ScoreResponse(symbols=["EMPTY"]))  # a chunk without features is skipped
    ex.add_chunk(chunk(["CCC"], 10.0))
    return ex, backends


def test_features_of_symbols_in_the_order_asked_across_chunks() -> None:
    ex, _ = explainer()
    block = decode_block(ex.features_of(["CCC", "NOPE", "AAA"]) or b"")
    assert block.rows == ("CCC", "AAA") and block.fields == FIELDS
    np.testing.assert_array_equal(block.array, np.array([[10.0, 11.0], [0.0, 1.0]], dtype=np.float32))
    assert block.array.dtype == np.float32
    assert ex.features_of(["NOPE"]) is None
    assert Explainer(ExplainingBackends(), "s", 4).features_of(["AAA"]) is None  # type: ignore[arg-type]


def test_features_of_a_single_chunk_come_as_float32() -> None:
    ex = Explainer(ExplainingBackends(), "s", 4)  # type: ignore[arg-type]
    wide = np.array([[1.5, 2.5]], dtype=np.float64)
    ex.add_chunk(compute_pb2.ScoreResponse(symbols=["ONE"], features=encode_block(wide, rows=["ONE"], fields=FIELDS)))
    block = decode_block(ex.features_of(["ONE"]) or b"")
    assert block.rows == ("ONE",) and block.fields == FIELDS and block.array.dtype == np.float32
    np.testing.assert_array_equal(block.array, np.array([[1.5, 2.5]], dtype=np.float32))


async def test_explanations_of_asks_compute_with_the_scan_and_top_k() -> None:
    ex, backends = explainer()
    got = await ex.explanations_of(["BBB", "CCC"])
    assert set(got) == {"BBB", "CCC"} and got["BBB"].symbol == "BBB"
    (request,) = backends.requests
    assert (request.scan_id, request.top_k) == ("scan-9", 4)
    assert decode_block(request.features).rows == ("BBB", "CCC")
    assert await ex.explanations_of(["NOPE"]) == {} and len(backends.requests) == 1  # nothing to ask
    failing, _ = explainer(answer=False)
    assert await failing.explanations_of(["AAA"]) == {}


async def test_attach_uses_the_early_explanations_and_asks_only_for_the_new_top_rows() -> None:
    ex, backends = explainer()
    ex.start_early(["AAA", "BBB"])
    result = scan_pb2.ScanResult(rows=[scan_pb2.ScanRow(symbol=s) for s in ("CCC", "AAA", "BBB")])
    progress: list[tuple[str, int, int]] = []
    attached = await ex.attach(result, ["CCC", "AAA"], lambda *a: progress.append(a))
    assert [e.symbol for e in attached] == ["CCC", "AAA"]
    assert [len(r.explanation) for r in result.rows] == [1, 1, 0]  # BBB was explained early but is not top
    assert [decode_block(r.features).rows for r in backends.requests] == [("AAA", "BBB"), ("CCC",)]
    assert progress == [("explain", 0, 2), ("explain", 2, 2)]


async def test_attach_without_top_rows_or_explanations() -> None:
    ex, backends = explainer(answer=False)
    progress: list[tuple[str, int, int]] = []
    result = scan_pb2.ScanResult(rows=[scan_pb2.ScanRow(symbol="AAA")])
    assert await ex.attach(result, [], lambda *a: progress.append(a)) == [] and progress == []
    assert await ex.attach(result, ["AAA"], lambda *a: progress.append(a)) == []
    assert progress == [("explain", 0, 1)] and not result.rows[0].explanation and len(backends.requests) == 1


async def test_no_early_task_for_no_symbols_and_cancel_stops_one() -> None:
    ex, _ = explainer()
    ex.start_early([])
    assert ex.early is None
    ex.cancel()  # nothing to cancel
    ex.start_early(["AAA"])
    assert ex.early is not None
    ex.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ex.early
    assert ex.early.cancelled()
