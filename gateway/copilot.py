"""The copilot: answers to the app's questions from the cluster's own data, with optional LLM phrasing.

:func:`answer` is a pure function of a question, the scan it is about (a ScanResult) and the rows of
the symbols it names: it picks what is asked (why a name is rated so, its plan, its risk, the top
ideas, the best names of a sector, a comparison, the market regime) and states the scan's numbers.
Anything else gets the list of what it can answer. :func:`phrase` may reword a grounded answer
through an OpenAI-compatible chat API; it is always given the facts and any failure keeps the
grounded text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
import structlog

from services.contract.columns import LONG_SIGNALS
from services.contract.vocabulary import SECTOR_ALIASES
from technic.v1 import scan_pb2

log = structlog.get_logger(__name__)
TOP_IDEAS = 5
SECTOR_NAMES_SHOWN = 5
# Upper-case words that are not tickers when they appear in a question.
NOT_TICKERS = frozenset(
    {
        "I",
        "A",
        "AND",
        "OR",
        "VS",
        "THE",
        "ATR",
        "RSI",
        "ETF",
        "ETFS",
        "SMA",
        "EMA",
        "MACD",
        "IS",
        "IT",
        "OF",
        "TO",
        "US",
        "USA",
        "AI",
        "WHY",
        "WHAT",
        "HOW",
        "ME",
        "MY",
        "IN",
        "ON",
    }
)
TICKER_WORD = re.compile(r"\b[A-Z][A-Z0-9.]{0,5}\b")
HELP = (
    "I answer from today's scan. Ask me: why is AAPL rated this way; what is the plan for AAPL; "
    "how risky is AAPL; top ideas today; best names in Energy; compare AAPL and MSFT; "
    "what is the market regime."
)


@dataclass(frozen=True)
class Answer:
    """A grounded answer: the text, a one-line source note, and the facts it rests on."""

    body: str
    meta: str
    facts: tuple[str, ...]


def mentioned_tickers(question: str, symbol: str | None = None) -> list[str]:
    """Tickers the question names: the explicit symbol first, then upper-case words in order."""
    found = [symbol.strip().upper()] if symbol and symbol.strip() else []
    for word in TICKER_WORD.findall(question):
        if word not in NOT_TICKERS and word not in found:
            found.append(word)
    return found


def mentioned_sector(question: str) -> str | None:
    """The GICS sector the question names (its longest matching alias), or None."""
    text = question.lower()
    for alias in sorted(SECTOR_ALIASES, key=len, reverse=True):
        if re.search(rf"\b{re.escape(alias)}\b", text):
            return SECTOR_ALIASES[alias]
    return None


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if math.isfinite(value) else "n/a"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f}%" if math.isfinite(fraction) else "n/a"


def why(row: scan_pb2.ScanRow) -> list[str]:
    """The rating and what drives it: subscores, then the models' largest feature contributions."""
    lines = [
        f"{row.symbol} is ranked #{row.rank} with signal {row.signal}: TechRating {_f(row.tech_rating, 1)}/100, "
        f"AlphaScore {_f(row.alpha_score)}, win probability over 10 days {_pct(row.win_prob_10d)}, "
        f"composite percentile {_f(row.percentile, 1)}."
    ]
    scores = sorted(((k, v) for k, v in row.subscores.items() if math.isfinite(v)), key=lambda kv: -kv[1])
    if scores:
        lines.append("Subscores: " + ", ".join(f"{k} {_f(v, 1)}" for k, v in scores) + ".")
    contributions = [c for e in row.explanation for m in e.models for c in m.contributions]
    if contributions:
        top = sorted(contributions, key=lambda c: -abs(c.contribution))[:3]
        lines.append(
            "Largest model contributions: "
            + ", ".join(f"{c.label or c.feature} {c.contribution:+.3f}" for c in top)
            + "."
        )
    if row.rationale:
        lines.append(f"Setup: {row.rationale}.")
    return lines


def plan(row: scan_pb2.ScanRow) -> list[str]:
    p = row.plan
    side = p.side or "long"
    return [
        f"Plan for {row.symbol} ({side}): entry {_f(p.entry)}, stop {_f(p.stop)}, target {_f(p.target)}, "
        f"reward/risk {_f(p.reward_risk, 1)}; last close {_f(row.last_close)}."
    ]


def risk(row: scan_pb2.ScanRow) -> list[str]:
    label = row.risk_label or "unknown"
    line = (
        f"{row.symbol} risk: ATR(14) {_f(row.atr_pct)}% of price ({label}), average dollar volume "
        f"${_f(row.avg_dollar_volume / 1e6, 1)}M (institutional core score {_f(row.ics, 0)}/100)."
    )
    if row.ultra_risky:
        line += " It counts as ultra risky (very volatile, illiquid or very cheap)."
    return [line]


