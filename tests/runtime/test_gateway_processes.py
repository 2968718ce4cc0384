"""`technic up` with TECHNIC_GATEWAY_PROCESSES=2: two gateway processes share the HTTP and gRPC
ports, `technic status` shows both serving, the app's scan is answered, and `technic down` leaves
no process behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from tests.runtime.test_cluster import cluster_env, run_dir, technic

__all__ = ["run_dir"]


@pytest.mark.integration
def test_two_gateway_processes_share_the_ports(run_dir: Path) -> None:
    env = {**cluster_env(run_dir), "TECHNIC_GATEWAY_PROCESSES": "2"}
    up = technic(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr + (run_dir / "supervisord.log").read_text()
    supervisord = psutil.Process(int((run_dir / "supervisord.pid").read_text()))
    children = supervisord.children(recursive=True)
    try:
        status = technic(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        lines = {
            name: next((ln for ln in status.stdout.splitlines() if f" {name} " in f" {ln} "), "")
            for name in ("gateway", "gateway-peer:gateway-2")
        }
        for name, line in lines.items():
            assert "RUNNING" in line and "SERVING" in line, f"{name}:\n{status.stdout}"
        http_port = int(env["TECHNIC_GATEWAY_HTTP_PORT"])
        gateways = [p for p in children if p.cmdline()[-2:] == ["-m", "gateway"]]
        listening = {
            p.pid
            for p in gateways
            for c in p.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == http_port
        }
        assert len(gateways) == 2 and listening == {p.pid for p in gateways}
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=240) as client:
            first = client.post("/v1/scan", json={"limit": 5})
            assert first.status_code == 200, first.text
            assert client.post("/v1/scan", json={"limit": 5}).json()["results"] == first.json()["results"]
    finally:
        down = technic(env, "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
