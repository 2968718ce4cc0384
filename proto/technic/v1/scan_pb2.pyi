from technic.v1 import common_pb2 as _common_pb2
from technic.v1 import compute_pb2 as _compute_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradeStyle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADE_STYLE_UNSPECIFIED: _ClassVar[TradeStyle]
    TRADE_STYLE_DAY: _ClassVar[TradeStyle]
    TRADE_STYLE_SHORT_TERM_SWING: _ClassVar[TradeStyle]
    TRADE_STYLE_MEDIUM_TERM_SWING: _ClassVar[TradeStyle]
    TRADE_STYLE_POSITION: _ClassVar[TradeStyle]

class OptionsMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIONS_MODE_UNSPECIFIED: _ClassVar[OptionsMode]
    OPTIONS_MODE_STOCK_ONLY: _ClassVar[OptionsMode]
    OPTIONS_MODE_STOCK_PLUS_OPTIONS: _ClassVar[OptionsMode]
TRADE_STYLE_UNSPECIFIED: TradeStyle
TRADE_STYLE_DAY: TradeStyle
TRADE_STYLE_SHORT_TERM_SWING: TradeStyle
TRADE_STYLE_MEDIUM_TERM_SWING: TradeStyle
TRADE_STYLE_POSITION: TradeStyle
OPTIONS_MODE_UNSPECIFIED: OptionsMode
OPTIONS_MODE_STOCK_ONLY: OptionsMode
OPTIONS_MODE_STOCK_PLUS_OPTIONS: OptionsMode

