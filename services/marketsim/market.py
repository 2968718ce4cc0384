"""The synthetic US equity market: deterministic from a seed and "today", generated vectorised, cached on disk.

Model (per ticker i, session t, log returns)::

    r[t, i] = beta_i * m[t] + gamma_i * s[t, division(i)] + sigma_i * e[t, i] + alpha[t, i]

* ``m``: the market factor, Student-t(4) shocks scaled by a slowly varying volatility regime
  (AR(1) in log volatility), about 1 % a day; SPY is an ETF with beta 1 and almost no idiosyncratic
  noise, so it tracks ``m``.
* ``s``: one factor per SIC division (sic.py), Student-t(4), about 0.8 % a day.
* ``e``: idiosyncratic Student-t(4) noise with unit variance; ``sigma_i`` falls with market cap
  (about 1 % a day for mega caps, 3-6 % for small caps, warrants and penny names).
* ``alpha``: the planted, weak, known predictable component (below).

**The planted signal.** After the close of session t the simulator computes, across all tickers,
``signal[t] = zscore(0.7 * z(mom) - 0.5 * z(rev))`` where ``mom`` is the 12-1 momentum
(log return from t-252 to t-21) and ``rev`` the 5-session log return, each divided by the ticker's
idiosyncratic volatility before the cross-sectional z-score. The next session's return then gets
``alpha[t+1, i] = PLANTED_STRENGTH * sigma_i * signal[t, i]``: medium-term momentum plus short-term
reversal. Its oracle information coefficient (mean per-date Spearman correlation of ``signal`` with
the forward 5-session return) is about 0.05; :meth:`Market.oracle_ic` measures it for any range.

**The universe.** ``n_tickers`` symbols ever listed, in the shares of ``_TYPE_SHARES``: common stocks
(a tail of them penny names), ADRs, ETFs (a third of them sector funds, plus SPY), warrants,
preferreds, units, rights and OTC names. About 5 % list during the window and 4 % delist, so
about 10,500 trade on a session (about 9,900 without OTC). Price level and dollar volume come
from one size factor per name, calibrated so that the scan's default prefilter (common stocks and
ADRs, close >= $5, 20-session average dollar volume >= $5M; :meth:`Market.prefilter`) keeps
5,000-6,000 and ETFs add about 500. SIC codes are real (sic.py). About 1.5 % of stocks and ETFs
split once (forward when the post-split price is >= $20, else reverse), about one session in fifty
has a duplicated grouped-daily row (``duplicates``), and a few sessions per name are missing.
Log prices are clipped to $0.01-$20,000.

Bars are stored **unadjusted** (as Polygon's ``adjusted=false``): for each split the bars before
its session are multiplied (prices) or divided (volumes) by ``split_to / split_from``.
:meth:`Market.adjusted` derives split-adjusted bars as seen on a given session. Prices are rounded
to cents (to 1/100 of a cent below $1), volumes to whole shares. ``NaN`` marks sessions in which a
ticker did not trade: before its listing, from its delisting on, and a few random missing sessions.

The arrays cover ``history_sessions`` XNYS sessions up to and including "today" plus
``future_sessions`` after it, which :meth:`Market.advance` reveals one by one (for incremental
scans). Generation is cached under ``TECHNIC_MARKETSIM_CACHE_DIR`` (default ``.cache/marketsim``)
as ``.npy`` files loaded memory-mapped (read-only: copy before writing), so a second start takes
milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import orjson
import pandas as pd
import structlog

from services.common.settings import PROJECT_ROOT
from services.marketsim.sic import DIVISIONS, SIC_CODES, SIC_DESCRIPTIONS, SIC_WEIGHTS, division_index

log = structlog.get_logger(__name__)

GENERATOR_VERSION = 4
PLANTED_STRENGTH = 0.045
STALE_DAYS = 3  # cached markets unused this long are deleted when another is generated
BURN_IN = 260  # unexposed sessions before the first one, so 12-1 momentum exists from the start
NY = "America/New_York"
BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap")
SPLIT_DTYPE = np.dtype(
    [("ticker_index", np.int64), ("session_index", np.int64), ("split_from", np.float64), ("split_to", np.float64)]
)

# Ticker families: (type, market, share of tickers). Prices and liquidity per family are in _FAMILY.
_TYPE_SHARES: tuple[tuple[str, str, float], ...] = (
    ("CS", "stocks", 0.610),
    ("ADRC", "stocks", 0.060),
    ("ETF", "stocks", 0.160),
    ("WARRANT", "stocks", 0.050),
    ("PFD", "stocks", 0.035),
    ("UNIT", "stocks", 0.010),
    ("RIGHT", "stocks", 0.010),
    ("CS", "otc", 0.045),
    ("ADRC", "otc", 0.020),
)
# family -> (median price, log-sd price, median daily dollar volume, log-sd dollar volume, idio vol scale)
_FAMILY: dict[str, tuple[float, float, float, float, float]] = {
    "CS": (30.0, 1.0, 2.5e7, 1.9, 1.0),
    "ADRC": (25.0, 0.9, 2.0e7, 1.7, 0.9),
    "ETF": (35.0, 0.6, 1.5e6, 2.2, 0.25),
    "WARRANT": (0.4, 1.0, 1.5e5, 1.5, 3.0),
    "PFD": (22.0, 0.25, 4.0e5, 1.0, 0.5),
    "UNIT": (10.3, 0.1, 1.0e5, 1.2, 0.3),
    "RIGHT": (0.15, 0.8, 5.0e4, 1.5, 3.5),
    "OTC": (0.8, 1.8, 6.0e4, 2.0, 2.0),
}
_NAME_WORDS = np.array(
    [
        "Apex",
        "Blue",
        "Cedar",
        "Delta",
        "Echo",
        "Frontier",
        "Granite",
        "Harbor",
        "Iron",
        "Juniper",
        "Keystone",
        "Liberty",
        "Meridian",
        "North",
        "Orion",
        "Pioneer",
        "Quantum",
        "Ridge",
        "Summit",
        "Titan",
        "Union",
        "Vertex",
        "West",
        "Xenon",
        "Yellowstone",
        "Zenith",
        "Atlas",
        "Beacon",
        "Crescent",
        "Dynamo",
    ]
)
_NAME_KINDS = np.array(
    [
        "Therapeutics",
        "Bancorp",
        "Energy",
        "Technologies",
        "Holdings",
        "Industries",
        "Systems",
        "Realty",
        "Pharmaceuticals",
        "Networks",
        "Resources",
        "Financial",
        "Brands",
        "Logistics",
        "Semiconductor",
    ]
)
_NAME_SUFFIXES = np.array(["Inc.", "Corp.", "Co.", "Ltd.", "Group Inc.", "plc"])


@dataclass(frozen=True)
class MarketConfig:
    """What determines a market: the same config (with today resolved) always gives the same bars."""

    seed: int = 7
    n_tickers: int = 11_000
    history_sessions: int = 800  # XNYS sessions up to and including `today`
    future_sessions: int = 10  # generated beyond today, revealed one by one by advance()
    today: dt.date | None = None  # None: the latest completed XNYS session (wall clock)


def default_cache_dir() -> Path:
    """``TECHNIC_MARKETSIM_CACHE_DIR`` or ``<project>/.cache/marketsim``."""
    env = os.environ.get("TECHNIC_MARKETSIM_CACHE_DIR")
    return Path(env) if env else PROJECT_ROOT / ".cache" / "marketsim"


@lru_cache(maxsize=1)
def xnys() -> xcals.ExchangeCalendar:
    """The XNYS calendar, wide enough for any simulated history (built once per process)."""
    end = (dt.date.today() + dt.timedelta(days=700)).isoformat()
    with warnings.catch_warnings():  # exchange_calendars still reads tz-aware Series.values
        warnings.filterwarnings("ignore", message="Series.values returning")
        return xcals.get_calendar("XNYS", start="2000-01-03", end=end)


def latest_completed_session(now: dt.datetime | None = None) -> dt.date:
    """The last XNYS session whose close is at or before ``now`` (UTC wall clock by default)."""
    cal = xnys()
    stamp = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    closes = cal.schedule["close"]
    return closes.index[closes.searchsorted(stamp, side="right") - 1].date()


def resolve_config(config: MarketConfig) -> MarketConfig:
    """The config with ``today`` set (to the latest completed session when it was None)."""
    if config.today is not None:
        return config
    return MarketConfig(
        config.seed, config.n_tickers, config.history_sessions, config.future_sessions, latest_completed_session()
    )


def session_axis(today: dt.date, history: int, future: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(sessions, start ms, end ms, today index): ``history`` XNYS sessions to ``today``, ``future`` after.

    ``today`` itself need not be a session: the last session on or before it counts as today.
    Start is 00:00 America/New_York (Polygon's per-ticker ``t``), end the close (grouped ``t``).
    """
    cal = xnys()
    all_sessions = cal.sessions
    last = int(all_sessions.searchsorted(pd.Timestamp(today), side="right")) - 1
    first = last - history + 1
    if first < 0 or last + future >= len(all_sessions):
        raise ValueError(f"the XNYS calendar cannot hold {history} sessions before {today} and {future} after")
    sessions = all_sessions[first : last + future + 1]
    closes = cal.schedule["close"].loc[sessions]
    end_ms = pd.DatetimeIndex(closes).as_unit("ms").asi8
    start_ms = pd.DatetimeIndex(sessions).tz_localize(NY).as_unit("ms").asi8
    return sessions.to_numpy().astype("datetime64[D]"), start_ms, end_ms, history - 1


