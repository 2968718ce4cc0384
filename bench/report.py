"""The suite's report: the performance budget table, the text table, JSON and PNG charts.

Everything here is a pure function of the figures the suite measured (a plain dict), so the table
and the charts can be rebuilt, and tested, without a cluster. Figures are seconds unless a name says
otherwise (``_mb``, ``_per_s``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

GB = 1024.0
MANIFESTS = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "base"


@dataclass(frozen=True)
class Budget:
    """One line of the performance budget: where its figure lives in the measured dict, and its target."""

    key: str
    label: str
    target: float
    unit: str  # "s", "scans/s" or "MB"
    higher_is_better: bool = False


BUDGETS: tuple[Budget, ...] = (
    Budget("cold", "cold full scan", 3.0, "s"),
    Budget("first_start", "first start", 10.0, "s"),
    Budget("warm", "warm full scan", 0.150, "s"),
    Budget("repeated", "repeated scan p50", 0.003, "s"),
    Budget("repeated_rate", "repeated scans/s, 50 clients", 3000.0, "scans/s", higher_is_better=True),
    Budget("incremental", "incremental (one new session)", 0.400, "s"),
    Budget("compute", "compute 6,000 x 260, one replica", 0.060, "s"),
    Budget("memory", "cluster resident memory, full scan", 2.5 * GB, "MB"),
)


@dataclass(frozen=True)
class Row:
    """One line of the budget table as reported."""

    key: str
    label: str
    value: float | None
    target: float
    unit: str
    passed: bool | None
    baseline: float | None
    ratio: float | None
    runs: int
    low: float | None
    high: float | None


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """Median, min and max of repeated runs (the form every repeated figure is stored in)."""
    if not values:
        raise ValueError("no runs to summarise")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def baseline_for(key: str, figures: dict[str, Any]) -> float | None:
    """The old design's figure for a budget line, in the line's unit, or None where it has none.

    The old design had no cache, so every scan (cold, warm, repeated, incremental) costs it the same:
    its seconds per symbol times the symbols the cluster scanned. Its rate is one over that. Its
    compute part is indicators plus one model call per row, per symbol, times 6,000. Its memory was
    measured on a sample only and is not comparable to a whole universe, so that line has no ratio.
    """
    base = figures.get("baseline")
    if not base:
        return None
    symbols = figures.get("symbols_scanned") or 0
    per_symbol = base["seconds_per_symbol"]
    if key in ("cold", "first_start", "warm", "repeated", "incremental"):
        return per_symbol * symbols if symbols else None
    if key == "repeated_rate":
        return 1.0 / (per_symbol * symbols) if symbols else None
    if key == "compute":
        stages = base["stages_per_symbol"]
        return (stages["indicators"] + stages["features"] + stages["models"]) * 6000
    return None


def _value(entry: Any) -> tuple[float | None, int, float | None, float | None]:
    if entry is None:
        return None, 0, None, None
    if isinstance(entry, dict):
        return float(entry["median"]), int(entry.get("runs", 1)), entry.get("min"), entry.get("max")
    return float(entry), 1, None, None


def budget_table(figures: dict[str, Any]) -> list[Row]:
    """Every budget line with its measured value, target, pass/fail and ratio to the baseline.

    A line whose figure is missing is kept, with value and verdict None, so a report always shows
    all eight lines. The ratio is always "how many times better than the old design" (> 1 is better).
    """
    rows = []
    for b in BUDGETS:
        value, runs, low, high = _value(figures.get(b.key))
        baseline = baseline_for(b.key, figures)
        passed = None if value is None else (value >= b.target if b.higher_is_better else value <= b.target)
        ratio = None
        if value is not None and baseline is not None and value > 0:
            ratio = value / baseline if b.higher_is_better else baseline / value
        rows.append(Row(b.key, b.label, value, b.target, b.unit, passed, baseline, ratio, runs, low, high))
    return rows


@dataclass(frozen=True)
class HttpLine:
    """One line of the app's HTTP path: its figure and the gRPC figure measured beside it in the same
    run (both in ``figures["http"]``), and its target, if it is a budget line."""

    key: str
    reference: str
    label: str
    unit: str  # "s", "answers/s" or "bytes"
    target: float | None = None
    higher_is_better: bool = False


HTTP_LINES: tuple[HttpLine, ...] = (
    HttpLine("scan_p50", "getscan_p50", "cached POST /v1/scan p50, 1 client", "s", 0.003),
    HttpLine("scan_gzip_p50", "getscan_p50", "cached POST /v1/scan p50, 1 client, gzip", "s", 0.003),
    HttpLine(
        "scan_rate",
        "getscan_rate",
        "cached POST /v1/scan, 50 clients, one gateway process",
        "answers/s",
        1000.0,
        higher_is_better=True,
    ),
    HttpLine(
        "scan_gzip_rate",
        "getscan_rate",
        "cached POST /v1/scan, 50 clients, one gateway process, gzip",
        "answers/s",
        1000.0,
        higher_is_better=True,
    ),
    HttpLine("scan_bytes", "getscan_bytes", "cached POST /v1/scan body on the wire", "bytes"),
    HttpLine("scan_gzip_bytes", "getscan_bytes", "cached POST /v1/scan body on the wire, gzip", "bytes"),
    HttpLine("symbol_p50", "getsymbol_p50", "cached GET /v1/symbol/{t} p50, 1 client", "s", 0.003),
    HttpLine(
        "scan_rate_two",
        "scan_rate",
        "cached POST /v1/scan, 50 clients, two gateway processes",
        "answers/s",
        higher_is_better=True,
    ),
)
REFERENCE_NAMES = {
    "getscan_p50": "GetScan p50",
    "getscan_rate": "GetScan, 50 clients",
    "getscan_bytes": "GetScan message",
    "getsymbol_p50": "GetSymbol p50",
    "scan_rate": "one gateway process",
}


@dataclass(frozen=True)
class HttpRow:
    """One line of the HTTP table as reported: ``ratio`` is the HTTP figure over the reference."""

    key: str
    label: str
    value: float | None
    unit: str
    target: float | None
    passed: bool | None
    reference_name: str
    reference: float | None
    ratio: float | None


def http_table(figures: dict[str, Any]) -> list[HttpRow]:
    """Every line of the app's HTTP path with its gRPC reference and, for budget lines, the verdict.

    A line whose figure is missing is kept with value and verdict None; the ratio needs both figures.
    """
    measured = figures.get("http") or {}
    rows = []
    for line in HTTP_LINES:
        value = measured.get(line.key)
        reference = measured.get(line.reference)
        passed = None
        if value is not None and line.target is not None:
            passed = value >= line.target if line.higher_is_better else value <= line.target
        ratio = value / reference if value is not None and reference else None
        rows.append(
            HttpRow(
                line.key,
                line.label,
                value,
                line.unit,
                line.target,
                passed,
                REFERENCE_NAMES[line.reference],
                reference,
                ratio,
            )
        )
    return rows


def format_http_table(rows: Sequence[HttpRow]) -> str:
    """The HTTP lines as Markdown, each beside its gRPC reference and the ratio of the two."""
    lines = [
        "| the app's HTTP path | measured | target | result | gRPC reference (same run) | HTTP / reference |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        op = ">=" if r.unit == "answers/s" else "<="
        target = "-" if r.target is None else f"{op} {_fmt(r.target, r.unit)}"
        reference = "-" if r.reference is None else f"{r.reference_name} {_fmt(r.reference, r.unit)}"
        ratio = "-" if r.ratio is None else f"{r.ratio:,.2f}x"
        lines.append(
            f"| {r.label} | {_fmt(r.value, r.unit)} | {target} | {_verdict(r.passed)} | {reference} | {ratio} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "bytes":
        return f"{value:,.0f} B"
    return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.3g} {unit}"


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else ("pass" if passed else "FAIL")


def format_table(rows: Sequence[Row]) -> str:
    """The budget table as Markdown (it goes to the terminal and into README's Performance section)."""
    lines = [
        "| budget line | measured (median) | min / max (runs) | target | result | old design | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        op = ">=" if r.unit == "scans/s" else "<="
        spread_text = (
            f"{_fmt(r.low, r.unit)} / {_fmt(r.high, r.unit)} ({r.runs})"
            if r.low is not None and r.high is not None
            else f"({r.runs})"
            if r.runs
            else "-"
        )
        base = "-" if r.baseline is None else _fmt(r.baseline, r.unit)
        ratio = "-" if r.ratio is None else f"{r.ratio:,.1f}x"
        lines.append(
            f"| {r.label} | {_fmt(r.value, r.unit)} | {spread_text} | {op} {_fmt(r.target, r.unit)} | "
            f"{_verdict(r.passed)} | {base} | {ratio} |"
        )
    return "\n".join(lines)


def per_symbol_line(figures: dict[str, Any]) -> str:
    """Cluster seconds per symbol (cold scan) beside the old design's, and the ratio."""
    base = figures.get("baseline")
    cold, _, _, _ = _value(figures.get("cold"))
    symbols = figures.get("symbols_scanned") or 0
    if not base or cold is None or not symbols:
        return "seconds per symbol: not measured"
    cluster = cold / symbols
    old = base["seconds_per_symbol"]
    return (
        f"seconds per symbol: cluster {cluster * 1000:.3f} ms (cold scan / {symbols:,} symbols), "
        f"old design {old * 1000:.1f} ms (measured on {base['symbols']} symbols), ratio {old / cluster:,.0f}x"
    )


def component_lines(figures: dict[str, Any]) -> list[str]:
    """The component figures (fetcher, ranker, simulator), each beside its own reference."""
    lines = []
    for name, entry in sorted((figures.get("components") or {}).items()):
        if "error" in entry:
            lines.append(f"{name}: not measured ({entry['error']})")
            continue
        for label, item in entry.items():
            if not isinstance(item, dict) or "seconds" not in item:
                continue
            ref = item.get("reference")
            text = f"{name} {label}: {item['seconds'] * 1000:.2f} ms"
            if ref:
                text += (
                    f"   {item.get('reference_name', 'reference')} {ref * 1000:.1f} ms"
                    f"   ratio {ref / item['seconds']:,.1f}x"
                )
            lines.append(text)
    return lines


def manifest_limits_mb(base: Path = MANIFESTS) -> dict[str, tuple[float, int]]:
    """Memory limit (MB) and replica count of every container in the Kubernetes base."""
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    limits: dict[str, tuple[float, int]] = {}
    for path in sorted(base.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                quantity = str(container["resources"]["limits"]["memory"])
                number, unit = quantity.rstrip("KMGi"), quantity[len(quantity.rstrip("KMGi")) :]
                limits[container["name"]] = (float(number) * units[unit], int(doc["spec"].get("replicas", 1)))
    return limits


def memory_lines(figures: dict[str, Any], limits: dict[str, tuple[float, int]] | None = None) -> list[str]:
    """Each process's peak resident memory beside its manifest limit, and the deployed cluster's sum
    (the simulator is not deployed; compute counted at the manifests' replica count)."""
    peaks = (figures.get("memory_detail") or {}).get("process_peak_mb") or {}
    if not peaks:
        return []
    limits = manifest_limits_mb() if limits is None else limits
    lines, deployed = [], 0.0
    by_service: dict[str, float] = {}
    for process, peak in sorted(peaks.items()):
        service = process.split("-", 1)[0] if process.startswith(("compute", "gateway")) else process
        by_service[service] = max(by_service.get(service, 0.0), peak)
        if service not in limits:
            lines.append(f"memory {process}: {peak:,.0f} MB (not deployed)")
            continue
        limit = limits[service][0]
        lines.append(
            f"memory {process}: {peak:,.0f} MB of a {limit:,.0f} MB limit   "
            f"{'fits' if peak <= limit else 'OVER THE LIMIT'}"
        )
    for service, peak in by_service.items():
        if service in limits:
            deployed += peak * limits[service][1]
    lines.append(
        f"memory deployed cluster (manifest replica counts, no simulator): {deployed:,.0f} MB   "
        f"budget {2.5 * GB:,.0f} MB   {'fits' if deployed <= 2.5 * GB else 'OVER BUDGET'}"
    )
    return lines


def format_text(figures: dict[str, Any]) -> str:
    """The whole report as text: environment, budget table, per-symbol line, components, ghz."""
    env = figures.get("environment", {})
    tickers = f"{env['tickers']:,}" if "tickers" in env else "?"
    head = [
        f"Technic benchmark, {env.get('started', '')}: {env.get('cpus', '?')} CPUs, load average "
        f"{env.get('load_before', '?')} before and {env.get('load_after', '?')} after; "
        f"{figures.get('symbols_scanned', 0):,} symbols scanned of {tickers} tickers, "
        f"{env.get('latency_ms', '?')} ms per simulator request",
        "",
    ]
    out = [*head, format_table(budget_table(figures)), "", per_symbol_line(figures), *stage_lines(figures)]
    if figures.get("first_start_error"):
        out.append(f"first start failed ({figures['first_start_error']}); the scan was asked again")
    comps = component_lines(figures)
    if comps:
        out += ["", *comps]
    memory = memory_lines(figures)
    if memory:
        out += ["", *memory]
    if figures.get("http"):
        load = figures["http"].get("load")
        out += ["", format_http_table(http_table(figures))]
        if load:
            out.append(f"HTTP and gRPC lines measured at load average {load}")
    if figures.get("ghz_summary"):
        out += ["", "ghz " + figures.get("ghz_command", ""), figures["ghz_summary"]]
    return "\n".join(out)


def write_json(figures: dict[str, Any], folder: Path) -> Path:
    path = folder / "report.json"
    table = [asdict(r) for r in budget_table(figures)]
    http = [asdict(r) for r in http_table(figures)]
    path.write_bytes(
        orjson.dumps(
            {"budgets": table, "http": http, "figures": figures},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    return path


SCAN_KINDS = ("first_start", "cold", "warm", "incremental")


def stage_matrix(figures: dict[str, Any]) -> tuple[list[str], list[str], list[list[float]]]:
    """(scan kinds, stages, seconds[stage][kind]): the median stage seconds of each kind of scan measured.

    Stages overlap (the compute replicas' own phases run inside ``compute``, and ``total`` spans them
    all), so they are drawn side by side rather than stacked.
    """
    kinds = [k for k in SCAN_KINDS if isinstance(figures.get(k), dict) and figures[k].get("stages")]
    stages = sorted({s for k in kinds for s in figures[k]["stages"]})
    return kinds, stages, [[float(figures[k]["stages"].get(s, 0.0)) for k in kinds] for s in stages]


def stage_lines(figures: dict[str, Any]) -> list[str]:
    """One line per scan kind: its median stage seconds in milliseconds (stages overlap, see stage_matrix)."""
    kinds, stages, values = stage_matrix(figures)
    return [
        f"stages of the {kind.replace('_', ' ')} scan (ms): "
        + ", ".join(f"{stage} {values[i][j] * 1000:.0f}" for i, stage in enumerate(stages) if values[i][j])
        for j, kind in enumerate(kinds)
    ]


def stage_chart(figures: dict[str, Any], path: Path) -> Path:
    """Horizontal bars: each stage's median seconds, one bar per kind of scan, on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds, stages, values = stage_matrix(figures)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(stages), 1) * max(len(kinds), 1) / 2))
    height = 0.8 / max(len(kinds), 1)
    for j, kind in enumerate(kinds):
        ax.barh(
            [i + j * height for i in range(len(stages))], [row[j] * 1000 for row in values], height=height, label=kind
        )
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(stages))], stages)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ms (median over runs)")
    ax.set_title("Scan time by stage")
    if kinds:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_chart(figures: dict[str, Any], path: Path) -> Path:
    """Scan time against symbols scanned (warm and, where measured, cold), beside the old design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = figures.get("sweep") or []
    fig, ax = plt.subplots(figsize=(8, 5))
    for kind in ("warm", "cold"):
        points = [(p["symbols"], p[kind]["median"]) for p in sweep if p.get(kind)]
        if points:
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=f"cluster, {kind}")
    base = figures.get("baseline")
    if base and sweep:
        xs = [p["symbols"] for p in sweep]
        ax.plot(xs, [x * base["seconds_per_symbol"] for x in xs], linestyle="--", label="old design (per symbol)")
    ax.set_xlabel("symbols scanned")
    ax.set_ylabel("seconds")
    ax.set_yscale("log")
    ax.set_title("Scan time against universe size")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(figures: dict[str, Any], folder: Path) -> dict[str, Path]:
    """report.json, report.md, stages.png and sweep.png in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "report.md"
    text.write_text(format_text(figures) + "\n")
    return {
        "json": write_json(figures, folder),
        "text": text,
        "stages": stage_chart(figures, folder / "stages.png"),
        "sweep": sweep_chart(figures, folder / "sweep.png"),
    }
