"""Messages <-> domain objects for the ranker servicer (protobuf only; nothing here speaks gRPC)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from services.common.codec import Block, BlockError, decode_block
from services.contract.columns import NUMBER_COLUMNS, SUBSCORE_COLUMNS
from services.contract.styles import SUBSCORES, UnknownStyleError, style_for
from services.ranker.derived import (
    ICS_TIERS,
    MERIT_BANDS,
    MERIT_FLAGS,
    RISK_LABELS,
    SETUPS,
    Derived,
    flag_names,
    profile,
)
from services.ranker.engine import RankInput, ScanSpec, ScoredChunk, SymbolInfo
from services.ranker.errors import RankerInputError
from services.ranker.plan import rationales
from services.ranker.rank import FilterSpec, PageSpec, RangeSpec, page_spec
from services.ranker.result import Issues, RankedScan
from services.ranker.scoring import CalibrationError, WinProbCalibration
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
        sectors=tuple(options.sectors),
        min_tech_rating=options.min_tech_rating,
        signals=tuple(options.signals),
        ranges=tuple(
            RangeSpec(r.column, r.min if r.HasField("min") else None, r.max if r.HasField("max") else None)
            for r in options.ranges
        ),
    )
    return ScanSpec(style, filters, page_spec(options.sort_by, options.ascending, options.offset, options.limit))


def rank_input(header: ranker_pb2.RankHeader) -> RankInput:
    """The domain form of a RankHeader; ``requested`` 0 means info + issues; RankerInputError when invalid."""
    info = header.info
    n = len(info.symbols)

    def fill(values: list[str] | list[float], default: str | float) -> tuple:  # type: ignore[type-arg]
        return tuple(values) if values else (default,) * n

    # One pass over the messages (each attribute read wraps a message: four passes cost twice this).
    rows = [(i.symbol, i.bucket, i.reason, i.detail) for i in header.issues]
    issues = Issues(
        [r[0] for r in rows],
        [BUCKET_NAMES.get(r[1], "unspecified") for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )
    benchmark = np.empty(0)
    if header.benchmark:
        try:
            block = decode_block(header.benchmark)
        except BlockError as exc:
            raise RankerInputError(f"header.benchmark block: {exc}") from None
        benchmark = block.column("close") if "close" in block.fields else block.array.ravel()
    return RankInput(
        scan_id=header.scan_id,
        fingerprint=header.fingerprint,
        as_of=header.as_of,
        spec=scan_spec(header.options),
        info=SymbolInfo(
            tuple(info.symbols),
            fill(list(info.names), ""),
            fill(list(info.sectors), ""),
            fill(list(info.industries), ""),
            fill(list(info.market_caps), float("nan")),
        ),
        issues=issues,
        requested=header.requested or n + len(issues),
        benchmark=benchmark,
        stage_seconds=dict(header.stage_seconds),
        calibration=calibration(header),
    )


def calibration(header: ranker_pb2.RankHeader) -> WinProbCalibration:
    """The header's win-probability table, checked; CalibrationError (an input error) when absent or unusable."""
    if not header.HasField("win_prob"):
        raise CalibrationError(
            "header.win_prob is required: the win-probability calibration of the scoring models, "
            "as Compute.Describe returns it"
        )
    table = header.win_prob
    return WinProbCalibration.from_table(table.model, table.version, table.edges, table.p_up, "header.win_prob")


def scored_chunk(msg: compute_pb2.ScoreResponse) -> ScoredChunk:
    """Decode one compute answer; a malformed block is an input error naming the chunk."""
    i = msg.chunk_index
    return ScoredChunk(
        chunk_index=i,
        symbols=tuple(msg.symbols),
        states=tuple(STATE_NAMES.get(s, "unspecified") for s in msg.states),
        features=_block(msg.features, "features", i),
        scores=_block(msg.scores, "scores", i),
        levels=_block(msg.levels, "levels", i),
        sparklines=_block(msg.sparklines, "sparklines", i) if msg.sparklines else None,
        feature_version=msg.feature_version,
        model_versions=dict(msg.model_versions),
    )


def explanations(req: ranker_pb2.AttachExplanationsRequest) -> dict[str, bytes]:
    """Symbol -> its encoded SymbolExplanation (the ranker stores and sends the bytes as they are)."""
    return {e.symbol: e.SerializeToString() for e in req.explanations}