def _letters(codes: np.ndarray, width: int) -> np.ndarray:
    """Base-26 integer codes -> upper-case strings of exactly ``width`` letters (vectorised)."""
    powers = 26 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = (np.asarray(codes, dtype=np.int64)[:, None] // powers % 26 + ord("A")).astype(np.uint8)
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(str)


def _tickers(rng: np.random.Generator, families: np.ndarray) -> np.ndarray:
    """Unique, Polygon-looking symbols per family: plain 3-4 letters, W/U/R suffixes, ``p`` preferreds, OTC F/Y."""
    n = len(families)
    out = np.empty(n, dtype=object)
    plain = np.isin(families, ["CS", "ADRC", "ETF"])
    spy_code = (ord("S") - 65) * 676 + (ord("P") - 65) * 26 + (ord("Y") - 65)
    space3, space4 = 26**3, 26**4
    codes = rng.choice(space3 + space4, size=int(plain.sum()) + 1, replace=False)
    codes = codes[codes != spy_code][: int(plain.sum())]
    short = codes < space3
    names = np.empty(len(codes), dtype=object)
    if short.any():
        names[short] = _letters(codes[short], 3)
    if (~short).any():
        names[~short] = _letters(codes[~short] - space3, 4)
    out[plain] = names
    roots = _letters(rng.choice(space4, size=n, replace=False), 4).astype(object)
    suffix = {"WARRANT": "W", "UNIT": "U", "RIGHT": "R"}
    for family, tail in suffix.items():
        sel = families == family
        out[sel] = roots[sel] + tail
    sel = families == "PFD"
    out[sel] = roots[sel] + "p" + _letters(rng.integers(0, 8, int(sel.sum())), 1).astype(object)
    sel = families == "OTC"
    out[sel] = roots[sel] + np.where(rng.random(int(sel.sum())) < 0.5, "F", "Y").astype(object)
    return out.astype(str)


def _student_t(rng: np.random.Generator, shape: tuple[int, ...], df: float = 4.0) -> np.ndarray:
    """Unit-variance Student-t draws (fat tails), float64."""
    return rng.standard_t(df, size=shape) / np.sqrt(df / (df - 2.0))


def _round_price(x: np.ndarray) -> np.ndarray:
    """Cents from $1 up, 1/100 cent below (Polygon's sub-dollar quotes); monotone, NaN kept."""
    return np.where(x >= 1.0, np.round(x, 2), np.round(x, 4))


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array (ties broken by position; the inputs are continuous)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    return ranks


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1.0)


