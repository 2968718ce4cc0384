"""Messages <-> domain objects for the ranker servicer (protobuf only; nothing here speaks gRPC)."""

from __future__ import annotations

import numpy as np

from services.common.codec import Block, BlockError, decode_block
from services.ranker.engine import RankInput, ScanSpec, ScoredChunk, SymbolInfo
from services.ranker.errors import RankerInputError
from services.ranker.plan import rationale
from services.ranker.rank import FilterSpec, PageSpec, RangeSpec, page_spec
from services.ranker.result import NUMBER_COLUMNS, SUBSCORE_COLUMNS, Issues, RankedScan
from services.ranker.styles import SUBSCORES, UnknownStyleError, style_for
from technic.v1 import common_pb2, compute_pb2, ranker_pb2, scan_pb2

STATE_NAMES = {
    common_pb2.SYMBOL_STATE_UNSPECIFIED: "unspecified",
    common_pb2.SYMBOL_STATE_OK: "ok",
    common_pb2.SYMBOL_STATE_INSUFFICIENT_HISTORY: "insufficient_history",
    common_pb2.SYMBOL_STATE_NO_DATA: "no_data",
    common_pb2.SYMBOL_STATE_STALE: "stale",
    common_pb2.SYMBOL_STATE_ERROR: "error",
}
BUCKET_NAMES = {
    common_pb2.BUCKET_UNSPECIFIED: "unspecified",
    common_pb2.BUCKET_RANKED: "ranked",
    common_pb2.BUCKET_FILTERED: "filtered",
    common_pb2.BUCKET_SKIPPED: "skipped",
    common_pb2.BUCKET_ERRORED: "errored",
}
BUCKET_ENUMS = {name: value for value, name in BUCKET_NAMES.items()}
_COL = {name: i for i, name in enumerate(NUMBER_COLUMNS)}
_SUB = [_COL[c] for c in SUBSCORE_COLUMNS]


def _block(data: bytes, what: str, chunk: int) -> Block:
    try:
        return decode_block(data)
    except BlockError as exc:
        raise RankerInputError(f"chunk {chunk}: {what} block: {exc}") from None


def scan_spec(options: scan_pb2.ScanOptions) -> ScanSpec:
    """The ranking part of ScanOptions: style, filters, first page."""
    try:
        style = style_for(options.trade_style)
    except UnknownStyleError as exc:
        raise RankerInputError(str(exc)) from None
    filters = FilterSpec(
        min_price=options.min_price if options.HasField("min_price") else None,
        min_dollar_volume=options.min_dollar_volume if options.HasField("min_dollar_volume") else None,
        sectors=tuple(options.sectors), min_tech_rating=options.min_tech_rating, signals=tuple(options.signals),
        ranges=tuple(RangeSpec(r.column, r.min if r.HasField("min") else None, r.max if r.HasField("max") else None)
                     for r in options.ranges),
    )
    return ScanSpec(style, filters, page_spec(options.sort_by, options.ascending, options.offset, options.limit))


def rank_input(header: ranker_pb2.RankHeader) -> RankInput:
    """The domain form of a RankHeader; ``requested`` 0 means info + issues."""
    info = header.info
    n = len(info.symbols)

    def fill(values: list[str] | list[float], default: str | float) -> tuple:  # type: ignore[type-arg]
        return tuple(values) if values else (default,) * n

    issues = Issues([i.symbol for i in header.issues], [BUCKET_NAMES.get(i.bucket, "unspecified")
                                                         for i in header.issues],
                    [i.reason for i in header.issues], [i.detail for i in header.issues])
    benchmark = np.empty(0)
    if header.benchmark:
        try:
            block = decode_block(header.benchmark)
        except BlockError as exc:
            raise RankerInputError(f"header.benchmark block: {exc}") from None
        benchmark = block.column("close") if "close" in block.fields else block.array.ravel()
    return RankInput(
        scan_id=header.scan_id, fingerprint=header.fingerprint, as_of=header.as_of, spec=scan_spec(header.options),
        info=SymbolInfo(tuple(info.symbols), fill(list(info.names), ""), fill(list(info.sectors), ""),
                        fill(list(info.industries), ""), fill(list(info.market_caps), float("nan"))),
        issues=issues, requested=header.requested or n + len(issues), benchmark=benchmark,
        stage_seconds=dict(header.stage_seconds),
    )


