"""Scores derived from a ranked row's percentile, liquidity and volatility: ICS, merit, risk label, profile.

The app shows them beside the ranking. Each is a fixed formula of computed columns (never a
constant), vectorised over the ranked rows:

- liquidity = 100 * clip((log10(avg dollar volume 20d) - 6) / 3, 0, 1)   ($1M -> 0, $1B -> 100)
- stability = 100 * clip(1 - (ATR14 % - 1) / 7, 0, 1)                      (ATR 1 % -> 100, 8 % -> 0)
- ics, the institutional core score = 0.4 * liquidity + 0.3 * stability + 0.3 * composite
  percentile; its tier is CORE at 75 or more, SATELLITE at 55 or more, else SPECULATIVE
- merit = 0.6 * composite percentile + 0.25 * liquidity + 0.15 * stability; its band is A at 80
  or more, B at 65, C at 50, else D
- merit flags, what weakens a setup: LOW_LIQUIDITY (avg dollar volume below $10M),
  HIGH_VOLATILITY (ATR % above 6), OVERBOUGHT (RSI 14 above 70), OVERSOLD (RSI 14 below 30)
- merit summary, one line: ``"Merit A (82/100): composite percentile 90, liquidity 67, stability
  79; watch: overbought"``
- risk label, volatility as a word from ATR %: Low below 2, Moderate below 4, High below 7,
  else Very high
- ultra-risky, too volatile, illiquid or cheap for most accounts: ATR % of 7 or more (the Very
  high band), or an average dollar volume under $2M, or a last close under $1 (the prefilter keeps
  most of these out of a full scan; a watchlist scans them as asked)
- setup, the kind of trade: "ultra-risky" before anything else; for a long signal the strongest
  subscore (the first in subscore order on a tie; "long" when none is known); "watch" for Neutral;
  "short" for the short signals; "avoid" otherwise. The profile is the trade style and the setup:
  ``"swing:trend"`` and ``"Short-term swing, trend setup"``

Liquidity needs a positive dollar volume and stability a positive ATR %. ICS, merit, their tier
and band, the flags and the summary need liquidity, stability and the percentile: without one of
them they are NaN, empty and flagless. The risk label needs only a positive ATR %. A missing RSI
raises neither RSI flag.

The labels are kept as small codes (an index into their names, -1 for none; the flags as a bit
set), so a scan stores ten numbers a row; the summary text is written only for the rows of a
page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from services.contract.columns import LONG_SIGNALS
from services.contract.styles import SUBSCORES

ICS_TIERS: tuple[str, ...] = ("CORE", "SATELLITE", "SPECULATIVE")
MERIT_BANDS: tuple[str, ...] = ("A", "B", "C", "D")
MERIT_FLAGS: tuple[str, ...] = ("LOW_LIQUIDITY", "HIGH_VOLATILITY", "OVERBOUGHT", "OVERSOLD")
RISK_LABELS: tuple[str, ...] = ("Low", "Moderate", "High", "Very high")
LOW_LIQUIDITY_USD = 10_000_000.0
HIGH_VOLATILITY_ATR_PCT = 6.0
OVERBOUGHT_RSI = 70.0
OVERSOLD_RSI = 30.0
ULTRA_RISKY_ATR_PCT = 7.0
ULTRA_RISKY_DOLLAR_VOLUME = 2_000_000.0
ULTRA_RISKY_PRICE = 1.0
# Setups: the subscores first (a long setup's strongest one), then the other kinds.
SETUPS: tuple[str, ...] = (*SUBSCORES, "long", "watch", "short", "avoid", "ultra-risky")
STYLE_SLUGS = {"Day": "day", "Short-term swing": "swing", "Medium-term swing": "medium_swing", "Position": "position"}


def flag_names(bits: int) -> list[str]:
    """The MERIT_FLAGS names set in ``bits``."""
    return [name for i, name in enumerate(MERIT_FLAGS) if bits >> i & 1]


# The "; watch: ..." tail of a summary for every flag set.
_WATCH = [
    "; watch: " + ", ".join(f.lower().replace("_", " ") for f in flag_names(bits)) if bits else ""
    for bits in range(1 << len(MERIT_FLAGS))
]


@dataclass(frozen=True)
class Derived:
    """Per ranked row: the four scores (float64, NaN when unknown) and the codes of their labels."""

    liquidity: np.ndarray
    stability: np.ndarray
    ics: np.ndarray
    merit_score: np.ndarray
    ics_tier: np.ndarray  # int8 index into ICS_TIERS, -1 when ics is unknown
    merit_band: np.ndarray  # int8 index into MERIT_BANDS, -1 when merit is unknown
    merit_flags: np.ndarray  # uint8, bit i set when MERIT_FLAGS[i] applies
    risk_label: np.ndarray  # int8 index into RISK_LABELS, -1 when ATR % is unknown
    ultra_risky: np.ndarray  # uint8, 1 when the name is ultra-risky
    setup: np.ndarray  # int8 index into SETUPS

    def __len__(self) -> int:
        return len(self.ics)

    def matrix(self) -> np.ndarray:
        """(rows, len(FIELDS)) float64: the stored form (codes are small integers, exact as floats)."""
        return np.column_stack([getattr(self, name) for name in FIELDS]).astype(np.float64)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> Derived:
        """The inverse of :meth:`matrix`."""
        m = np.asarray(matrix, dtype=np.float64).reshape(-1, len(FIELDS))
        return cls(*(np.ascontiguousarray(m[:, i], dtype=dtype) for i, dtype in enumerate(_DTYPES)))

    def summaries(self, rows: Sequence[int] | np.ndarray, percentile: np.ndarray) -> list[str]:
        """The merit summary of each of ``rows``; ``percentile`` is the composite percentile of every row."""
        idx = np.asarray(rows, dtype=np.int64)
        band = self.merit_band[idx]
        known = band >= 0
        # Whole numbers as "{:.0f}" prints them (half to even, as np.rint), formatted as integers.
        numbers = np.column_stack(
            [self.merit_score[idx], np.asarray(percentile)[idx], self.liquidity[idx], self.stability[idx]]
        )
        whole = np.rint(np.where(known[:, None], numbers, 0.0)).astype(np.int64).tolist()
        return [
            f"Merit {MERIT_BANDS[b]} ({m}/100): composite percentile {p}, liquidity {q}, stability {s}{_WATCH[bits]}"
            if b >= 0
            else ""
            for b, (m, p, q, s), bits in zip(band.tolist(), whole, self.merit_flags[idx].tolist(), strict=True)
        ]


# Columns of the stored form (Derived.matrix), in order, and the dtype of each in a Derived.
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Derived))
_DTYPES = (np.float64, np.float64, np.float64, np.float64, np.int8, np.int8, np.uint8, np.int8, np.uint8, np.int8)


def profile(style: str, setup: int) -> tuple[str, str]:
    """(Profile, ProfileLabel) of a row rated for ``style`` with this SETUPS code: a key and its words."""
    kind = SETUPS[setup]
    return f"{STYLE_SLUGS.get(style, 'swing')}:{kind}", f"{style}, {kind.replace('-', ' ')} setup"


def setups(signal: np.ndarray, subscores: np.ndarray, ultra_risky: np.ndarray) -> np.ndarray:
    """The SETUPS code of rows with these signals, (rows, SUBSCORES) subscores and ultra-risky flags."""
    sig = np.asarray(signal).astype(str)
    sub = np.asarray(subscores, dtype=np.float64).reshape(len(sig), len(SUBSCORES))
    known = np.isfinite(sub)
    strongest = np.argmax(np.where(known, sub, -np.inf), axis=1)  # first of the largest
    is_long = np.isin(sig, list(LONG_SIGNALS))
    long_kind = np.where(known.any(axis=1), strongest, SETUPS.index("long"))
    short = np.char.find(sig, "Short") >= 0
    code = np.select(
        [np.asarray(ultra_risky, dtype=bool), is_long, sig == "Neutral", short],
        [SETUPS.index("ultra-risky"), long_kind, SETUPS.index("watch"), SETUPS.index("short")],
        SETUPS.index("avoid"),
    )
    return code.astype(np.int8)


def derive(
    percentile: np.ndarray,
    avg_dollar_volume: np.ndarray,
    atr_pct: np.ndarray,
    rsi_14: np.ndarray,
    last_close: np.ndarray,
    signal: np.ndarray,
    subscores: np.ndarray,
) -> Derived:
    """The derived scores of rows with these composite percentiles, dollar volumes, ATR %, RSI, last
    closes, signals and (rows, SUBSCORES) subscores."""
    pct = np.asarray(percentile, dtype=np.float64)
    adv = np.asarray(avg_dollar_volume, dtype=np.float64)
    atr = np.asarray(atr_pct, dtype=np.float64)
    rsi = np.asarray(rsi_14, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        has_adv = np.isfinite(adv) & (adv > 0)
        has_atr = np.isfinite(atr) & (atr > 0)
        liquidity = np.where(has_adv, 100.0 * np.clip((np.log10(adv) - 6.0) / 3.0, 0.0, 1.0), np.nan)
        stability = np.where(has_atr, 100.0 * np.clip(1.0 - (atr - 1.0) / 7.0, 0.0, 1.0), np.nan)
        known = has_adv & has_atr & np.isfinite(pct)
        ics = np.where(known, 0.4 * liquidity + 0.3 * stability + 0.3 * pct, np.nan)
        merit = np.where(known, 0.6 * pct + 0.25 * liquidity + 0.15 * stability, np.nan)
        tier = np.select([ics >= 75.0, ics >= 55.0], [0, 1], 2)
        band = np.select([merit >= 80.0, merit >= 65.0, merit >= 50.0], [0, 1, 2], 3)
        bits = (
            (adv < LOW_LIQUIDITY_USD).astype(np.uint8)
            | (atr > HIGH_VOLATILITY_ATR_PCT).astype(np.uint8) << 1
            | (rsi > OVERBOUGHT_RSI).astype(np.uint8) << 2
            | (rsi < OVERSOLD_RSI).astype(np.uint8) << 3
        )
        risk = np.select([atr < 2.0, atr < 4.0, atr < 7.0], [0, 1, 2], 3)
        close = np.asarray(last_close, dtype=np.float64)
        ultra = (
            (atr >= ULTRA_RISKY_ATR_PCT)
            | (adv < ULTRA_RISKY_DOLLAR_VOLUME)
            | ((close > 0.0) & (close < ULTRA_RISKY_PRICE))
        )
    return Derived(
        liquidity=liquidity,
        stability=stability,
        ics=ics,
        merit_score=merit,
        ics_tier=np.where(known, tier, -1).astype(np.int8),
        merit_band=np.where(known, band, -1).astype(np.int8),
        merit_flags=np.where(known, bits, 0).astype(np.uint8),
        risk_label=np.where(has_atr, risk, -1).astype(np.int8),
        ultra_risky=ultra.astype(np.uint8),
        setup=setups(signal, subscores, ultra),
    )
