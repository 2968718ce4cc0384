"""Channels balance across replicas only when the target names several of them."""

from __future__ import annotations

import orjson
import pytest

from services.common.channels import channel_options, is_balanced_target, service_config


@pytest.mark.parametrize(
    ("target", "balanced"),
    [
        ("127.0.0.1:50052", False),
        ("ipv4:127.0.0.1:50061", False),
        ("ipv4:127.0.0.1:50061,127.0.0.1:50062", True),
        ("dns:///compute.technic.svc.cluster.local:50061", True),
    ],
)
def test_round_robin_for_multi_backend_targets(target: str, balanced: bool) -> None:
    assert is_balanced_target(target) is balanced
    config = orjson.loads(service_config(target))
    assert ("loadBalancingConfig" in config) is balanced
    retry = config["methodConfig"][0]["retryPolicy"]
    assert retry["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_channel_options_set_limits_and_keepalive() -> None:
    options = dict(channel_options("127.0.0.1:1", max_message_mb=8))
    assert options["grpc.max_receive_message_length"] == 8 * 1024 * 1024
    assert options["grpc.keepalive_time_ms"] > 0
    assert options["grpc.enable_retries"] == 1
