"""The gateway's result caches beyond the page cache's basics: the fingerprint a ranked scan is kept
under, the finished results and top rows of each request, and when a kept answer is dropped, kept
or refused (the clock is set, never waited for)."""

from __future__ import annotations

import pytest

from gateway import caches
from gateway.caches import PageCache, ResultStore, fingerprint, page_key
from gateway.settings import GatewaySettings
from technic.v1 import common_pb2, scan_pb2

SESSION = "2026-11-13"
MODELS = {"alpha_5d": "m5", "alpha_10d": "m10"}


def options(**fields: object) -> scan_pb2.ScanOptions:
    return scan_pb2.ScanOptions(**fields)  # type: ignore[arg-type]


# ---- fingerprint ------------------------------------------------------------------------------------


def test_the_fingerprint_of_a_known_scan_never_changes() -> None:
    """The ranker keeps ranked scans under it: another spelling of the same scan would rank it again."""
    opts = options(sectors=["Energy"], min_tech_rating=60.0, trade_style=scan_pb2.TRADE_STYLE_DAY)
    assert fingerprint(opts, SESSION, "f1", MODELS) == "69adb5f6b4b770f0b992abefba452846"


def test_the_page_and_the_asked_session_are_not_part_of_the_fingerprint() -> None:
    base = fingerprint(options(min_tech_rating=60.0), SESSION, "f1", MODELS)
    paged = options(min_tech_rating=60.0, offset=5, limit=7, sort_by="symbol", ascending=True, as_of="2026-11-12")
    assert fingerprint(paged, SESSION, "f1", MODELS) == base
    assert paged.limit == 7 and paged.as_of == "2026-11-12"  # the caller's options are left alone
    assert len(base) == 32 and int(base, 16) >= 0


@pytest.mark.parametrize(
    ("opts", "as_of", "features", "models"),
    [
        (options(min_tech_rating=61.0), SESSION, "f1", MODELS),
        (options(min_tech_rating=60.0), "2026-11-12", "f1", MODELS),
        (options(min_tech_rating=60.0), SESSION, "f2", MODELS),
        (options(min_tech_rating=60.0), SESSION, "f1", {**MODELS, "alpha_10d": "m11"}),
    ],
)
def test_what_ranks_differently_has_another_fingerprint(
    opts: scan_pb2.ScanOptions, as_of: str, features: str, models: dict[str, str]
) -> None:
    assert fingerprint(opts, as_of, features, models) != fingerprint(
        options(min_tech_rating=60.0), SESSION, "f1", MODELS
    )


def test_the_order_of_the_model_versions_does_not_matter() -> None:
    reordered = dict(reversed(list(MODELS.items())))
    assert fingerprint(options(), SESSION, "f1", reordered) == fingerprint(options(), SESSION, "f1", MODELS)


def test_a_page_key_is_the_fingerprint_and_the_page() -> None:
    opts = options(offset=5, limit=7, sort_by="symbol", ascending=True, min_tech_rating=3.0)
    assert page_key("fp", opts) == ("fp", 5, 7, "symbol", True)


# ---- finished results ---------------------------------------------------------------------------------


def ranked(*symbols: str) -> scan_pb2.ScanResult:
    """A result whose rows are listed worst first (rank = position from the end)."""
    rows = [scan_pb2.ScanRow(symbol=s, rank=len(symbols) - i) for i, s in enumerate(symbols)]
    return scan_pb2.ScanResult(
        fingerprint="fp",
        rows=rows,
        issues=[common_pb2.SymbolIssue(symbol="BAD", bucket=common_pb2.BUCKET_ERRORED, reason="x")],
    )