def page_of(req: ranker_pb2.GetResultsRequest) -> PageSpec:
    return page_spec(req.sort_by, req.ascending, req.offset, req.limit)


def encoded_issues(issues: Issues) -> tuple[Issues, bytes]:
    """``issues`` and a serialized ScanResult holding them, for :func:`scan_result` to merge.

    A Rank call builds them from its header while the chunks still arrive: the thousands of
    prefilter issues then cost one parse in C after the ranking instead of a message each.
    """
    result = scan_pb2.ScanResult()
    _add_issues(result, issues, 0)
    return issues, result.SerializeToString()


def _add_issues(result: scan_pb2.ScanResult, iss: Issues, start: int) -> None:
    add = result.issues.add
    for symbol, bucket, reason, detail in zip(
        iss.symbols[start:], iss.buckets[start:], iss.reasons[start:], iss.details[start:], strict=True
    ):
        add(symbol=symbol, bucket=BUCKET_ENUMS[bucket], reason=reason, detail=detail)


def _starts_with(issues: Issues, head: Issues) -> bool:
    n = len(head)
    return len(issues) >= n and all(
        getattr(issues, name)[:n] == getattr(head, name) for name in ("symbols", "buckets", "reasons", "details")
    )


def scan_result(
    scan: RankedScan,
    page: PageSpec,
    *,
    scan_id: str,
    cached: bool,
    include_issues: bool,
    known_issues: tuple[Issues, bytes] | None = None,
) -> scan_pb2.ScanResult:
    """One page of ``scan`` as a ScanResult (issues only when asked for).

    ``known_issues`` (from :func:`encoded_issues`) is used for the scan's issues that begin with it.
    """
    idx = scan.page(page)
    style = style_for(scan.style)
    acc = scan.accounting
    regime = scan.regime
    result = scan_pb2.ScanResult(
        scan_id=scan_id,
        fingerprint=scan.fingerprint,
        as_of=scan.as_of,
        cached=cached,
        accounting=common_pb2.Accounting(
            requested=acc.requested, ranked=acc.ranked, filtered=acc.filtered, skipped=acc.skipped, errored=acc.errored
        ),
        regime=scan_pb2.MarketRegime(
            trend=regime.trend,
            volatility=regime.volatility,
            label=regime.label,
            benchmark_close=regime.benchmark_close,
            benchmark_sma_200=regime.benchmark_sma_200,
            benchmark_volatility=regime.benchmark_volatility,
        ),
        total_rows=len(scan),
        offset=page.offset,
        stage_seconds=scan.stage_seconds,
        feature_version=scan.feature_version,
        model_versions=scan.model_versions,
        created_unix=scan.created_unix,
        trade_style=style.enum_value,
    )
    result.MergeFromString(rows(scan, idx))
    for m in scan.movers:
        result.movers.add(
            symbol=m.symbol, change_pct=m.change_pct, note=m.note, sparkline=scan.sparklines[m.row].tolist()
        )
    if include_issues:
        start = 0
        if known_issues is not None and _starts_with(scan.issues, known_issues[0]):
            result.MergeFromString(known_issues[1])
            start = len(known_issues[0])
        _add_issues(result, scan.issues, start)
    return result


def rows(scan: RankedScan, idx: np.ndarray) -> bytes:
    """The rows ``idx`` as encoded ``ScanResult.rows`` entries, ready to merge into a ScanResult."""
    encoder = scan.views.get("row_encoder")
    if encoder is None:
        encoder = scan.views["row_encoder"] = RowEncoder(scan.feature_names, scan.sparklines.shape[1])
    return encoder.encode(scan, idx)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_SMALL_VARINTS = [_encode_varint(n) for n in range(1 << 14)]


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < len(_SMALL_VARINTS) else _encode_varint(value)


def _tag(field: str, wire_type: int, descriptor: object = scan_pb2.ScanRow.DESCRIPTOR) -> bytes:
    return _varint((descriptor.fields_by_name[field].number << 3) | wire_type)  # type: ignore[attr-defined]


