"""ResilientRedis against a real redis-server: normal use, an outage served from memory, recovery."""

from __future__ import annotations

from pathlib import Path

from services.common.redis_client import ByteLRU, ResilientRedis
from tests.support import RedisServer, start_redis


async def test_get_set_mget_mset_delete(redis_server: RedisServer) -> None:
    store = ResilientRedis(redis_server.url)
    await store.client.flushdb()
    assert await store.set("technic:test:a", b"1")
    assert await store.mset({"technic:test:b": b"2", "technic:test:c": b"3"}, ttl=60)
    assert await store.get("technic:test:a") == b"1"
    assert await store.mget(["technic:test:a", "technic:test:missing", "technic:test:c"]) == [b"1", None, b"3"]
    assert 0 < await store.client.pttl("technic:test:b") <= 60_000
    await store.delete("technic:test:a")
    assert not await store.exists("technic:test:a")
    assert not store.degraded
    await store.close()


async def test_outage_falls_back_to_memory_and_recovers(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "r1")
    states: list[bool] = []
    store = ResilientRedis(server.url, timeout=0.5, retry_after=0.0, on_state_change=states.append)
    assert await store.set("technic:test:before", b"x")
    server.stop()

    assert not await store.set("technic:test:during", b"y", ttl=30)
    assert store.degraded
    assert await store.get("technic:test:during") == b"y"
    assert await store.mget(["technic:test:during", "technic:test:before"]) == [b"y", None]

    server = start_redis(tmp_path / "r2", port=server.port)
    try:
        assert await store.ping()
        assert not store.degraded
        assert await store.set("technic:test:after", b"z")
        assert await store.client.get("technic:test:after") == b"z"
        # written during the outage, still visible after it
        assert await store.get("technic:test:during") == b"y"
        assert states == [True, False]
    finally:
        await store.close()
        server.stop()


def test_byte_lru_evicts_least_recent_and_expires() -> None:
    lru = ByteLRU(max_bytes=10)
    lru.set("a", b"1234")
    lru.set("b", b"5678")
    assert lru.get("a") == b"1234"
    lru.set("c", b"9999")
    assert lru.get("b") is None and lru.get("a") == b"1234" and lru.size == 8
    lru.set("d", b"x", ttl=-1)
    assert lru.get("d") is None
    lru.set("big", b"x" * 11)
    assert lru.get("big") is None