def test_remember_keeps_a_cached_copy_without_issues_and_moves_the_generation() -> None:
    store = ResultStore(GatewaySettings(gateway_explain_top=2))
    result, opts = ranked("CCC", "BBB", "AAA"), options(limit=3, min_tech_rating=5.0)
    assert store.top_rows(opts.SerializeToString(deterministic=True)) == [] and store.latest is None
    store.remember(result, opts, "canonical")
    kept = store.get(page_key("canonical", opts))
    assert kept is not None and kept.cached and list(kept.issues) == [] and list(kept.rows) == list(result.rows)
    assert not result.cached and len(result.issues) == 1  # the caller's result is not changed
    assert store.latest is result and store.generation == 1
    assert store.top_rows(opts.SerializeToString(deterministic=True)) == ["AAA", "BBB"]
    assert store.get(page_key("other", opts)) is None
    store.remember(ranked("DDD"), opts, "canonical")
    assert store.generation == 2 and store.top_rows(opts.SerializeToString(deterministic=True)) == ["DDD"]


def test_the_explained_rows_are_the_best_ranked_of_the_page() -> None:
    store = ResultStore(GatewaySettings(gateway_explain_top=3))
    assert store.top_symbols(ranked("EEE", "DDD", "CCC", "BBB", "AAA")) == ["AAA", "BBB", "CCC"]
    assert store.top_symbols(ranked("BBB", "AAA")) == ["AAA", "BBB"]


def test_results_and_top_rows_are_bounded_by_the_entries_setting() -> None:
    settings = GatewaySettings(gateway_result_cache_entries=2)
    store = ResultStore(settings)
    for n in range(3):
        store.put(page_key(f"fp{n}", options()), ranked(f"P{n}"))
    assert [store.get(page_key(f"fp{n}", options())) is not None for n in range(3)] == [False, True, True]
    store = ResultStore(settings)
    for n in range(3):
        store.remember(ranked(f"S{n}"), options(limit=n + 1), f"fp{n}")
    assert [store.top_rows(options(limit=n + 1).SerializeToString()) for n in range(3)] == [[], ["S1"], ["S2"]]


# ---- the page cache's rules -------------------------------------------------------------------------


class State:
    def __init__(self) -> None:
        self.generation = 0
        self.as_of = SESSION


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(caches.time, "monotonic", lambda: now[0])
    return now


def test_an_entry_lives_until_its_expiry(clock: list[float]) -> None:
    state = State()
    cache = PageCache(lambda: state.generation, lambda: state.as_of, 1024, ttl=lambda: 10.0)
    cache.put(b"k", b"v", cache.token())
    clock[0] += 9.999
    assert cache.get(b"k") == b"v"
    clock[0] += 0.001
    assert cache.get(b"k") is None and len(cache) == 0


def test_a_new_generation_drops_every_entry_and_is_then_the_current_one(clock: list[float]) -> None:
    state = State()
    cache = PageCache(lambda: state.generation, lambda: state.as_of, 1024, ttl=lambda: 10.0)
    cache.put(b"a", b"1", cache.token())
    cache.put(b"b", b"2", cache.token())
    state.generation = 5
    assert cache.get(b"other") is None and len(cache) == 0
    cache.put(b"a", b"3", cache.token())
    assert cache.get(b"a") == b"3" and cache.token() == 5


def test_an_entry_of_another_latest_session_is_dropped_an_unknown_one_kept(clock: list[float]) -> None:
    state = State()
    cache = PageCache(lambda: state.generation, lambda: state.as_of, 1024, ttl=lambda: 10.0)
    cache.put(b"k", b"v", cache.token(), latest_as_of=SESSION)
    state.as_of = ""
    assert cache.get(b"k") is None and len(cache) == 1
    state.as_of = SESSION
    assert cache.get(b"k") == b"v"
    state.as_of = "2026-11-16"
    assert cache.get(b"k") is None and len(cache) == 0


def test_the_largest_answer_kept_is_the_whole_cache(clock: list[float]) -> None:
    state = State()
    cache = PageCache(lambda: state.generation, lambda: state.as_of, 8, ttl=lambda: 10.0)
    cache.put(b"k", b"12345678", cache.token())
    assert cache.get(b"k") == b"12345678" and cache.size == 8
    assert PageCache(lambda: 0, lambda: "").max_bytes == 64 << 20  # 64 MB unless told otherwise