def scored_chunk(msg: compute_pb2.ScoreResponse) -> ScoredChunk:
    """Decode one compute answer; a malformed block is an input error naming the chunk."""
    i = msg.chunk_index
    return ScoredChunk(
        chunk_index=i, symbols=tuple(msg.symbols), states=tuple(STATE_NAMES.get(s, "unspecified") for s in msg.states),
        features=_block(msg.features, "features", i), scores=_block(msg.scores, "scores", i),
        levels=_block(msg.levels, "levels", i),
        sparklines=_block(msg.sparklines, "sparklines", i) if msg.sparklines else None,
        feature_version=msg.feature_version, model_versions=dict(msg.model_versions),
    )


def page_of(req: ranker_pb2.GetResultsRequest) -> PageSpec:
    return page_spec(req.sort_by, req.ascending, req.offset, req.limit)


def scan_result(scan: RankedScan, page: PageSpec, *, scan_id: str, cached: bool,
                include_issues: bool) -> scan_pb2.ScanResult:
    """One page of ``scan`` as a ScanResult (issues only when asked for)."""
    idx = scan.page(page)
    style = style_for(scan.style)
    acc = scan.accounting
    regime = scan.regime
    result = scan_pb2.ScanResult(
        scan_id=scan_id, fingerprint=scan.fingerprint, as_of=scan.as_of, cached=cached,
        accounting=common_pb2.Accounting(requested=acc.requested, ranked=acc.ranked, filtered=acc.filtered,
                                         skipped=acc.skipped, errored=acc.errored),
        regime=scan_pb2.MarketRegime(trend=regime.trend, volatility=regime.volatility, label=regime.label,
                                     benchmark_close=regime.benchmark_close,
                                     benchmark_sma_200=regime.benchmark_sma_200,
                                     benchmark_volatility=regime.benchmark_volatility),
        total_rows=len(scan), offset=page.offset, stage_seconds=scan.stage_seconds,
        feature_version=scan.feature_version, model_versions=scan.model_versions,
        created_unix=scan.created_unix, trade_style=style.enum_value,
    )
    result.rows.extend(rows(scan, idx))
    for m in scan.movers:
        result.movers.add(symbol=m.symbol, change_pct=m.change_pct, note=m.note,
                          sparkline=scan.sparklines[m.row].tolist())
    if include_issues:
        iss = scan.issues
        add = result.issues.add
        for symbol, bucket, reason, detail in zip(iss.symbols, iss.buckets, iss.reasons, iss.details, strict=True):
            add(symbol=symbol, bucket=BUCKET_ENUMS[bucket], reason=reason, detail=detail)
    return result


def rows(scan: RankedScan, idx: np.ndarray) -> list[scan_pb2.ScanRow]:
    """ScanRow messages for the rows ``idx`` (features, subscores, plan, sparkline, rationale)."""
    numbers = scan.numbers[idx].tolist()
    features = scan.features[idx].tolist()
    sparks = scan.sparklines[idx].tolist()
    text = {k: v[idx].tolist() for k, v in scan.text.items()}
    names = scan.feature_names
    out = []
    for j, v in enumerate(numbers):
        subs = {name: v[c] for name, c in zip(SUBSCORES, _SUB, strict=True)}
        signal = text["signal"][j]
        out.append(scan_pb2.ScanRow(
            rank=int(v[_COL["rank"]]), symbol=text["symbol"][j], name=text["name"][j], sector=text["sector"][j],
            industry=text["industry"][j], signal=signal, tech_rating=v[_COL["tech_rating"]],
            alpha_score=v[_COL["alpha_score"]], composite_score=v[_COL["composite_score"]],
            percentile=v[_COL["percentile"]], sector_percentile=v[_COL["sector_percentile"]],
            win_prob_10d=v[_COL["win_prob_10d"]], alpha_5d=v[_COL["alpha_5d"]], alpha_10d=v[_COL["alpha_10d"]],
            last_close=v[_COL["last_close"]], change_pct=v[_COL["change_pct"]], atr_pct=v[_COL["atr_pct"]],
            avg_dollar_volume=v[_COL["avg_dollar_volume"]], market_cap=v[_COL["market_cap"]],
            plan=scan_pb2.TradePlan(entry=v[_COL["entry"]], stop=v[_COL["stop"]], target=v[_COL["target"]],
                                    reward_risk=v[_COL["reward_risk"]], position_size=v[_COL["position_size"]],
                                    side="short" if text["side"][j] == "short" else "long"),
            subscores=subs, features=dict(zip(names, features[j], strict=True)), sparkline=sparks[j],
            rationale=rationale(signal, subs, v[_COL["alpha_5d"]], v[_COL["alpha_10d"]], v[_COL["alpha_score"]]),
            play_style=scan.style,
        ))
    return out