class RangeFilter(_message.Message):
    __slots__ = ("column", "min", "max")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    column: str
    min: float
    max: float
    def __init__(self, column: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class ScanOptions(_message.Message):
    __slots__ = ("universe", "max_symbols", "trade_style", "min_tech_rating", "sectors", "lookback_days", "options_mode", "signals", "min_price", "min_dollar_volume", "ranges", "sort_by", "ascending", "offset", "limit", "as_of", "include_etfs")
    UNIVERSE_FIELD_NUMBER: _ClassVar[int]
    MAX_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    TRADE_STYLE_FIELD_NUMBER: _ClassVar[int]
    MIN_TECH_RATING_FIELD_NUMBER: _ClassVar[int]
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    LOOKBACK_DAYS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_MODE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_FIELD_NUMBER: _ClassVar[int]
    MIN_DOLLAR_VOLUME_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    ASCENDING_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ETFS_FIELD_NUMBER: _ClassVar[int]
    universe: _containers.RepeatedScalarFieldContainer[str]
    max_symbols: int
    trade_style: TradeStyle
    min_tech_rating: float
    sectors: _containers.RepeatedScalarFieldContainer[str]
    lookback_days: int
    options_mode: OptionsMode
    signals: _containers.RepeatedScalarFieldContainer[str]
    min_price: float
    min_dollar_volume: float
    ranges: _containers.RepeatedCompositeFieldContainer[RangeFilter]
    sort_by: str
    ascending: bool
    offset: int
    limit: int
    as_of: str
    include_etfs: bool
    def __init__(self, universe: _Optional[_Iterable[str]] = ..., max_symbols: _Optional[int] = ..., trade_style: _Optional[_Union[TradeStyle, str]] = ..., min_tech_rating: _Optional[float] = ..., sectors: _Optional[_Iterable[str]] = ..., lookback_days: _Optional[int] = ..., options_mode: _Optional[_Union[OptionsMode, str]] = ..., signals: _Optional[_Iterable[str]] = ..., min_price: _Optional[float] = ..., min_dollar_volume: _Optional[float] = ..., ranges: _Optional[_Iterable[_Union[RangeFilter, _Mapping]]] = ..., sort_by: _Optional[str] = ..., ascending: _Optional[bool] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., as_of: _Optional[str] = ..., include_etfs: _Optional[bool] = ...) -> None: ...

class TradePlan(_message.Message):
    __slots__ = ("entry", "stop", "target", "reward_risk", "position_size", "side")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REWARD_RISK_FIELD_NUMBER: _ClassVar[int]
    POSITION_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    entry: float
    stop: float
    target: float
    reward_risk: float
    position_size: float
    side: str
    def __init__(self, entry: _Optional[float] = ..., stop: _Optional[float] = ..., target: _Optional[float] = ..., reward_risk: _Optional[float] = ..., position_size: _Optional[float] = ..., side: _Optional[str] = ...) -> None: ...

class ScanRow(_message.Message):
    __slots__ = ("rank", "symbol", "name", "sector", "industry", "signal", "tech_rating", "alpha_score", "composite_score", "percentile", "sector_percentile", "win_prob_10d", "alpha_5d", "alpha_10d", "last_close", "change_pct", "atr_pct", "avg_dollar_volume", "market_cap", "plan", "subscores", "features", "sparkline", "rationale", "play_style", "explanation", "rating_percentile", "alpha_percentile", "ics", "ics_tier", "merit_score", "merit_band", "merit_flags", "merit_summary", "risk_label", "ultra_risky", "profile", "profile_label")
    class SubscoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RANK_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECTOR_FIELD_NUMBER: _ClassVar[int]
    INDUSTRY_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    TECH_RATING_FIELD_NUMBER: _ClassVar[int]
    ALPHA_SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPOSITE_SCORE_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    SECTOR_PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    WIN_PROB_10D_FIELD_NUMBER: _ClassVar[int]
    ALPHA_5D_FIELD_NUMBER: _ClassVar[int]
    ALPHA_10D_FIELD_NUMBER: _ClassVar[int]
    LAST_CLOSE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PCT_FIELD_NUMBER: _ClassVar[int]
    ATR_PCT_FIELD_NUMBER: _ClassVar[int]
    AVG_DOLLAR_VOLUME_FIELD_NUMBER: _ClassVar[int]
    MARKET_CAP_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SUBSCORES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SPARKLINE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    PLAY_STYLE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    RATING_PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    ICS_FIELD_NUMBER: _ClassVar[int]
    ICS_TIER_FIELD_NUMBER: _ClassVar[int]
    MERIT_SCORE_FIELD_NUMBER: _ClassVar[int]
    MERIT_BAND_FIELD_NUMBER: _ClassVar[int]
    MERIT_FLAGS_FIELD_NUMBER: _ClassVar[int]
    MERIT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RISK_LABEL_FIELD_NUMBER: _ClassVar[int]
    ULTRA_RISKY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_LABEL_FIELD_NUMBER: _ClassVar[int]
    rank: int
    symbol: str
    name: str
    sector: str
    industry: str
    signal: str
    tech_rating: float
    alpha_score: float
    composite_score: float
    percentile: float
    sector_percentile: float
    win_prob_10d: float
    alpha_5d: float
    alpha_10d: float
    last_close: float
    change_pct: float
    atr_pct: float
    avg_dollar_volume: float
    market_cap: float
    plan: TradePlan
    subscores: _containers.ScalarMap[str, float]
    features: _containers.ScalarMap[str, float]
    sparkline: _containers.RepeatedScalarFieldContainer[float]
    rationale: str
    play_style: str
    explanation: _containers.RepeatedCompositeFieldContainer[_compute_pb2.SymbolExplanation]
    rating_percentile: float
    alpha_percentile: float
    ics: float
    ics_tier: str
    merit_score: float
    merit_band: str
    merit_flags: _containers.RepeatedScalarFieldContainer[str]
    merit_summary: str
    risk_label: str
    ultra_risky: bool
    profile: str
    profile_label: str
    def __init__(self, rank: _Optional[int] = ..., symbol: _Optional[str] = ..., name: _Optional[str] = ..., sector: _Optional[str] = ..., industry: _Optional[str] = ..., signal: _Optional[str] = ..., tech_rating: _Optional[float] = ..., alpha_score: _Optional[float] = ..., composite_score: _Optional[float] = ..., percentile: _Optional[float] = ..., sector_percentile: _Optional[float] = ..., win_prob_10d: _Optional[float] = ..., alpha_5d: _Optional[float] = ..., alpha_10d: _Optional[float] = ..., last_close: _Optional[float] = ..., change_pct: _Optional[float] = ..., atr_pct: _Optional[float] = ..., avg_dollar_volume: _Optional[float] = ..., market_cap: _Optional[float] = ..., plan: _Optional[_Union[TradePlan, _Mapping]] = ..., subscores: _Optional[_Mapping[str, float]] = ..., features: _Optional[_Mapping[str, float]] = ..., sparkline: _Optional[_Iterable[float]] = ..., rationale: _Optional[str] = ..., play_style: _Optional[str] = ..., explanation: _Optional[_Iterable[_Union[_compute_pb2.SymbolExplanation, _Mapping]]] = ..., rating_percentile: _Optional[float] = ..., alpha_percentile: _Optional[float] = ..., ics: _Optional[float] = ..., ics_tier: _Optional[str] = ..., merit_score: _Optional[float] = ..., merit_band: _Optional[str] = ..., merit_flags: _Optional[_Iterable[str]] = ..., merit_summary: _Optional[str] = ..., risk_label: _Optional[str] = ..., ultra_risky: _Optional[bool] = ..., profile: _Optional[str] = ..., profile_label: _Optional[str] = ...) -> None: ...

class MarketRegime(_message.Message):
    __slots__ = ("trend", "volatility", "label", "benchmark_close", "benchmark_sma_200", "benchmark_volatility")
    TREND_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_CLOSE_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_SMA_200_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_VOLATILITY_FIELD_NUMBER: _ClassVar[int]
    trend: str
    volatility: str
    label: str
    benchmark_close: float
    benchmark_sma_200: float
    benchmark_volatility: float
    def __init__(self, trend: _Optional[str] = ..., volatility: _Optional[str] = ..., label: _Optional[str] = ..., benchmark_close: _Optional[float] = ..., benchmark_sma_200: _Optional[float] = ..., benchmark_volatility: _Optional[float] = ...) -> None: ...

class Mover(_message.Message):
    __slots__ = ("symbol", "change_pct", "note", "sparkline")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PCT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SPARKLINE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    change_pct: float
    note: str
    sparkline: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, symbol: _Optional[str] = ..., change_pct: _Optional[float] = ..., note: _Optional[str] = ..., sparkline: _Optional[_Iterable[float]] = ...) -> None: ...

