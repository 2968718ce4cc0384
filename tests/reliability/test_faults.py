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


def at_event(
    index: int, action: Callable[[], None], stages: tuple[str, ...] = ()
) -> Callable[[scanner_pb2.Progress], None]:
    """A progress callback that runs ``action`` once, at the ``index``-th event (of ``stages``, when given)."""
    seen = [0]
    done: list[bool] = []
    after: list[scanner_pb2.Progress] = []

    def callback(progress: scanner_pb2.Progress) -> None:
        if done:
            after.append(progress)  # the scan went on after the fault: it landed mid-scan
            return
        if stages and progress.stage not in stages:
            return
        seen[0] += 1
        if seen[0] >= index:
            done.append(True)
            action()

    callback.done = done  # type: ignore[attr-defined]
    callback.after = after  # type: ignore[attr-defined]
    return callback


def exits(cluster: SupervisedCluster, program: str) -> int:
    """How often supervisord saw ``program`` exit so far."""
    return (cluster.run_dir / "supervisord.log").read_text().count(f"exited: {program}")


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
    """The gateway asks the restarted fetcher for the rest of its symbols: the scan completes as if undisturbed."""
    victim = cluster.pid("fetcher")
    exits_before = exits(cluster, "fetcher")
    kill = at_event(1 + round_, lambda: os.kill(victim, signal.SIGKILL), stages=("fetch",))

    _, result = run_scan(cluster.target, OPTIONS, on_progress=kill)

    assert kill.done, "the scan ended before the kill point"  # type: ignore[attr-defined]
    assert kill.after, "no progress after the kill: it did not land mid-scan"  # type: ignore[attr-defined]
    assert exits(cluster, "fetcher") == exits_before + 1, "the fetcher did not die during the scan"
    assert_whole(result)
    assert not result.accounting.errored, dict(result.accounting.errored)
    assert ranking(result) == ranking(baseline[1])
    assert cluster.wait_running("fetcher", cluster.port("TECHNIC_FETCHER_PORT"), old_pid=victim) != victim
    wait_healthy(cluster)


def drop_sessions(cluster: SupervisedCluster, newest: int | None) -> list[str]:
    """Delete the raw sessions (the newest ``newest``, or all) from Redis and restart the fetcher (its
    memory holds them too), so that the next scan fetches them from the simulator again."""
    client = cluster.redis()
    keys = sorted(client.keys(SESSION_KEYS), reverse=True)
    if not keys:
        # An earlier round restarted Redis (no persistence) while the fetcher kept the sessions in memory:
        # a fetcher without them stores the window again on the next scan.
        cluster.restart("fetcher", cluster.port("TECHNIC_FETCHER_PORT"))
        run_scan(cluster.target, OPTIONS)
        deadline = time.monotonic() + 30
        while not keys and time.monotonic() < deadline:
            time.sleep(0.2)
            keys = sorted(client.keys(SESSION_KEYS), reverse=True)
    dropped = keys if newest is None else keys[:newest]
    if dropped:
        client.delete(*dropped)
    cluster.restart("fetcher", cluster.port("TECHNIC_FETCHER_PORT"))
    return [k.decode().rsplit(":", 1)[1] for k in dropped]


def injected(cluster: SupervisedCluster) -> dict[str, int]:
    return httpx.get(f"{cluster.marketsim}/admin/stats", timeout=10).json().get("faults", {})


# Every kind of fault, at rates the fetcher's retries (seven attempts a request) always get through: a
# request fails every attempt with a probability below 1e-5, so no session is lost (the dice are seeded).
STORM = {
    "rate_429": 0.1,
    "rate_5xx": 0.05,
    "rate_malformed": 0.02,
    "rate_truncated": 0.02,
    "results_null": 1.0,
    "jitter_ms": 500.0,
}


@pytest.mark.parametrize(("round_", "newest"), [(0, 12), pytest.param(1, None, marks=pytest.mark.reliability)])
def test_simulator_fault_storm(cluster: SupervisedCluster, baseline, round_: int, newest: int | None) -> None:
    """Sessions fetched again through a storm of faults: every one arrives, the ranking is the undisturbed one."""
    dropped = drop_sessions(cluster, newest)
    assert dropped
    cluster.reset_faults()
    cluster.set_faults(**STORM)
    try:
        progress, result = run_scan(cluster.target, OPTIONS)
        faults = injected(cluster)
    finally:
        cluster.reset_faults()
    # The faults landed on this scan's requests: the dropped sessions were fetched again under them.
    assert faults.get("429", 0) > 0 and sum(v for k, v in faults.items() if k.startswith("5")) > 0, faults
    stored = {k.decode().rsplit(":", 1)[1] for k in cluster.redis().keys(SESSION_KEYS)}
    assert set(dropped) <= stored, "a dropped session was not fetched again"
    assert_whole(result)
    assert not unfetched_sessions(cluster, progress)
    assert not result.accounting.errored, dict(result.accounting.errored)
    assert ranking(result) == ranking(baseline[1])


