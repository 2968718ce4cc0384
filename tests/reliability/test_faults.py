"""Faults injected into the running cluster: a scan either completes whole or fails naming the stage.

Round 0 of each fault is the fast subset (part of `make test`); the other rounds carry the
``reliability`` marker (`make test-reliability`).
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable

import grpc
import httpx
import pytest

from technic.v1 import scan_pb2, scanner_pb2
from tests.reliability.conftest import (
    ALL_ROWS,
    API_KEYS,
    SupervisedCluster,
    assert_whole,
    ranking,
    run_scan,
)
from tests.support import wait_for_port

OPTIONS = scan_pb2.ScanOptions(trade_style=scan_pb2.TRADE_STYLE_MEDIUM_TERM_SWING, limit=ALL_ROWS)
KILL_ROUNDS = 10
SESSION_KEYS = "technic:raw:session:*"


def rounds(n: int) -> list[object]:
    """Round 0 in the fast subset, the rest only in the full reliability suite."""
    return [0] + [pytest.param(i, marks=pytest.mark.reliability) for i in range(1, n)]


@pytest.fixture(scope="module")
def baseline(cluster: SupervisedCluster) -> tuple[int, scan_pb2.ScanResult]:
    """An undisturbed scan: its ranking and how many progress events a scan sends."""
    progress, result = run_scan(cluster.target, OPTIONS)
    assert_whole(result)
    assert not result.accounting.errored and result.accounting.ranked > 20
    return len(progress), result


def at_event(index: int, action: Callable[[], None], stages: tuple[str, ...] = ()) -> Callable[
        [scanner_pb2.Progress], None]:
    """A progress callback that runs ``action`` once, at the ``index``-th event (of ``stages``, when given)."""
    seen = [0]
    done: list[bool] = []

    def callback(progress: scanner_pb2.Progress) -> None:
        if stages and progress.stage not in stages:
            return
        seen[0] += 1
        if seen[0] >= index and not done:
            done.append(True)
            action()

    callback.done = done  # type: ignore[attr-defined]
    return callback


def errored_reasons_name(result: scan_pb2.ScanResult, words: tuple[str, ...]) -> None:
    """Every errored symbol has a reason, and each reason says which stage failed."""
    for reason in result.accounting.errored:
        assert any(w in reason.lower() for w in words), f"errored reason {reason!r} does not name the stage"
    errored = [i for i in result.issues if i.reason and i.symbol not in {r.symbol for r in result.rows}]
    assert len(errored) >= sum(result.accounting.errored.values())


@pytest.mark.parametrize("round_", rounds(KILL_ROUNDS))
def test_compute_replica_sigkilled_mid_scan(cluster: SupervisedCluster, baseline, round_: int) -> None:
    events, expected = baseline
    rng = random.Random(9000 + round_)
    replica = f"compute:compute-{rng.randint(1, len(cluster.compute_ports))}"
    port = cluster.compute_ports[int(replica.rsplit("-", 1)[1]) - 1]
    victim = cluster.pid(replica)
    kill = at_event(rng.randint(2, max(2, events - 2)), lambda: os.kill(victim, signal.SIGKILL))

    _, result = run_scan(cluster.target, OPTIONS, on_progress=kill)

    assert kill.done, "the scan ended before the kill point"  # type: ignore[attr-defined]
    assert_whole(result)
    assert not result.accounting.errored, dict(result.accounting.errored)
    assert ranking(result) == ranking(expected)
    restarted = cluster.wait_running(replica, port, old_pid=victim)
    assert restarted != victim
    assert "exited: compute-" in (cluster.run_dir / "supervisord.log").read_text()


@pytest.mark.parametrize("round_", rounds(2))
def test_redis_stopped_mid_scan_then_restarted(cluster: SupervisedCluster, baseline, round_: int) -> None:
    supervisor = cluster.supervisor()
    stop = at_event(1 + round_, lambda: supervisor.stopProcess("redis", True), stages=("compute",))
    try:
        _, result = run_scan(cluster.target, OPTIONS, on_progress=stop)
    finally:
        if cluster.info("redis")["statename"] != "RUNNING":
            supervisor.startProcess("redis", True)
        wait_for_port(cluster.redis().connection_pool.connection_kwargs["port"])
    assert stop.done  # type: ignore[attr-defined]
    assert_whole(result)
    errored_reasons_name(result, ("redis", "panel", "chunk", "compute", "score", "fetch"))

    client = cluster.redis()
    assert client.dbsize() < 50, "a restarted redis-server (no persistence) starts empty"
    wait_healthy(cluster)
    _, later = run_scan(cluster.target, OPTIONS)
    assert_whole(later)
    assert not later.accounting.errored, dict(later.accounting.errored)
    assert ranking(later) == ranking(baseline[1])
    # Panels (fetcher, read back by compute) and the ranked scan (ranker) are in the restarted server.
    assert client.keys("technic:panel:*"), "the fetcher did not write panels to Redis again"
    assert client.exists(f"technic:ranker:scan:{later.fingerprint}"), "the ranker did not cache in Redis again"


def wait_healthy(cluster: SupervisedCluster, timeout: float = 60.0) -> dict:
    """Wait until the gateway reports every backend SERVING with Redis available."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{cluster.http}/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            body = {}
        if body.get("status") == "ok":
            return body
        time.sleep(0.25)
    raise AssertionError(f"the cluster is not healthy again after {timeout} s: {body}")