def generate(config: MarketConfig) -> dict[str, np.ndarray]:
    """Build every array of the market (vectorised over tickers; one short loop over sessions)."""
    config = resolve_config(config)
    assert config.today is not None
    sessions, start_ms, end_ms, today_index = session_axis(
        config.today, config.history_sessions, config.future_sessions
    )
    n_sessions, n = len(sessions), config.n_tickers
    steps = BURN_IN + n_sessions
    rng = np.random.default_rng(
        [config.seed, config.today.toordinal(), n, config.history_sessions, config.future_sessions, GENERATOR_VERSION]
    )

    # --- reference data -------------------------------------------------------------------------
    shares = np.array([s for _, _, s in _TYPE_SHARES])
    counts = np.floor(shares / shares.sum() * n).astype(np.int64)
    counts[0] += n - counts.sum()
    kind = np.repeat(np.array([t for t, _, _ in _TYPE_SHARES]), counts)
    market = np.repeat(np.array([m for _, m, _ in _TYPE_SHARES]), counts)
    perm = rng.permutation(n)
    kind, market = kind[perm], market[perm]
    etfs = np.flatnonzero((kind == "ETF") & (market == "stocks"))
    spy = int(etfs[0]) if len(etfs) else 0
    kind[spy], market[spy] = "ETF", "stocks"
    family = np.where(market == "otc", "OTC", kind)

    tickers = _tickers(rng, family)
    tickers[spy] = "SPY"

    fam_params = np.array([_FAMILY[f] for f in family])
    med_price, sd_price, med_dv, sd_dv, vol_scale = fam_params.T
    z_size = rng.standard_normal(n)
    # Size drives both price level and liquidity (bigger names trade more and cost more).
    price0 = med_price * np.exp(sd_price * (0.6 * z_size + 0.8 * rng.standard_normal(n)))
    dollar_volume = med_dv * np.exp(sd_dv * (0.8 * z_size + 0.6 * rng.standard_normal(n)))
    turnover = 0.004 * np.exp(0.5 * rng.standard_normal(n))
    market_cap0 = dollar_volume / turnover
    sigma = np.clip(
        0.018 * (market_cap0 / 2e9) ** -0.12 * vol_scale * np.exp(0.25 * rng.standard_normal(n)), 0.004, 0.07
    )
    beta = np.clip(rng.normal(1.0, 0.35, n), 0.1, 2.5)
    operating = np.isin(kind, ["CS", "ADRC", "WARRANT", "PFD", "UNIT", "RIGHT"])
    sic_pick = rng.choice(len(SIC_CODES), size=n, p=SIC_WEIGHTS)
    sic_code = np.where(operating, SIC_CODES[sic_pick], 0)
    sic_description = np.where(operating, SIC_DESCRIPTIONS[sic_pick], "")
    division = np.where(operating, division_index(sic_code), rng.integers(0, len(DIVISIONS), n))
    gamma = np.where(operating, np.clip(rng.normal(1.0, 0.3, n), 0.2, 2.0), 0.0)
    # ETFs: about a third are sector funds, the rest broad; all with small tracking noise.
    etf = kind == "ETF"
    sector_etf = etf & (rng.random(n) < 0.35)
    gamma = np.where(sector_etf, 1.0, gamma)
    beta = np.where(etf, np.where(sector_etf, 1.0, np.clip(rng.normal(1.0, 0.15, n), 0.5, 1.5)), beta)
    sigma = np.where(etf, np.clip(0.003 * np.exp(0.5 * rng.standard_normal(n)), 0.001, 0.02), sigma)
    beta[spy], gamma[spy], sigma[spy] = 1.0, 0.0, 0.0004
    price0[spy], dollar_volume[spy] = 450.0, 3.0e10
    market_cap0[spy] = 5.0e11

    # listings (IPOs inside the window) and delistings; never SPY
    list_index = np.where(rng.random(n) < 0.05, rng.integers(1, n_sessions, n), 0)
    delist_index = np.where(rng.random(n) < 0.04, rng.integers(1, n_sessions, n), -1)
    delist_index = np.where((delist_index >= 0) & (delist_index < list_index + 30), -1, delist_index)
    list_index[spy], delist_index[spy] = 0, -1

    # --- returns, the planted signal, prices ---------------------------------------------------
    log_vol = np.zeros(steps)
    shocks = rng.standard_normal(steps) * 0.12
    for t in range(1, steps):  # AR(1) volatility regime of the market
        log_vol[t] = 0.97 * log_vol[t - 1] + shocks[t]
    market_ret = 0.0003 + 0.0095 * np.exp(log_vol - log_vol.std() ** 2 / 2) * _student_t(rng, (steps,))
    sector_ret = 0.008 * _student_t(rng, (steps, len(DIVISIONS)))
    base = beta * market_ret[:, None] + gamma * sector_ret[:, division]
    base += sigma * _student_t(rng, (steps, n))
    base -= 0.5 * sigma**2  # median-neutral drift for the idiosyncratic part

    log_price = np.empty((steps, n))
    signal = np.full((steps, n), np.nan)
    log_price[0] = np.log(price0)
    inv_sigma = 1.0 / np.maximum(sigma, 1e-4)
    alpha_scale = PLANTED_STRENGTH * sigma
    for t in range(1, steps):
        step = base[t]
        if t - 1 >= 252:
            step = step + alpha_scale * signal[t - 1]
        log_price[t] = log_price[t - 1] + step
        if t >= 252:
            mom = (log_price[t - 21] - log_price[t - 252]) * inv_sigma
            rev = (log_price[t] - log_price[t - 5]) * inv_sigma
            z = 0.7 * _zscore_rows(mom) - 0.5 * _zscore_rows(rev)
            signal[t] = np.clip(_zscore_rows(z), -4.0, 4.0)
    # Anchor each name's level: the simulated price at the first exposed session is price0.
    log_price += np.log(price0) - log_price[BURN_IN]
    log_price = np.clip(log_price, np.log(0.01), np.log(20_000.0))
    returns = np.diff(log_price, axis=0)[BURN_IN - 1 :]  # return into each exposed session
    log_price = log_price[BURN_IN:]
    signal = signal[BURN_IN:]
    del base

    close = np.exp(log_price)
    gap = 0.35 * returns + 0.25 * sigma * rng.standard_normal((n_sessions, n))
    open_ = close * np.exp(gap - returns)  # = previous close * exp(gap)
    reach = 0.6 * (sigma + 0.006) * np.abs(rng.standard_normal((2, n_sessions, n)))
    high = np.maximum(open_, close) * np.exp(reach[0])
    low = np.minimum(open_, close) * np.exp(-reach[1])
    del reach, gap
    activity = 1.0 + 12.0 * np.abs(returns - beta * market_ret[BURN_IN:, None])
    dv = dollar_volume * np.exp(0.35 * rng.standard_normal((n_sessions, n)) - 0.06) * activity / activity.mean(0)
    del activity, returns

    # --- splits (one at most per name; forward when the post-split price is high, else reverse) ----
    cand = np.flatnonzero(np.isin(kind, ["CS", "ADRC", "ETF"]) & (np.arange(n) != spy) & (rng.random(n) < 0.015))
    split_session = rng.integers(5, n_sessions, len(cand))
    ok = (split_session > list_index[cand] + 5) & ((delist_index[cand] < 0) | (split_session < delist_index[cand]))
    cand, split_session = cand[ok], split_session[ok]
    post = close[split_session, cand]
    forward = post >= 20.0
    split_from = np.where(forward, 1.0, rng.choice([5.0, 10.0, 20.0], len(cand)))
    split_to = np.where(forward, rng.choice([2.0, 3.0, 4.0, 5.0, 10.0], len(cand), p=[0.45, 0.2, 0.15, 0.1, 0.1]), 1.0)
    order = np.lexsort((cand, split_session))
    splits = np.zeros(len(cand), dtype=SPLIT_DTYPE)
    splits["ticker_index"], splits["session_index"] = cand[order], split_session[order]
    splits["split_from"], splits["split_to"] = split_from[order], split_to[order]
    factor = split_factors(n_sessions, n, splits, n_sessions - 1)

    # --- unadjusted, rounded bars; NaN where nothing traded --------------------------------------
    rows = np.arange(n_sessions)[:, None]
    trading = (rows >= list_index) & ((delist_index < 0) | (rows < delist_index))
    miss_p = np.where(np.isin(family, ["WARRANT", "RIGHT", "UNIT", "OTC"]), 0.03, 0.0012)
    miss_p[spy] = 0.0
    trading &= rng.random((n_sessions, n), dtype=np.float32) >= miss_p.astype(np.float32)
    bars: dict[str, np.ndarray] = {}
    for name, values in (("open", open_), ("high", high), ("low", low), ("close", close)):
        bars[name] = np.where(trading, _round_price(values * factor), np.nan)
    del open_, high, low
    volume = np.maximum(np.round(dv / close / factor), 100.0)
    bars["volume"] = np.where(trading, volume, np.nan)
    vwap = (bars["high"] + bars["low"] + 2.0 * bars["close"]) / 4.0
    bars["vwap"] = np.round(vwap, 4)
    trade_size = np.clip(120.0 * np.exp(0.5 * rng.standard_normal(n)), 20.0, 2000.0)
    trades = np.where(trading, np.maximum(np.round(bars["volume"] / trade_size), 1.0), np.nan)

    # a duplicated grouped-daily row on about one session in fifty (as Polygon sometimes sends)
    dup_pick = rng.integers(0, n, n_sessions)
    duplicates = np.where(rng.random(n_sessions) < 0.02, dup_pick, -1)

    shares_out = market_cap0 / price0  # split-adjusted (as of the last generated session)
    list_date = sessions[np.maximum(list_index, 0)].copy()
    old = list_index == 0
    list_date[old] = sessions[0] - rng.integers(30, 12_000, int(old.sum())).astype("timedelta64[D]")
    names = (
        _NAME_WORDS[rng.integers(0, len(_NAME_WORDS), n)].astype(object)
        + " "
        + _NAME_KINDS[rng.integers(0, len(_NAME_KINDS), n)].astype(object)
        + " "
        + _NAME_SUFFIXES[rng.integers(0, len(_NAME_SUFFIXES), n)].astype(object)
    )
    etf_names = (
        _NAME_WORDS[rng.integers(0, len(_NAME_WORDS), n)].astype(object)
        + " "
        + np.where(sector_etf, np.array([d for _, d in DIVISIONS])[division], "Total Market").astype(object)
        + " ETF"
    )
    names = np.where(etf, etf_names, names)
    names = np.where(kind == "WARRANT", names + " Warrants", names)
    names = np.where(kind == "UNIT", names + " Units", names)
    names = np.where(kind == "RIGHT", names + " Rights", names)
    names = np.where(kind == "PFD", names + " Preferred Series", names)
    names[spy] = "SPDR S&P 500 ETF Trust"
    exchange = np.where(
        market == "otc",
        "OTC",
        np.where(etf, np.where(rng.random(n) < 0.8, "ARCX", "XNAS"), np.where(rng.random(n) < 0.55, "XNAS", "XNYS")),
    )
    exchange[spy] = "ARCX"
    cik = np.char.zfill(rng.integers(1_000, 2_000_000, n).astype(str), 10)
    figi = np.char.add("BBG00", _letters(rng.choice(26**7, n, replace=False), 7))

    # Sort every per-ticker column by symbol so lookups are a binary search and listings are ordered.
    by_symbol = np.argsort(tickers, kind="stable")
    inverse = np.empty(n, dtype=np.int64)
    inverse[by_symbol] = np.arange(n)
    splits["ticker_index"] = inverse[splits["ticker_index"]]
    duplicates = np.where(duplicates >= 0, inverse[np.maximum(duplicates, 0)], -1)
    out: dict[str, np.ndarray] = {
        "sessions": sessions,
        "session_start_ms": start_ms,
        "session_end_ms": end_ms,
        "today_index": np.array([today_index]),
        "tickers": tickers[by_symbol],
        "splits": splits,
        "duplicates": duplicates,
        "signal": np.where(trading, signal, np.nan)[:, by_symbol],
        "trades": trades[:, by_symbol],
    }
    for name in BAR_FIELDS:
        out[name] = bars[name][:, by_symbol]
    ref = {
        "name": names.astype(str),
        "type": kind,
        "exchange": exchange,
        "market": market,
        "sic_code": sic_code.astype(np.int64),
        "sic_description": sic_description.astype(str),
        "shares_adjusted": shares_out,
        "list_index": list_index.astype(np.int64),
        "delist_index": delist_index.astype(np.int64),
        "list_date": list_date,
        "cik": cik,
        "composite_figi": figi,
        "division": division.astype(np.int64),
    }
    for name, values in ref.items():
        out[f"ref_{name}"] = np.asarray(values)[by_symbol]
    # C order: one session's row is contiguous, so a grouped-daily day reads a few pages, not all.
    return {name: np.ascontiguousarray(values) for name, values in out.items()}