class ScanResult(_message.Message):
    __slots__ = ("scan_id", "fingerprint", "as_of", "cached", "accounting", "regime", "rows", "total_rows", "offset", "issues", "stage_seconds", "movers", "feature_version", "model_versions", "created_unix", "trade_style")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTING_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MOVERS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_FIELD_NUMBER: _ClassVar[int]
    TRADE_STYLE_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    fingerprint: str
    as_of: str
    cached: bool
    accounting: _common_pb2.Accounting
    regime: MarketRegime
    rows: _containers.RepeatedCompositeFieldContainer[ScanRow]
    total_rows: int
    offset: int
    issues: _containers.RepeatedCompositeFieldContainer[_common_pb2.SymbolIssue]
    stage_seconds: _containers.ScalarMap[str, float]
    movers: _containers.RepeatedCompositeFieldContainer[Mover]
    feature_version: str
    model_versions: _containers.ScalarMap[str, str]
    created_unix: float
    trade_style: TradeStyle
    def __init__(self, scan_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., as_of: _Optional[str] = ..., cached: _Optional[bool] = ..., accounting: _Optional[_Union[_common_pb2.Accounting, _Mapping]] = ..., regime: _Optional[_Union[MarketRegime, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[ScanRow, _Mapping]]] = ..., total_rows: _Optional[int] = ..., offset: _Optional[int] = ..., issues: _Optional[_Iterable[_Union[_common_pb2.SymbolIssue, _Mapping]]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., movers: _Optional[_Iterable[_Union[Mover, _Mapping]]] = ..., feature_version: _Optional[str] = ..., model_versions: _Optional[_Mapping[str, str]] = ..., created_unix: _Optional[float] = ..., trade_style: _Optional[_Union[TradeStyle, str]] = ...) -> None: ...