@pytest.mark.parametrize("round_", rounds(3))
def test_fetcher_killed_mid_scan(cluster: SupervisedCluster, baseline, round_: int) -> None:
    victim = cluster.pid("fetcher")
    kill = at_event(1 + round_, lambda: os.kill(victim, signal.SIGKILL), stages=("fetch",))
    outcome: scan_pb2.ScanResult | grpc.RpcError
    try:
        _, outcome = run_scan(cluster.target, OPTIONS, on_progress=kill)
    except grpc.RpcError as exc:
        outcome = exc
    assert kill.done  # type: ignore[attr-defined]
    if isinstance(outcome, grpc.RpcError):
        assert outcome.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND), outcome
        assert re.search(r"\b(fetch|snapshot|universe)\b", outcome.details() or ""), outcome.details()
    else:  # the gateway asked the restarted fetcher for the rest: nothing is missing
        assert_whole(outcome)
        assert not outcome.accounting.errored, dict(outcome.accounting.errored)
        assert ranking(outcome) == ranking(baseline[1])

    cluster.wait_running("fetcher", cluster.port("TECHNIC_FETCHER_PORT"), old_pid=victim)
    wait_healthy(cluster)
    _, later = run_scan(cluster.target, OPTIONS)
    assert_whole(later)
    assert ranking(later) == ranking(baseline[1])


def drop_sessions(cluster: SupervisedCluster, newest: int | None) -> list[str]:
    """Delete the raw sessions (the newest ``newest``, or all) from Redis and restart the fetcher (its
    memory holds them too), so that the next scan fetches them from the simulator again."""
    client = cluster.redis()
    keys = sorted(client.keys(SESSION_KEYS), reverse=True)
    dropped = keys if newest is None else keys[:newest]
    if dropped:
        client.delete(*dropped)
    cluster.restart("fetcher", cluster.port("TECHNIC_FETCHER_PORT"))
    return [k.decode().rsplit(":", 1)[1] for k in dropped]


def injected(cluster: SupervisedCluster) -> dict[str, int]:
    return httpx.get(f"{cluster.marketsim}/admin/stats", timeout=10).json().get("faults", {})


STORM = {"rate_429": 0.3, "rate_5xx": 0.1, "rate_malformed": 0.05, "rate_truncated": 0.02,
         "results_null": 1.0, "jitter_ms": 2000.0}