_DOUBLE, _LEN = 1, 2
_ROWS_TAG = _tag("rows", _LEN, scan_pb2.ScanResult.DESCRIPTOR)
# ScanRow double fields and the NUMBER_COLUMNS column each one reads.
_DOUBLE_FIELDS = (
    "tech_rating",
    "alpha_score",
    "composite_score",
    "percentile",
    "sector_percentile",
    "win_prob_10d",
    "alpha_5d",
    "alpha_10d",
    "last_close",
    "change_pct",
    "atr_pct",
    "avg_dollar_volume",
    "market_cap",
    "rating_percentile",
    "alpha_percentile",
)
# ScanRow double fields read from the scan's derived scores (same attribute names).
_DERIVED_DOUBLES = ("ics", "merit_score")
_TEXT_FIELDS = ("symbol", "name", "sector", "industry", "signal")


class RowEncoder:
    """ScanRow wire bytes for a page of rows, the fixed-width part built by numpy at once.

    Every double field, the subscores and features maps (string key, double value entries) and the
    packed sparkline have a fixed size once the feature names and the sparkline length are known,
    so a page is one numpy structured array: a constant tag prefix before each value. The variable
    part (rank, text, plan, rationale, the derived labels and merit summary, an attached
    explanation) is appended per row; a label is one of a few strings, encoded once. The protobuf
    runtime parses the result (in C); the test suite checks the bytes against messages built field
    by field.
    """

    def __init__(self, feature_names: tuple[str, ...], spark_len: int) -> None:
        self.segments: list[tuple[bytes, str, tuple[int, ...]]] = []
        for name in (*_DOUBLE_FIELDS, *_DERIVED_DOUBLES):
            self.segments.append((_tag(name, _DOUBLE), "<f8", ()))
        for field, keys in (("subscores", SUBSCORES), ("features", feature_names)):
            tag = _tag(field, _LEN)
            for key in keys:
                raw = key.encode()
                entry = b"\x0a" + _varint(len(raw)) + raw + b"\x11"
                self.segments.append((tag + _varint(len(entry) + 8) + entry, "<f8", ()))
        self.spark_len = spark_len
        if spark_len:
            self.segments.append((_tag("sparkline", _LEN) + _varint(4 * spark_len), "<f4", (spark_len,)))
        self.dtype = _segments_dtype(self.segments)
        self.plan_segments = [(_tag(name, _DOUBLE, scan_pb2.TradePlan.DESCRIPTOR), "<f8", ()) for name in _PLAN_FIELDS]
        self.plan_dtype = _segments_dtype(self.plan_segments)
        self.n_double, self.n_sub = len(_DOUBLE_FIELDS), len(SUBSCORES)

    def encode(self, scan: RankedScan, idx: np.ndarray) -> bytes:
        numbers = scan.numbers[idx]
        derived = scan.derived
        values = [numbers[:, _COL[name]] for name in _DOUBLE_FIELDS]
        values += [getattr(derived, name)[idx] for name in _DERIVED_DOUBLES]
        values += [numbers[:, c] for c in _SUB]
        values += list(scan.features[idx].astype(np.float64).T)
        arr = np.empty(len(idx), dtype=self.dtype)
        for i, (prefix, _kind, _shape) in enumerate(self.segments):
            arr[f"p{i}"] = prefix
            arr[f"v{i}"] = values[i] if i < len(values) else scan.sparklines[idx]
        fixed = arr.tobytes()
        size = self.dtype.itemsize
        plan_arr = np.empty(len(idx), dtype=self.plan_dtype)
        for i, (prefix, _kind, _shape) in enumerate(self.plan_segments):
            plan_arr[f"p{i}"] = prefix
            plan_arr[f"v{i}"] = numbers[:, _COL[_PLAN_FIELDS[i]]]
        plan_fixed = plan_arr.tobytes()
        plan_size = self.plan_dtype.itemsize
        text = {k: scan.text[k][idx].tolist() for k in (*_TEXT_FIELDS, "side")}
        notes = rationales(
            text["signal"],
            numbers[:, _SUB],
            numbers[:, _COL["alpha_5d"]],
            numbers[:, _COL["alpha_10d"]],
            numbers[:, _COL["alpha_score"]],
        )
        ranks = numbers[:, _COL["rank"]].astype(np.int64).tolist()
        style = _string(_tag("play_style", _LEN), scan.style)
        columns = [text[k] for k in _TEXT_FIELDS]
        labels = _label_codes(derived, idx).tolist()
        profiles = _profiles(scan.style)
        kinds = (derived.setup[idx].astype(np.int64) * 2 + derived.ultra_risky[idx]).tolist()
        summaries = derived.summaries(idx, scan.number("percentile"))
        explained = scan.explanations
        out = []
        for j, (rank, label, summary, kind) in enumerate(zip(ranks, labels, summaries, kinds, strict=True)):
            side = _SIDES["short" if text["side"][j] == "short" else "long"]
            explanation = explained.get(text["symbol"][j]) if explained else None
            row = b"".join(
                (
                    _RANK_TAG,
                    _varint(rank),
                    *(_string(tag, col[j]) for tag, col in zip(_TEXT_TAG_LIST, columns, strict=True)),
                    _PLAN_TAG,
                    _varint(plan_size + len(side)),
                    plan_fixed[j * plan_size : (j + 1) * plan_size],
                    side,
                    _string(_RATIONALE_TAG, notes[j]),
                    style,
                    fixed[j * size : (j + 1) * size],
                    _LABELS[label],
                    profiles[kind],
                    _string(_SUMMARY_TAG, summary),
                    _EXPLANATION_TAG + _varint(len(explanation)) + explanation if explanation else b"",
                )
            )
            out.append(_ROWS_TAG + _varint(len(row)) + row)
        return b"".join(out)


