"""Single flight: 20 identical scans at once are computed once and all get the same ranking."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson

from technic.v1 import scan_pb2
from tests.reliability.conftest import SupervisedCluster, assert_whole, ranking, run_scan
from tests.support import accounted

CLIENTS = 20


def _events(cluster: SupervisedCluster, name: str, start: int, event: str) -> list[dict]:
    """JSON log lines of ``name`` written after line ``start`` whose event is ``event``."""
    found = []
    for line in cluster.log_lines(name)[start:]:
        if f'"{event}"' in line:
            record = orjson.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def test_identical_concurrent_scans_compute_once(cluster: SupervisedCluster) -> None:
    # Options no other test asks for, so nothing is cached yet.
    options = scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_POSITION, min_tech_rating=7.25, limit=10_000)
    gateway_start = len(cluster.log_lines("gateway"))
    ranker_start = len(cluster.log_lines("ranker"))
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: run_scan(cluster.target, options, refresh=False)[1], range(CLIENTS)))

    for result in results:
        if result.cached:
            # Asked after the one scan had finished: the kept result, whose issues are left out by design
            # (GetScan has them); its accounting still covers every symbol.
            assert accounted(result) == result.accounting.requested and len(result.rows) == result.accounting.ranked
        else:
            assert_whole(result)
    assert any(not r.cached for r in results)  # the one scan that ran, whole
    assert len({r.fingerprint for r in results}) == 1
    assert all(ranking(r) == ranking(results[0]) for r in results)
    assert results[0].accounting.ranked > 0

    ranked = [
        e for e in _events(cluster, "ranker", ranker_start, "ranked") if e.get("fingerprint") == results[0].fingerprint
    ]
    assert len(ranked) == 1, f"the ranker ranked {len(ranked)} times"
    finished = _events(cluster, "gateway", gateway_start, "scan finished")
    assert len(finished) == 1, f"the gateway ran the pipeline (fetch, compute, rank) {len(finished)} times"
