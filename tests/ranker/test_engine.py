"""The whole ranking of a synthetic universe: accounting, ranks, percentiles, rows, round trip, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.codec import decode_block, encode_block
from services.ranker.engine import RankConfig, RankInput, ScanSpec, SymbolInfo, rank_scan
from services.ranker.errors import RankerInputError
from services.ranker.rank import FilterSpec, PageSpec, RangeSpec
from services.ranker.result import NUMBER_COLUMNS, Issues, RankedScan
from services.ranker.scoring import WinProbCalibration
from services.ranker.styles import style_for
from services.ranker.synthetic import FEATURES, SECTORS, benchmark_closes, synthetic_universe
from tests.ranker.conftest import WIN_PROB
from tests.ranker.oracles import percentile_of

CAL = WinProbCalibration.from_metadata({"win_prob": WIN_PROB, "version": "test-10d"}, "test")
CONFIG = RankConfig(CAL)


def make_input(
    info: SymbolInfo,
    filters: FilterSpec | None = None,
    issues: Issues | None = None,
    style: str = "Short-term swing",
    page: PageSpec | None = None,
) -> RankInput:
    issues = issues or Issues()
    return RankInput(
        "scan-1",
        "fp-1",
        "2026-11-13",
        ScanSpec(style_for(style), filters or FilterSpec(), page or PageSpec()),
        info,
        issues,
        len(info.symbols) + len(issues),
        benchmark_closes(),
        {"fetch": 0.5},
    )


def ranked(n: int = 400, filters: FilterSpec | None = None, **kw: object) -> RankedScan:
    u = synthetic_universe(n, chunk_size=97, **kw)  # type: ignore[arg-type]
    return rank_scan(make_input(u.info, filters), u.decoded(), CONFIG)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 300),
    unscored=st.floats(0, 0.5),
    min_rating=st.floats(0, 80),
    sectors=st.lists(st.sampled_from(SECTORS[:4]), max_size=2, unique=True),
    prefiltered=st.integers(0, 20),
    drop_chunk=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_every_symbol_lands_in_one_bucket(
    n: int, unscored: float, min_rating: float, sectors: list[str], prefiltered: int, drop_chunk: bool, seed: int
) -> None:
    u = synthetic_universe(n, seed=seed, chunk_size=64, unscored=unscored, n_sectors=4)
    chunks = u.decoded()
    if drop_chunk and chunks:
        chunks = chunks[1:]  # a lost chunk: its symbols are errored "not_scored"
    issues = Issues()
    issues.extend([f"P{i}" for i in range(prefiltered)], "filtered", ["prefilter_price"] * prefiltered)
    present = sorted(set(u.info.sectors))
    filters = FilterSpec(min_tech_rating=min_rating, sectors=tuple(s for s in sectors if s in present))
    scan = rank_scan(make_input(u.info, filters, issues), chunks, CONFIG)
    acc = scan.accounting
    assert acc.total() == acc.requested == n + prefiltered
    assert acc.ranked == len(scan)
    assert len(scan.issues) == acc.requested - acc.ranked
    everyone = set(scan.text["symbol"]) | set(scan.issues.symbols)
    assert everyone == set(u.info.symbols) | {f"P{i}" for i in range(prefiltered)}
    assert sorted(scan.number("rank").astype(int)) == list(range(1, len(scan) + 1))
    for col in ("percentile", "sector_percentile", "tech_rating", "composite_score"):
        values = scan.number(col)
        assert ((values >= 0) & (values <= 100)).all(), col
    assert (scan.number("tech_rating") >= min_rating).all()
    if filters.sectors:
        assert set(scan.text["sector"]) <= set(filters.sectors)
    if drop_chunk and chunks is not None and n > 64:
        assert acc.errored.get("not_scored", 0) == 64


def test_rows_are_ranked_by_composite_with_features_and_plans() -> None:
    scan = ranked(600)
    comp = scan.number("composite_score")
    assert (np.diff(comp) <= 0).all()
    assert scan.number("rank").tolist() == list(range(1, len(scan) + 1))
    assert scan.feature_names == FEATURES and scan.features.shape == (len(scan), len(FEATURES))
    assert scan.sparklines.shape == (len(scan), 30)
    longs = scan.text["side"] == "long"
    assert (scan.number("stop")[longs] < scan.number("entry")[longs]).all()
    assert np.allclose(scan.number("entry"), scan.number("last_close"))
    wp = scan.number("win_prob_10d")
    assert ((wp >= 0.4) & (wp <= 0.62)).all()
    assert scan.regime.label != "unknown"
    assert scan.movers[0].change_pct == scan.number("change_pct").max()
    losers = [m for m in scan.movers if m.change_pct < 0]
    assert len(losers) == 5 and losers[0].change_pct == scan.number("change_pct").min()
    assert scan.text["symbol"][scan.movers[0].row] == scan.movers[0].symbol


def test_sector_percentiles_are_within_sector() -> None:
    u = synthetic_universe(500, chunk_size=100)
    scan = rank_scan(make_input(u.info), u.decoded(), CONFIG)
    sectors = scan.text["sector"]
    comp, sp = scan.number("composite_score"), scan.number("sector_percentile")
    np.testing.assert_allclose(sp, percentile_of(comp.tolist(), sectors.tolist()), rtol=0, atol=1e-9)
    np.testing.assert_allclose(scan.number("percentile"), percentile_of(comp.tolist()), rtol=0, atol=1e-9)
    for s in set(sectors):
        inside = sectors == s
        assert sp[inside].max() == 100.0 or inside.sum() == 1


def test_percentiles_are_taken_before_filters() -> None:
    u = synthetic_universe(300, chunk_size=100)
    full = rank_scan(make_input(u.info), u.decoded(), CONFIG)
    energy = rank_scan(make_input(u.info, FilterSpec(sectors=("Energy",))), u.decoded(), CONFIG)
    by_symbol = dict(zip(full.text["symbol"], full.number("percentile"), strict=True))
    assert all(by_symbol[s] == p for s, p in zip(energy.text["symbol"], energy.number("percentile"), strict=True))
    assert energy.accounting.filtered["sectors"] == len(full) - len(energy)


def test_range_filter_on_a_feature_and_a_column() -> None:
    scan = ranked(400, FilterSpec(ranges=(RangeSpec("rsi_14", 40, 70), RangeSpec("win_prob_10d", 0.5, None))))
    rsi = scan.features[:, FEATURES.index("rsi_14")]
    assert ((rsi >= 40) & (rsi <= 70)).all() and (scan.number("win_prob_10d") >= 0.5).all()
    assert set(scan.accounting.filtered) <= {"range:rsi_14", "range:win_prob_10d"}


def test_round_trip_through_bytes() -> None:
    scan = ranked(300)
    back = RankedScan.from_bytes(scan.to_bytes())
    np.testing.assert_array_equal(back.numbers, scan.numbers)
    np.testing.assert_array_equal(back.features, scan.features)
    np.testing.assert_array_equal(back.sparklines, scan.sparklines)
    assert {k: v.tolist() for k, v in back.text.items()} == {k: v.tolist() for k, v in scan.text.items()}
    assert back.issues == scan.issues and back.accounting == scan.accounting and back.movers == scan.movers
    assert back.regime == scan.regime and back.stage_seconds == scan.stage_seconds
    assert back.page(PageSpec("rsi_14", True, 5, 10)).tolist() == scan.page(PageSpec("rsi_14", True, 5, 10)).tolist()


def test_pages_sort_by_any_column() -> None:
    scan = ranked(300)
    idx = scan.page(PageSpec("change_pct", False, 0, 50))
    assert len(idx) == 50 and (np.diff(scan.number("change_pct")[idx]) <= 0).all()
    idx = scan.page(PageSpec("symbol", True, 10, 5))
    assert scan.text["symbol"][idx].tolist() == sorted(scan.text["symbol"])[10:15]
    assert len(scan.page(PageSpec(offset=len(scan) + 5))) == 0
    with pytest.raises(RankerInputError, match=r"unknown sort column .nope.; allowed: .*rsi_14"):
        scan.page(PageSpec("nope"))


def test_bad_chunks_and_headers_are_input_errors() -> None:
    u = synthetic_universe(50, chunk_size=25)
    chunks = u.decoded()
    with pytest.raises(RankerInputError, match="more than one chunk"):
        rank_scan(make_input(u.info), [chunks[0], dataclasses.replace(chunks[0], chunk_index=5)], CONFIG)
    short_info = dataclasses.replace(
        u.info, **{f.name: getattr(u.info, f.name)[:25] for f in dataclasses.fields(u.info)}
    )
    with pytest.raises(RankerInputError, match=r"not announced in header\.info"):
        rank_scan(make_input(short_info), chunks, CONFIG)
    block = chunks[0].features
    keep = [i for i, f in enumerate(block.fields) if f != "rsi_14"]
    bad = decode_block(encode_block(np.ascontiguousarray(block.array[:, keep]), fields=[block.fields[i] for i in keep]))
    with pytest.raises(RankerInputError, match="lacks rsi_14"):
        rank_scan(make_input(u.info), [dataclasses.replace(chunks[0], features=bad)], CONFIG)
    levels = chunks[0].levels
    twice = decode_block(encode_block(levels.array, fields=[*levels.fields[:-1], levels.fields[0]]))
    with pytest.raises(RankerInputError, match="chunk 0: levels block repeats a field name"):
        rank_scan(make_input(u.info), [dataclasses.replace(chunks[0], levels=twice), *chunks[1:]], CONFIG)
    with pytest.raises(RankerInputError, match=r"header\.requested is 7"):
        rank_scan(dataclasses.replace(make_input(u.info), requested=7), chunks, CONFIG)
    with pytest.raises(RankerInputError, match="unknown sort column 'nope'"):
        rank_scan(make_input(u.info, page=PageSpec("nope")), chunks, CONFIG)
    with pytest.raises(RankerInputError, match="unknown sector"):
        rank_scan(make_input(u.info, FilterSpec(sectors=("Crypto",))), chunks, CONFIG)


def test_number_columns_are_unique() -> None:
    assert len(set(NUMBER_COLUMNS)) == len(NUMBER_COLUMNS)