def split_factors(n_sessions: int, n_tickers: int, splits: np.ndarray, as_of_index: int) -> np.ndarray:
    """(n_sessions, n_tickers) product of ``split_to / split_from`` over splits in (t, as_of_index].

    Dividing an unadjusted price by it gives the price adjusted for every split known at
    ``as_of_index``; multiplying a volume by it adjusts the volume.
    """
    events = np.ones((n_sessions, n_tickers))
    known = splits[splits["session_index"] <= as_of_index]
    np.multiply.at(events, (known["session_index"] - 1, known["ticker_index"]), known["split_to"] / known["split_from"])
    return np.flip(np.cumprod(np.flip(events, 0), axis=0), 0)


class Market:
    """The generated market: unadjusted bars, reference data, splits, the planted signal, and "today".

    Besides the shared interface (see the module docstring) it carries ``session_start_ms`` /
    ``session_end_ms`` (per-ticker and grouped ``t``), ``trades`` (Polygon's ``n``),
    ``duplicates`` (ticker index duplicated in a session's grouped answer, -1 for none) and
    ``ref`` extras: ``active`` and ``shares``/``market_cap`` as of today, ``list_date``, ``cik``,
    ``composite_figi``, ``division`` (the sector factor).
    """

    def __init__(self, config: MarketConfig, arrays: dict[str, np.ndarray]) -> None:
        self.config = config
        self.sessions: np.ndarray = arrays["sessions"]
        self.session_start_ms: np.ndarray = arrays["session_start_ms"]
        self.session_end_ms: np.ndarray = arrays["session_end_ms"]
        self.initial_today_index = int(arrays["today_index"][0])
        self.today_index = self.initial_today_index
        self.tickers: np.ndarray = arrays["tickers"]
        self.open: np.ndarray = arrays["open"]
        self.high: np.ndarray = arrays["high"]
        self.low: np.ndarray = arrays["low"]
        self.close: np.ndarray = arrays["close"]
        self.volume: np.ndarray = arrays["volume"]
        self.vwap: np.ndarray = arrays["vwap"]
        self.trades: np.ndarray = arrays["trades"]
        self.signal: np.ndarray = arrays["signal"]
        self.splits: np.ndarray = arrays["splits"]
        self.duplicates: np.ndarray = arrays["duplicates"]
        self.ref: dict[str, np.ndarray] = {k[4:]: v for k, v in arrays.items() if k.startswith("ref_")}
        self._refresh_ref()

    # -- time ------------------------------------------------------------------------------------
    @property
    def today(self) -> dt.date:
        return self.session_date(self.today_index)

    def session_date(self, index: int) -> dt.date:
        return self.sessions[index].astype(object)

    def session_index(self, day: dt.date) -> int | None:
        """Index of the session on ``day``, or None when ``day`` is not a generated session."""
        pos = int(np.searchsorted(self.sessions, np.datetime64(day, "D")))
        return pos if pos < len(self.sessions) and self.sessions[pos] == np.datetime64(day, "D") else None

    def advance(self, n: int = 1) -> None:
        """Reveal the next ``n`` generated sessions: "today" moves forward by ``n`` sessions."""
        if n < 0 or self.today_index + n >= len(self.sessions):
            raise ValueError(
                f"cannot advance {n} sessions: only {len(self.sessions) - 1 - self.today_index} "
                "future sessions were generated (raise future_sessions)"
            )
        self.today_index += n
        self._refresh_ref()

    def reset(self) -> None:
        """Back to the configured "today"."""
        self.today_index = self.initial_today_index
        self._refresh_ref()

    def _refresh_ref(self) -> None:
        """Columns that depend on "today": active, shares (split-adjusted as of today), market cap."""
        t = self.today_index
        listed = self.ref["list_index"] <= t
        self.ref["active"] = listed & ((self.ref["delist_index"] < 0) | (self.ref["delist_index"] > t))
        future = self.splits[self.splits["session_index"] > t]
        later = np.ones(len(self.tickers))
        np.multiply.at(later, future["ticker_index"], future["split_to"] / future["split_from"])
        self.ref["shares"] = np.round(self.ref["shares_adjusted"] / later)
        self.ref["market_cap"] = self.ref["shares"] * self.last_close(t)

    def last_close(self, as_of_index: int) -> np.ndarray:
        """Each ticker's latest unadjusted close on or before ``as_of_index`` (NaN if none)."""
        closes = self.close[: as_of_index + 1]
        seen = np.isfinite(closes)
        last = np.where(seen.any(0), as_of_index - np.argmax(seen[::-1], axis=0), 0)
        return np.where(seen.any(0), closes[last, np.arange(closes.shape[1])], np.nan)

    # -- data ------------------------------------------------------------------------------------
    def ticker_index(self, ticker: str) -> int | None:
        pos = int(np.searchsorted(self.tickers, ticker))
        return pos if pos < len(self.tickers) and self.tickers[pos] == ticker else None

    def split_factors(self, as_of_index: int) -> np.ndarray:
        """(as_of_index + 1, n_tickers) adjustment divisors for splits known at ``as_of_index``."""
        return split_factors(len(self.sessions), len(self.tickers), self.splits, as_of_index)[: as_of_index + 1]

    def adjusted(self, as_of_index: int) -> dict[str, np.ndarray]:
        """OHLCV (and vwap) for sessions 0..as_of_index, split-adjusted for the splits known then."""
        factor = self.split_factors(as_of_index)
        rows = slice(0, as_of_index + 1)
        out = {name: getattr(self, name)[rows] / factor for name in ("open", "high", "low", "close", "vwap")}
        out["volume"] = self.volume[rows] * factor
        return out

    def oracle_ic(self, start: dt.date, end: dt.date, horizon: int = 5, universe: np.ndarray | None = None) -> float:
        """Mean per-date Spearman IC of ``signal`` with the forward ``horizon``-session return.

        Dates are the sessions in [start, end] whose forward window ends on or before today;
        returns are split-adjusted as of today. ``universe`` optionally restricts the tickers
        (boolean mask). NaN when no date qualifies.
        """
        first = int(np.searchsorted(self.sessions, np.datetime64(start, "D")))
        last = min(
            int(np.searchsorted(self.sessions, np.datetime64(end, "D"), side="right")) - 1, self.today_index - horizon
        )
        if last < first:
            return float("nan")
        close = self.adjusted(self.today_index)["close"]
        columns = np.ones(len(self.tickers), dtype=bool) if universe is None else np.asarray(universe, dtype=bool)
        ics = []
        for t in range(first, last + 1):
            fwd = close[t + horizon, columns] / close[t, columns] - 1.0
            sig = self.signal[t, columns]
            ok = np.isfinite(fwd) & np.isfinite(sig)
            if ok.sum() < 20:
                continue
            ics.append(float(np.corrcoef(_rank(sig[ok]), _rank(fwd[ok]))[0, 1]))
        return float(np.mean(ics)) if ics else float("nan")

    def prefilter(
        self,
        as_of_index: int | None = None,
        min_price: float = 5.0,
        min_dollar_volume: float = 5e6,
        types: tuple[str, ...] = ("CS", "ADRC"),
    ) -> np.ndarray:
        """Boolean mask: listed-exchange ``types`` trading at ``as_of_index`` with close >= ``min_price``
        and 20-session average dollar volume >= ``min_dollar_volume`` (the scan's default prefilter)."""
        t = self.today_index if as_of_index is None else as_of_index
        window = slice(max(0, t - 19), t + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dollar = np.nanmean(self.close[window] * self.volume[window], axis=0)
        kind_ok = np.isin(self.ref["type"], types) & (self.ref["market"] == "stocks")
        close = self.close[t]
        return kind_ok & np.isfinite(close) & (close >= min_price) & (np.nan_to_num(dollar) >= min_dollar_volume)


def _cache_key(config: MarketConfig) -> str:
    payload = orjson.dumps({**asdict(config), "today": str(config.today), "version": GENERATOR_VERSION})
    return hashlib.sha256(payload).hexdigest()[:16]


def _save(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write each array as .npy into a fresh folder, then rename it into place (atomic for readers)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for name, values in arrays.items():
            np.save(tmp / f"{name}.npy", np.asarray(values), allow_pickle=False)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same market first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load(folder: Path) -> dict[str, np.ndarray]:
    """Memory-map every array (pages are read on first use, so start-up does not read 0.5 GB)."""
    return {
        path.stem: np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
        if path.stat().st_size > 1 << 20
        else np.load(path, allow_pickle=False)
        for path in sorted(folder.glob("*.npy"))
    }


def _prune_cache(root: Path, keep: Path) -> None:
    """Delete cached markets of other generator versions or unused for ``STALE_DAYS`` (0.5 GB each).

    A market for "the latest session" changes every day, so old ones would pile up. Processes still
    reading a deleted one keep their memory maps: unlinked files live until unmapped.
    """
    current = f"market-v{GENERATOR_VERSION}-"
    cutoff = time.time() - STALE_DAYS * 86_400
    for folder in root.glob("market-*"):
        if folder == keep or not folder.is_dir() or "." in folder.name:  # "." marks one being written
            continue
        used = folder / "last_used"
        if not folder.name.startswith(current) or (used.exists() and used.stat().st_mtime < cutoff):
            shutil.rmtree(folder, ignore_errors=True)


def load_market(config: MarketConfig | None = None, cache_dir: Path | None = None) -> Market:
    """The market for ``config``: from the disk cache when present, else generated and cached."""
    config = resolve_config(config or MarketConfig())
    root = cache_dir or default_cache_dir()
    folder = root / f"market-v{GENERATOR_VERSION}-{_cache_key(config)}"
    if not (folder / "close.npy").exists():
        _prune_cache(root, folder)
        log.info(
            "generating market",
            n_tickers=config.n_tickers,
            sessions=config.history_sessions,
            today=str(config.today),
            cache=str(folder),
        )
        _save(folder, generate(config))
    (folder / "last_used").touch()
    return Market(config, _load(folder))