def top_ideas(result: scan_pb2.ScanResult, rows: Sequence[scan_pb2.ScanRow], what: str) -> list[str]:
    longs = [r for r in rows if r.signal in LONG_SIGNALS][:TOP_IDEAS] or list(rows[:TOP_IDEAS])
    if not longs:
        return [f"No names in {what} of the scan of {result.as_of}."]
    return [f"Top names in {what} ({result.as_of}):"] + [
        f"{r.rank}. {r.symbol} ({r.sector}) {r.signal}, TechRating {_f(r.tech_rating, 1)}, "
        f"entry {_f(r.plan.entry)} stop {_f(r.plan.stop)} target {_f(r.plan.target)}"
        for r in longs
    ]


def regime_lines(result: scan_pb2.ScanResult) -> list[str]:
    r = result.regime
    if not r.label:
        return ["The scan has no market regime (the benchmark was not available)."]
    return [
        f"Market regime on {result.as_of}: {r.label} (trend {r.trend}, volatility {r.volatility}); benchmark "
        f"close {_f(r.benchmark_close)} against its 200-day average {_f(r.benchmark_sma_200)}."
    ]


def compare(a: scan_pb2.ScanRow, b: scan_pb2.ScanRow) -> list[str]:
    better = a if a.composite_score >= b.composite_score else b
    lines = [
        f"{r.symbol}: rank #{r.rank}, {r.signal}, TechRating {_f(r.tech_rating, 1)}, AlphaScore "
        f"{_f(r.alpha_score)}, win probability {_pct(r.win_prob_10d)}, ATR {_f(r.atr_pct)}%, "
        f"reward/risk {_f(r.plan.reward_risk, 1)}"
        for r in (a, b)
    ]
    return [*lines, f"{better.symbol} ranks higher in this scan."]


def answer(
    question: str, result: scan_pb2.ScanResult, rows: Mapping[str, scan_pb2.ScanRow], tickers: Sequence[str]
) -> Answer:
    """The grounded answer to ``question`` over ``result``; ``rows`` holds the named tickers' rows."""
    q = question.lower()
    known = [t for t in tickers if t in rows]
    missing = [t for t in tickers if t not in rows]
    ranked = sorted(result.rows, key=lambda r: r.rank)
    sector = mentioned_sector(question)
    lines: list[str]
    if len(known) >= 2 and ("compare" in q or " vs" in q or "versus" in q or " or " in q):
        lines = compare(rows[known[0]], rows[known[1]])
    elif known and any(w in q for w in ("plan", "entry", "stop", "target", "trade")):
        lines = plan(rows[known[0]])
    elif known and any(w in q for w in ("risk", "volatil", "safe", "liquid")):
        lines = risk(rows[known[0]])
    elif known:
        lines = why(rows[known[0]]) + (plan(rows[known[0]]) if "why" not in q else [])
    elif "regime" in q or ("market" in q and not sector):
        lines = regime_lines(result)
    elif sector:
        lines = top_ideas(result, [r for r in ranked if r.sector == sector], sector)
    elif any(w in q for w in ("top", "best", "idea", "today", "buy", "pick")):
        lines = top_ideas(result, ranked, "the whole scan")
    else:
        lines = [HELP]
    if missing:
        lines.append(f"Not in the latest scan: {', '.join(missing)} (filtered out, not ranked, or unknown).")
    meta = (
        f"Grounded in the {result.as_of} scan ({result.total_rows} ranked names, "
        f"fingerprint {result.fingerprint[:12]}); not investment advice."
    )
    return Answer(body=" ".join(lines), meta=meta, facts=tuple(lines))


async def phrase(
    question: str,
    grounded: Answer,
    url: str,
    model: str,
    api_key: str,
    seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str | None:
    """The grounded answer reworded by an OpenAI-compatible chat API, or None on any failure."""
    if not url or not model:
        return None
    messages = [
        {
            "role": "system",
            "content": "You are the Technic scanner's assistant. Answer the question in a few "
            "sentences using only the facts given; keep every number exactly as written; add no other figures. "
            "Not investment advice.",
        },
        {"role": "user", "content": f"Question: {question}\nFacts:\n" + "\n".join(f"- {f}" for f in grounded.facts)},
    ]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=seconds, transport=transport) as client:
            response = await client.post(
                f"{url.rstrip('/')}/chat/completions",
                headers=headers,
                json={"model": model, "messages": messages, "temperature": 0.2},
            )
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("copilot LLM phrasing failed; grounded answer kept", error=type(exc).__name__)
        return None
    return text.strip() if isinstance(text, str) and text.strip() else None
