"""The feature list: names, plain labels, version, and the price-level and panel fields.

Compute computes these features, the ranker rates on them, the gateway validates sort and filter
columns against them, and model metadata records them; the fetcher's panels carry PANEL_FIELDS.
Change a name or a definition here and bump FEATURE_VERSION; models trained on another version
are refused.
"""

from __future__ import annotations

FEATURE_VERSION = "2026.11-f38"
PANEL_FIELDS = ("open", "high", "low", "close", "volume")
MIN_HISTORY = 60
SPARKLINE_LENGTH = 30

FEATURE_LABELS: dict[str, str] = {
    "ret_1d": "Return 1 day",
    "ret_5d": "Return 5 days",
    "ret_21d": "Return 1 month",
    "ret_63d": "Return 3 months",
    "ret_126d": "Return 6 months",
    "ret_252d": "Return 12 months",
    "dist_sma_10": "Distance to SMA (10)",
    "dist_sma_20": "Distance to SMA (20)",
    "dist_sma_50": "Distance to SMA (50)",
    "dist_sma_100": "Distance to SMA (100)",
    "dist_sma_200": "Distance to SMA (200)",
    "ema_20_50_spread": "EMA (20) vs EMA (50)",
    "dist_52w_high": "Distance to 52-week high",
    "dist_52w_low": "Distance to 52-week low",
    "rsi_14": "RSI (14)",
    "macd_pct": "MACD (12, 26) / price",
    "macd_signal_pct": "MACD signal (9) / price",
    "macd_hist_pct": "MACD histogram / price",
    "bb_pct_b": "Bollinger %B (20, 2)",
    "bb_width": "Bollinger band width (20, 2)",
    "atr_14_pct": "ATR (14) % of price",
    "adx_14": "ADX (14)",
    "plus_di_14": "+DI (14)",
    "minus_di_14": "-DI (14)",
    "stoch_k": "Stochastic %K (14, 3, 3)",
    "stoch_d": "Stochastic %D (14, 3, 3)",
    "cci_20": "CCI (20)",
    "willr_14": "Williams %R (14)",
    "obv_slope_21": "OBV slope (21)",
    "realized_vol_21": "Realized volatility 1 month",
    "realized_vol_63": "Realized volatility 3 months",
    "rel_volume_20": "Relative volume (20)",
    "log_dollar_volume_20": "Dollar volume (20, log10)",
    "body_pct": "Candle body % of range",
    "upper_wick_pct": "Upper wick % of range",
    "lower_wick_pct": "Lower wick % of range",
    "gap_pct": "Opening gap",
    "roc_10": "Rate of change (10)",
}
FEATURES: tuple[str, ...] = tuple(FEATURE_LABELS)
N_FEATURES = len(FEATURES)

LEVEL_FIELDS: tuple[str, ...] = (
    "close",
    "prev_close",
    "open",
    "high",
    "low",
    "volume",
    "atr_14",
    "sma_20",
    "sma_50",
    "sma_200",
    "high_52w",
    "low_52w",
    "avg_volume_20",
    "avg_dollar_volume_20",
    "sessions",
)
N_LEVELS = len(LEVEL_FIELDS)
