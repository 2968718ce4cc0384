"""The gateway's cache of serialized answers: generation, expiry, latest session, bound."""

from __future__ import annotations

from gateway.caches import DEFAULT_DAYS, PageCache, symbol_key


class State:
    def __init__(self) -> None:
        self.generation = 0
        self.as_of = "2026-11-13"
        self.ttl = 60.0


def make(state: State, max_bytes: int = 1024) -> PageCache:
    return PageCache(lambda: state.generation, lambda: state.as_of, max_bytes, ttl=lambda: state.ttl)


def test_entry_lives_for_its_generation_and_session() -> None:
    state = State()
    cache = make(state)
    cache.put(b"pinned", b"a", cache.token())
    cache.put(b"latest", b"b", cache.token(), latest_as_of="2026-11-13")
    assert (cache.get(b"pinned"), cache.get(b"latest"), cache.get(b"other")) == (b"a", b"b", None)
    state.as_of = ""  # the latest session is no longer trusted: ask again
    assert cache.get(b"latest") is None and cache.get(b"pinned") == b"a"
    state.generation += 1
    assert cache.get(b"pinned") is None and len(cache) == 0


def test_answer_computed_across_a_generation_change_is_not_kept() -> None:
    state = State()
    cache = make(state)
    token = cache.token()
    state.generation += 1
    cache.put(b"k", b"stale", token)
    assert cache.get(b"k") is None


def test_entries_expire_with_the_rankers_cache_and_are_bounded_by_size() -> None:
    state = State()
    state.ttl = 0.0
    cache = make(state, max_bytes=20)
    cache.put(b"k", b"v", cache.token())
    assert cache.get(b"k") is None
    state.ttl = 60.0
    for key in (b"1", b"2", b"3"):
        cache.put(key, key * 8, cache.token())  # 8 bytes each: two fit in 20
    assert cache.get(b"1") is None and cache.get(b"3") == b"3" * 8 and len(cache) == 2 and cache.size == 16
    cache.put(b"3", b"x", cache.token())  # replacing an entry releases its bytes
    assert cache.size == 9
    cache.put(b"big", b"b" * 21, cache.token())  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(b"big") is None and len(cache) == 2


def test_a_symbol_page_key_is_the_ticker_as_looked_up_and_the_days_shown() -> None:
    assert symbol_key(" aapl ", 0) == symbol_key("AAPL", DEFAULT_DAYS) == b"AAPL\n90"
    assert symbol_key("AAPL", 30) == b"AAPL\n30" != symbol_key("AAPL", 90)
    assert symbol_key("MSFT", 90) != symbol_key("AAPL", 90)