@pytest.mark.parametrize(("round_", "newest"), [(0, 12), pytest.param(1, None, marks=pytest.mark.reliability)])
def test_simulator_fault_storm(cluster: SupervisedCluster, baseline, round_: int, newest: int | None) -> None:
    dropped = drop_sessions(cluster, newest)
    assert dropped
    cluster.reset_faults()
    cluster.set_faults(**STORM)
    try:
        try:
            progress, result = run_scan(cluster.target, OPTIONS)
        except grpc.RpcError as exc:
            failure = exc
        else:
            failure = None
        faults = injected(cluster)
    finally:
        cluster.reset_faults()
    assert sum(faults.values()) > 0, "no fault was injected: the scan did not reach the simulator"
    if failure is not None:  # the source failed every retry: the error names the stage and the session
        details = failure.details() or ""
        assert failure.code() == grpc.StatusCode.UNAVAILABLE, failure
        assert re.search(r"\b(snapshot|universe|fetch)\b", details) and re.search(r"\d{4}-\d{2}-\d{2}", details), \
            details
        return
    assert_whole(result)
    named = unfetched_sessions(cluster, progress)
    if named:  # sessions that failed every retry are named, and nothing else is missing
        assert set(named) <= set(dropped)
    else:
        assert not result.accounting.errored, dict(result.accounting.errored)
        assert ranking(result) == ranking(baseline[1])


def unfetched_sessions(cluster: SupervisedCluster, progress: list[scanner_pb2.Progress]) -> list[str]:
    """Sessions the scan reported it could not fetch (progress messages of the snapshot and fetch stages)."""
    names: list[str] = []
    for event in progress:
        if event.stage in ("snapshot", "fetch") and "not fetched" in event.message:
            names += re.findall(r"\d{4}-\d{2}-\d{2}", event.message)
    return names


@pytest.mark.parametrize("round_", rounds(2))
def test_gateway_sigterm_during_scan(cluster: SupervisedCluster, baseline, round_: int) -> None:
    victim = cluster.pid("gateway")
    grace = float(cluster.env.get("TECHNIC_GRACE_SECONDS", "5"))
    in_flight = threading.Event()
    outcome: list[object] = []
    http_outcome: list[object] = []
    stage = ("fetch", "compute")[round_]

    def scan() -> None:
        try:
            outcome.append(run_scan(cluster.target, OPTIONS, on_progress=lambda p: p.stage == stage and p.done > 0
                                    and in_flight.set())[1])
        except grpc.RpcError as exc:
            outcome.append(exc)
        in_flight.set()

    def http_scan() -> None:  # an HTTP scan in flight as well: the HTTP side stops with the gRPC side
        try:
            http_outcome.append(httpx.post(f"{cluster.http}/v1/scan", json={"refresh": True, "limit": 10},
                                           headers={"X-API-Key": API_KEYS[1]}, timeout=SCAN_JOIN).status_code)
        except httpx.HTTPError as exc:
            http_outcome.append(exc)

    log = cluster.run_dir / "supervisord.log"
    clean_exit = "exited: gateway (exit status 0; expected)"
    exits_before = log.read_text().count("exited: gateway")
    threads = [threading.Thread(target=scan), threading.Thread(target=http_scan)]
    for t in threads:
        t.start()
    assert in_flight.wait(SCAN_JOIN)
    os.kill(victim, signal.SIGTERM)
    stopped_by = time.monotonic() + grace + 3  # the grace period, and a margin for the process to exit
    while time.monotonic() < stopped_by and log.read_text().count("exited: gateway") == exits_before:
        time.sleep(0.05)
    tail = log.read_text()
    assert tail.count("exited: gateway") == exits_before + 1, "the gateway did not exit within the grace period"
    last_exit = [line for line in tail.splitlines() if "exited: gateway" in line][-1]
    assert clean_exit in last_exit, last_exit
    for t in threads:
        t.join(SCAN_JOIN)
        assert not t.is_alive(), "a client hangs after the gateway stopped"
    result = outcome[0]
    if isinstance(result, grpc.RpcError):
        assert result.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), result
    else:
        assert isinstance(result, scan_pb2.ScanResult)
        assert_whole(result)
    assert isinstance(http_outcome[0], httpx.HTTPError) or http_outcome[0] in (200, 503), http_outcome

    cluster.wait_running("gateway", cluster.port("TECHNIC_GATEWAY_PORT"), old_pid=victim)
    wait_healthy(cluster)


SCAN_JOIN = 60.0