@pytest.mark.reliability
def test_simulator_outage_fails_the_scan_naming_stage_and_session(cluster: SupervisedCluster, baseline) -> None:
    """Every answer an error: the retries run out, and the scan fails UNAVAILABLE naming the stage and the session."""
    assert drop_sessions(cluster, 1)
    cluster.reset_faults()
    cluster.set_faults(rate_5xx=1.0)
    try:
        with pytest.raises(grpc.RpcError) as err:
            run_scan(cluster.target, OPTIONS)
        faults = injected(cluster)
    finally:
        cluster.reset_faults()
    assert sum(v for k, v in faults.items() if k.startswith("5")) >= 7, faults  # every attempt of a request
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
    details = err.value.details() or ""
    # The session it could not fetch: the dropped one, or the newer one the fetcher probes first.
    assert re.search(r"\b(snapshot|universe|fetch)\b", details), details
    assert re.search(r"session \d{4}-\d{2}-\d{2} could not be fetched", details), details
    wait_healthy(cluster)


def unfetched_sessions(cluster: SupervisedCluster, progress: list[scanner_pb2.Progress]) -> list[str]:
    """Sessions the scan reported it could not fetch (progress messages of the snapshot and fetch stages)."""
    names: list[str] = []
    for event in progress:
        if event.stage in ("snapshot", "fetch") and "not fetched" in event.message:
            names += re.findall(r"\d{4}-\d{2}-\d{2}", event.message)
    return names


@pytest.mark.parametrize("round_", rounds(2))
def test_gateway_sigterm_during_scan(cluster: SupervisedCluster, baseline, round_: int) -> None:
    """SIGTERM while scans are in flight that cannot finish within the grace period: the gateway exits 0 within
    it, the gRPC scan ends UNAVAILABLE and the HTTP scan gets uvicorn's 500; no client hangs."""
    drop_sessions(cluster, None)  # the scan fetches every session again, slowly: far longer than the grace
    cluster.set_faults(latency_ms=3000.0)
    victim = cluster.pid("gateway")
    grace = float(cluster.env.get("TECHNIC_GRACE_SECONDS", "5"))
    in_flight, finished = threading.Event(), threading.Event()
    outcome: list[object] = []
    http_outcome: list[object] = []
    after: list[scanner_pb2.Progress] = []

    def on_progress(progress: scanner_pb2.Progress) -> None:
        if in_flight.is_set():
            after.append(progress)
        elif progress.stage == ("prefilter", "fetch")[round_]:  # round 1: as the download starts
            in_flight.set()

    def scan() -> None:
        try:
            outcome.append(run_scan(cluster.target, OPTIONS, on_progress=on_progress)[1])
        except grpc.RpcError as exc:
            outcome.append(exc)
        finished.set()

    def http_scan() -> None:  # an HTTP scan in flight as well: the HTTP side stops with the gRPC side
        try:
            http_outcome.append(
                httpx.post(
                    f"{cluster.http}/v1/scan",
                    json={"refresh": True, "limit": 10},
                    headers={"X-API-Key": API_KEYS[1]},
                    timeout=SCAN_JOIN,
                ).status_code
            )
        except httpx.HTTPError as exc:
            http_outcome.append(exc)

    clean_exit = "exited: gateway (exit status 0; expected)"
    exits_before = exits(cluster, "gateway")
    threads = [threading.Thread(target=scan), threading.Thread(target=http_scan)]
    try:
        for t in threads:
            t.start()
        assert in_flight.wait(SCAN_JOIN), "the scan never reached the stage of the signal"
        assert not finished.is_set(), "the scan finished before the signal"
        os.kill(victim, signal.SIGTERM)
        signalled = time.monotonic()
        while time.monotonic() < signalled + 3 * grace + 10 and exits(cluster, "gateway") == exits_before:
            time.sleep(0.05)
        took = time.monotonic() - signalled
        for t in threads:
            t.join(SCAN_JOIN)
            assert not t.is_alive(), "a client hangs after the gateway stopped"
    finally:
        cluster.reset_faults()
    tail = (cluster.run_dir / "supervisord.log").read_text()
    assert exits(cluster, "gateway") == exits_before + 1, "the gateway did not exit"
    assert took < grace + 3, f"the gateway took {took:.1f} s to exit, with a grace period of {grace:g} s"
    last_exit = [line for line in tail.splitlines() if "exited: gateway" in line][-1]
    assert clean_exit in last_exit, last_exit
    [result] = outcome
    assert isinstance(result, grpc.RpcError), "the scan finished although it could not within the grace period"
    assert result.code() == grpc.StatusCode.UNAVAILABLE, result
    [http_result] = http_outcome
    assert http_result == 500, http_result  # uvicorn ends a request still running at its grace limit so

    assert cluster.wait_running("gateway", cluster.port("TECHNIC_GATEWAY_PORT"), old_pid=victim) != victim
    wait_healthy(cluster)


SCAN_JOIN = 60.0
