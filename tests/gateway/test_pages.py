"""The gateway's cache of serialized answers: generation, expiry, latest session, bound."""

from __future__ import annotations

from gateway.pages import PageCache


class State:
    def __init__(self) -> None:
        self.generation = 0
        self.as_of = "2026-11-13"
        self.ttl = 60.0


def make(state: State, entries: int = 8) -> PageCache:
    return PageCache(lambda: state.generation, lambda: state.as_of, entries, ttl=lambda: state.ttl)


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


def test_entries_expire_with_the_rankers_cache_and_are_bounded() -> None:
    state = State()
    state.ttl = 0.0
    cache = make(state, entries=2)
    cache.put(b"k", b"v", cache.token())
    assert cache.get(b"k") is None
    state.ttl = 60.0
    for key in (b"1", b"2", b"3"):
        cache.put(key, key, cache.token())
    assert cache.get(b"1") is None and cache.get(b"3") == b"3" and len(cache) == 2