def _string(tag: bytes, value: str) -> bytes:
    raw = value.encode()
    return tag + _varint(len(raw)) + raw if raw else b""


_RANK_TAG = _tag("rank", 0)
_PLAN_TAG = _tag("plan", _LEN)
_RATIONALE_TAG = _tag("rationale", _LEN)
_TEXT_TAG_LIST = [_tag(k, _LEN) for k in _TEXT_FIELDS]
_PLAN_FIELDS = ("entry", "stop", "target", "reward_risk", "position_size")
_SIDES = {side: _string(_tag("side", _LEN, scan_pb2.TradePlan.DESCRIPTOR), side) for side in ("long", "short")}
_SUMMARY_TAG = _tag("merit_summary", _LEN)
_EXPLANATION_TAG = _tag("explanation", _LEN)
# The encoded labels (ICS tier, merit band, merit flags, risk label) of every combination of their
# codes, at index _label_codes(...): a code of -1 (no label) encodes to nothing.
_TIERS = [b"", *(_string(_tag("ics_tier", _LEN), name) for name in ICS_TIERS)]
_BANDS = [b"", *(_string(_tag("merit_band", _LEN), name) for name in MERIT_BANDS)]
_FLAG_SETS = [
    b"".join(_string(_tag("merit_flags", _LEN), name) for name in flag_names(bits))
    for bits in range(1 << len(MERIT_FLAGS))
]
_RISKS = [b"", *(_string(_tag("risk_label", _LEN), name) for name in RISK_LABELS)]
_LABELS = [t + b + f + r for t in _TIERS for b in _BANDS for f in _FLAG_SETS for r in _RISKS]


@functools.cache
def _profiles(style: str) -> tuple[bytes, ...]:
    """The encoded ultra-risky flag, profile and profile label of rows rated for ``style``, at index
    ``setup * 2 + ultra_risky``."""
    ultra = (b"", _tag("ultra_risky", 0) + b"\x01")
    out = []
    for code in range(len(SETUPS)):
        key, label = profile(style, code)
        words = _string(_tag("profile", _LEN), key) + _string(_tag("profile_label", _LEN), label)
        out += [ultra[0] + words, ultra[1] + words]
    return tuple(out)


def _label_codes(derived: Derived, idx: np.ndarray) -> np.ndarray:
    """Per row of ``idx``, the index of its labels in _LABELS."""
    code = derived.ics_tier[idx].astype(np.int64) + 1
    code = code * len(_BANDS) + derived.merit_band[idx] + 1
    code = code * len(_FLAG_SETS) + derived.merit_flags[idx]
    return code * len(_RISKS) + derived.risk_label[idx] + 1


def _segments_dtype(segments: Sequence[tuple[bytes, str, tuple[int, ...]]]) -> np.dtype:
    """A packed structured dtype: for each segment its constant prefix bytes, then its value."""
    return np.dtype(
        [
            item
            for i, (prefix, kind, shape) in enumerate(segments)
            for item in ((f"p{i}", f"S{len(prefix)}"), (f"v{i}", kind, shape))
        ]
    )
