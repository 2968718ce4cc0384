"""`make mutation`: mutmut over the pure domain modules, one module at a time, and the score of each.

Usage: ``python -m tests.mutation [MODULE ...]`` (default: every module of MODULES, in order).

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies the sources into ``mutants/``,
records which unit tests reach each function, and runs only those tests against each mutant, one
worker at a time. A mutant that survives counts against its module's score unless
tests/mutation-equivalents.txt lists it as equivalent, with the mutated line (so an entry that no
longer names the same change after an edit is reported as stale) and the reason. The run fails
when a module scores below THRESHOLD or a survivor is neither killed nor listed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.txt"
THRESHOLD = 90.0

# Module -> (source file, mutant name patterns). The key check is two functions of the HTTP API's auth; of
# the CLI, the pure functions that turn arguments into ScanOptions and rows into the table.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ranker.rank": ("services/ranker/rank.py", ("services.ranker.rank.*",)),
    "ranker.rating": ("services/ranker/rating.py", ("services.ranker.rating.*",)),
    "ranker.plan": ("services/ranker/plan.py", ("services.ranker.plan.*",)),
    "ranker.scoring": ("services/ranker/scoring.py", ("services.ranker.scoring.*",)),
    "gateway.prefilter": ("gateway/prefilter.py", ("gateway.prefilter.*",)),
    "gateway.validation": ("gateway/validation.py", ("gateway.validation.*",)),
    "gateway.ratelimit": ("gateway/ratelimit.py", ("gateway.ratelimit.*",)),
    "gateway.auth": (
        "gateway/http_api/auth.py",
        ("gateway.http_api.auth.x_matching_key__mutmut_*", "gateway.http_api.auth.x_key_matches__mutmut_*"),
    ),
    "gateway.caches": ("gateway/caches.py", ("gateway.caches.*",)),
    "gateway.answers": ("gateway/http_api/answers.py", ("gateway.http_api.answers.*",)),
    "gateway.fastpath": ("gateway/http_api/fastpath.py", ("gateway.http_api.fastpath.*",)),
    "fetcher.jsonbars": ("services/fetcher/jsonbars.py", ("services.fetcher.jsonbars.*",)),
    "fetcher.tickers": ("services/fetcher/tickers.py", ("services.fetcher.tickers.*",)),
    "fetcher.splits": ("services/fetcher/splits.py", ("services.fetcher.splits.*",)),
    "gateway.views": ("gateway/views.py", ("gateway.views.*",)),
    "gateway.copilot": ("gateway/copilot.py", ("gateway.copilot.*",)),
    "gateway.catalog": ("gateway/catalog.py", ("gateway.catalog.*",)),
    "gateway.explain": ("gateway/explain.py", ("gateway.explain.*",)),
    "gateway.cli": (
        "gateway/cli.py",
        tuple(
            f"gateway.cli.x_{name}__mutmut_*"
            for name in (
                "_style",
                "_range",
                "_csv_list",
                "_fmt",
                "_cells",
                "table_columns",
                "top_table",
                "scan_options",
            )
        ),
    ),
}
# mutmut exit codes that mean a test noticed the mutant (a failure, an error, a timeout).
KILLED = {1, 3, 24, -24, 36, 152, 255, 37}


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    line: str
    reason: str


@dataclass
class Score:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: list[str] = field(default_factory=list)
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant, mutated line)
    stale: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        counted = self.total - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, Equivalent]:
    """``mutant | mutated line | reason`` per line; blank lines and ``#`` comments are skipped."""
    out: dict[str, Equivalent] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        # The mutated line may hold " | " itself: the name is before the first, the reason after the last.
        name, _, rest = text.partition(" | ")
        line, _, reason = rest.rpartition(" | ")
        if not (name and line.strip() and reason.strip()):
            raise SystemExit(f"{path.name}:{number}: expected 'mutant | mutated line | reason'")
        out[name.strip()] = Equivalent(name.strip(), line.strip(), reason.strip())
    return out


def mutated_line(mutant: str, source: str) -> str:
    """The first added line of mutmut's diff for ``mutant`` of ``source``, stripped."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # reads [tool.mutmut] of the working folder

    diff = get_diff_for_mutant(mutant, path=source)
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else ""


def score(module: str, equivalents: dict[str, Equivalent]) -> Score:
    source, patterns = MODULES[module]
    meta = json.loads((ROOT / "mutants" / f"{source}.meta").read_text())
    result = Score(module)
    known = meta["exit_code_by_key"]
    for name in equivalents:
        if any(fnmatch.fnmatch(name, p) for p in patterns) and name not in known:
            result.stale.append(f"{name} is listed as equivalent but is no mutant of {source} any more")
    for mutant, code in sorted(known.items()):
        if not any(fnmatch.fnmatch(mutant, p) for p in patterns):
            continue
        result.total += 1
        if code in KILLED:
            result.killed += 1
            if mutant in equivalents:
                result.stale.append(f"{mutant} is listed as equivalent but was killed")
            continue
        line = mutated_line(mutant, source)
        listed = equivalents.get(mutant)
        if listed is not None and "".join(listed.line.split()) == "".join(line.split()):  # layout aside
            result.equivalent.append(mutant)
        else:
            if listed is not None:
                result.stale.append(f"{mutant} is listed with the line {listed.line!r}, but mutates {line!r}")
            result.survivors.append((mutant, line))
    return result


def prune_stale_copies() -> None:
    """Drop copies in mutants/ of sources and tests gone from the tree: mutmut keeps what it copied once,
    and a moved module's or conftest's old copy would shadow the new layout."""
    copies = ROOT / "mutants"
    for copy in copies.glob("*/**/*.py"):
        relative = copy.relative_to(copies)
        if relative.parts[0] in ("services", "gateway", "tests") and not (ROOT / relative).exists():
            copy.unlink()


def run(module: str) -> None:
    """mutmut over one module's mutants, one worker process."""
    patterns = MODULES[module][1]
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", "1", *patterns],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown module(s) {', '.join(unknown)}; one of {', '.join(MODULES)}")
        return 2
    os.chdir(ROOT)
    prune_stale_copies()
    equivalents = read_equivalents()
    scores = []
    for module in modules:
        print(f"mutating {module} ...", flush=True)
        run(module)
        scores.append(score(module, equivalents))
        done = scores[-1]
        print(
            f"  {done.killed} of {done.total} killed, {len(done.equivalent)} equivalent, "
            f"{len(done.survivors)} survived: {done.percent:.1f}%",
            flush=True,
        )
    print(f"\n{'module':<20} {'mutants':>7} {'killed':>6} {'equiv':>5} {'survived':>8} {'score':>7}")
    failed = False
    for s in scores:
        print(
            f"{s.module:<20} {s.total:>7} {s.killed:>6} {len(s.equivalent):>5} {len(s.survivors):>8} {s.percent:>6.1f}%"
        )
        failed |= s.percent < THRESHOLD or bool(s.survivors) or bool(s.stale)
    for s in scores:
        for mutant, line in s.survivors:
            print(f"survived: {mutant} | {line}")
        for problem in s.stale:
            print(f"stale equivalent: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
