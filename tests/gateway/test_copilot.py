"""The copilot's grounded answers, written out in full, its routing of questions, and LLM phrasing."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
import structlog

from gateway import copilot
from technic.v1 import compute_pb2, scan_pb2

NAN = math.nan


def row(rank: int, symbol: str, **fields: object) -> scan_pb2.ScanRow:
    values: dict[str, object] = {
        "rank": rank,
        "symbol": symbol,
        "sector": "Energy",
        "signal": "Long",
        "tech_rating": 72.345,
        "alpha_score": 1.2345,
        "win_prob_10d": 0.6149,
        "percentile": 95.55,
        "composite_score": 0.9,
        "last_close": 1234.5678,
        "atr_pct": 2.345,
        "avg_dollar_volume": 45_678_901.0,
        "ics": 77.6,
        "risk_label": "Moderate",
        "plan": scan_pb2.TradePlan(entry=100.125, stop=95.5, target=110.75, reward_risk=2.25, side="long"),
    }
    values.update(fields)
    return scan_pb2.ScanRow(**values)  # type: ignore[arg-type]


def scan(*rows: scan_pb2.ScanRow, label: str = "uptrend / normal volatility") -> scan_pb2.ScanResult:
    return scan_pb2.ScanResult(
        as_of="2026-12-02",
        fingerprint="0123456789abcdef",
        total_rows=len(rows),
        rows=rows,
        regime=scan_pb2.MarketRegime(
            trend="uptrend" if label else "",
            volatility="normal" if label else "",
            label=label,
            benchmark_close=5123.456,
            benchmark_sma_200=4890.1,
        ),
    )


def explained(symbol: str) -> compute_pb2.SymbolExplanation:
    contributions = [
        compute_pb2.FeatureContribution(feature="rsi_14", label="RSI 14", contribution=0.0123),
        compute_pb2.FeatureContribution(feature="ret_21d", label="", contribution=-0.25),
        compute_pb2.FeatureContribution(feature="atr_14_pct", label="ATR %", contribution=0.1),
        compute_pb2.FeatureContribution(feature="obv", label="OBV", contribution=0.05),
    ]
    return compute_pb2.SymbolExplanation(
        symbol=symbol, models=[compute_pb2.ModelExplanation(model="alpha_5d", contributions=contributions)]
    )


AAA = row(
    1,
    "AAA",
    signal="Strong Long",
    subscores={"momentum": 90.0, "trend": 95.25, "volume": NAN},
    rationale="trend and momentum lead",
    explanation=[explained("AAA")],
)
BBB = row(2, "BBB", sector="Utilities", composite_score=0.95, tech_rating=65.0, atr_pct=NAN, ultra_risky=True)
CCC = row(3, "CCC", signal="Avoid", risk_label="", ics=NAN)
RESULT = scan(AAA, BBB, CCC)
ROWS = {r.symbol: r for r in RESULT.rows}
META = "Grounded in the 2026-12-02 scan (3 ranked names, fingerprint 0123456789ab); not investment advice."
WHY_AAA = (
    "AAA is ranked #1 with signal Strong Long: TechRating 72.3/100, AlphaScore 1.23, win probability over 10 "
    "days 61%, composite percentile 95.5. Subscores: trend 95.2, momentum 90.0. Largest model contributions: "
    "ret_21d -0.250, ATR % +0.100, OBV +0.050. Setup: trend and momentum lead."
)
PLAN_AAA = "Plan for AAA (long): entry 100.12, stop 95.50, target 110.75, reward/risk 2.2; last close 1,234.57."


def ask(question: str, result: scan_pb2.ScanResult = RESULT, symbol: str | None = None) -> str:
    tickers = copilot.mentioned_tickers(question, symbol)
    return copilot.answer(question, result, {t: ROWS[t] for t in tickers if t in ROWS}, tickers).body


def test_why_states_the_rating_subscores_contributions_and_setup() -> None:
    assert ask("why is AAA rated this way?") == WHY_AAA
    got = copilot.answer("why is AAA rated this way?", RESULT, {"AAA": AAA}, ["AAA"])
    assert got.meta == META and got.facts == tuple(got.facts) and " ".join(got.facts) == WHY_AAA


def test_a_symbol_alone_gets_the_why_and_the_plan() -> None:
    assert ask("AAA?") == f"{WHY_AAA} {PLAN_AAA}"
    assert ask("tell me about it", symbol=" aaa ") == f"{WHY_AAA} {PLAN_AAA}"


@pytest.mark.parametrize("word", ["plan", "entry", "stop", "target", "trade"])
def test_plan(word: str) -> None:
    assert ask(f"{word} for AAA") == PLAN_AAA


def test_plan_of_a_row_without_a_side_or_numbers() -> None:
    bare = scan_pb2.ScanRow(symbol="NEW", plan=scan_pb2.TradePlan(entry=NAN, stop=NAN, target=NAN, reward_risk=NAN))
    bare.last_close = NAN
    assert copilot.plan(bare) == [
        "Plan for NEW (long): entry n/a, stop n/a, target n/a, reward/risk n/a; last close n/a."
    ]


@pytest.mark.parametrize("word", ["risk", "volatile", "safe", "liquid"])
def test_risk(word: str) -> None:
    assert ask(f"is AAA {word}") == (
        "AAA risk: ATR(14) 2.35% of price (Moderate), average dollar volume $45.7M (institutional core score 78/100)."
    )
    # dollars to millions: 1,050,001 is $1.1M (a divisor one off would give 1.0)
    assert "average dollar volume $1.1M" in copilot.risk(row(1, "S", avg_dollar_volume=1_050_001.0))[0]


def test_risk_of_an_ultra_risky_name_and_of_unknown_numbers() -> None:
    assert ask("how risky is BBB") == (
        "BBB risk: ATR(14) n/a% of price (Moderate), average dollar volume $45.7M "
        "(institutional core score 78/100). It counts as ultra risky (very volatile, illiquid or very cheap)."
    )
    assert ask("how risky is CCC") == (
        "CCC risk: ATR(14) 2.35% of price (unknown), average dollar volume $45.7M (institutional core score n/a/100)."
    )


@pytest.mark.parametrize("question", ["compare AAA and BBB", "AAA vs BBB", "AAA versus BBB", "AAA or BBB?"])
def test_compare(question: str) -> None:
    assert ask(question) == (
        "AAA: rank #1, Strong Long, TechRating 72.3, AlphaScore 1.23, win probability 61%, ATR 2.35%, "
        "reward/risk 2.2 BBB: rank #2, Long, TechRating 65.0, AlphaScore 1.23, win probability 61%, ATR n/a%, "
        "reward/risk 2.2 BBB ranks higher in this scan."
    )


def test_compare_with_equal_scores_names_the_first() -> None:
    lines = copilot.compare(AAA, row(9, "ZZZ", composite_score=0.9))
    assert lines[-1] == "AAA ranks higher in this scan."


def test_two_names_without_a_comparison_word_explain_the_first() -> None:
    assert ask("why AAA and BBB") == WHY_AAA


@pytest.mark.parametrize("question", ["top ten please", "best of all", "what to buy", "any idea?", "today", "my picks"])
def test_top_ideas_lists_the_long_signals_in_rank_order(question: str) -> None:
    assert ask(question) == (
        "Top names in the whole scan (2026-12-02): "
        "1. AAA (Energy) Strong Long, TechRating 72.3, entry 100.12 stop 95.50 target 110.75 "
        "2. BBB (Utilities) Long, TechRating 65.0, entry 100.12 stop 95.50 target 110.75"
    )


def test_top_ideas_cap_and_fallback_to_any_signal() -> None:
    many = scan(*(row(i, f"S{i}") for i in range(1, 8)))
    listed = copilot.top_ideas(many, list(many.rows), "x")
    assert len(listed) == 1 + copilot.TOP_IDEAS and listed[-1].startswith("5. S5 ")
    avoid = [row(1, "AVD", signal="Avoid")]
    assert copilot.top_ideas(RESULT, avoid, "y")[1].startswith("1. AVD (Energy) Avoid")
    assert copilot.top_ideas(RESULT, [], "Materials") == ["No names in Materials of the scan of 2026-12-02."]


def test_best_names_of_a_sector() -> None:
    assert ask("best names in utilities") == (
        "Top names in Utilities (2026-12-02): 2. BBB (Utilities) Long, TechRating 65.0, "
        "entry 100.12 stop 95.50 target 110.75"
    )
    # "market" with a sector named is about the sector
    assert ask("energy market leaders").startswith("Top names in Energy (2026-12-02): 1. AAA (Energy)")


def test_market_regime() -> None:
    expected = (
        "Market regime on 2026-12-02: uptrend / normal volatility (trend uptrend, volatility normal); "
        "benchmark close 5,123.46 against its 200-day average 4,890.10."
    )
    assert ask("what is the market regime") == expected
    assert ask("how is the market") == expected
    assert ask("regime?", scan(AAA, label="")) == "The scan has no market regime (the benchmark was not available)."


def test_anything_else_gets_the_help_and_unknown_names_are_reported() -> None:
    assert ask("tell me a joke") == copilot.HELP
    assert ask("why is QQQQ rated so") == (
        f"{copilot.HELP} Not in the latest scan: QQQQ (filtered out, not ranked, or unknown)."
    )
    assert ask("plan for AAA and XYZ or QQQQ") == (
        f"{PLAN_AAA} Not in the latest scan: XYZ, QQQQ (filtered out, not ranked, or unknown)."
    )


def test_mentioned_tickers() -> None:
    assert copilot.mentioned_tickers("WHY is BRK.B AND AAPL IN THE US vs MSFT? AAPL") == ["BRK.B", "AAPL", "MSFT"]
    assert copilot.mentioned_tickers("and aapl", "msft") == ["MSFT"]
    assert copilot.mentioned_tickers("MSFT", "  ") == ["MSFT"]
    assert copilot.mentioned_tickers("compare MSFT", "MSFT") == ["MSFT"]
    assert copilot.mentioned_tickers("TOOLONGX and ABCDEF1") == []
    for word in ("I", "A", "ATR", "RSI", "ETF", "SMA", "EMA", "MACD", "AI", "WHAT", "HOW", "ME", "MY", "ON", "TO"):
        assert copilot.mentioned_tickers(f"{word} X1") == ["X1"], word


def test_mentioned_sector_prefers_the_longest_alias_and_whole_words() -> None:
    assert copilot.mentioned_sector("best in info tech") == "Information Technology"
    assert copilot.mentioned_sector("Health Care names") == "Health Care"
    assert copilot.mentioned_sector("technical names") is None
    # two sectors named: the longer alias wins (not the later one in the alphabet, not the shorter one)
    assert copilot.mentioned_sector("utilities or information technology") == "Information Technology"
    assert copilot.mentioned_sector("nothing here") is None


def test_number_formats() -> None:
    assert copilot._f(1234.5678) == "1,234.57" and copilot._f(2.25, 1) == "2.2" and copilot._f(NAN) == "n/a"
    assert copilot._f(math.inf) == "n/a" and copilot._pct(0.615) == "62%" and copilot._pct(NAN) == "n/a"


class Recorder(httpx.AsyncBaseTransport):
    """An httpx transport answering with a fixed response and keeping the request."""

    def __init__(self, response: httpx.Response | Exception) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


GROUNDED = copilot.Answer(body="b", meta="m", facts=("fact one", "fact two"))


def phrase(transport: Recorder, url: str = "http://llm.local/v1/", model: str = "tiny", key: str = "k") -> str | None:
    return asyncio.run(copilot.phrase("why?", GROUNDED, url, model, key, 3.0, transport=transport))


def test_phrase_sends_the_facts_and_returns_the_text() -> None:
    transport = Recorder(httpx.Response(200, json={"choices": [{"message": {"content": "  Reworded.  "}}]}))
    assert phrase(transport) == "Reworded."
    (request,) = transport.requests
    assert str(request.url) == "http://llm.local/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer k"
    sent = httpx.Response(200, content=request.content).json()
    assert sent["model"] == "tiny" and sent["temperature"] == 0.2
    assert sent["messages"][1] == {"role": "user", "content": "Question: why?\nFacts:\n- fact one\n- fact two"}
    assert sent["messages"][0] == {
        "role": "system",
        "content": "You are the Technic scanner's assistant. Answer the question in a few sentences using only "
        "the facts given; keep every number exactly as written; add no other figures. Not investment advice.",
    }
    assert request.extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    phrase(transport, key="")
    assert "Authorization" not in transport.requests[-1].headers
    phrase(transport, url="http://llm.local/PREFIX/")
    assert str(transport.requests[-1].url) == "http://llm.local/PREFIX/chat/completions"


@pytest.mark.parametrize(
    ("response", "logged"),
    [
        (httpx.Response(500, json={"error": "down"}), "HTTPStatusError"),
        (httpx.Response(200, json={"choices": []}), "IndexError"),
        (httpx.Response(200, json={"nothing": 1}), "KeyError"),
        (httpx.Response(200, content=b"not json"), "JSONDecodeError"),
        (httpx.Response(200, json={"choices": [{"message": {"content": "   "}}]}), None),
        (httpx.Response(200, json={"choices": [{"message": {"content": 7}}]}), None),
        (httpx.ConnectError("refused"), "ConnectError"),
    ],
)
def test_phrase_failures_keep_the_grounded_answer(response: httpx.Response | Exception, logged: str | None) -> None:
    with structlog.testing.capture_logs() as logs:
        assert phrase(Recorder(response)) is None
    expected = [] if logged is None else [("copilot LLM phrasing failed; grounded answer kept", "warning", logged)]
    assert [(e["event"], e["log_level"], e.get("error")) for e in logs] == expected


def test_no_llm_configured_means_no_call() -> None:
    transport = Recorder(httpx.Response(200, json={"choices": [{"message": {"content": "x"}}]}))
    assert phrase(transport, url="") is None and phrase(transport, model="") is None
    assert transport.requests == []
