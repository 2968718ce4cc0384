"""The ranked scan as columns, its compact byte form for the cache, and its pages.

Rows are stored in rank order (best composite first). Numbers are one float64 matrix, features
one float32 matrix under their feature-list names, sparklines one float32 matrix, the derived
scores (services/ranker/derived.py) one float64 matrix; the text columns and the scan's metadata
(accounting, issues, regime, movers) travel in the first block's JSON meta. The byte form is
``b"TRS2"``, four u64 lengths, then the four codec blocks: no pickles.

Explanations (feature contributions of some rows, attached after ranking) are kept with the scan
as one opaque encoded message per symbol; their byte form is separate (:func:`explanations_to_bytes`),
so they are stored beside the scan without rewriting it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from services.common.codec import BlockError, decode_block, encode_block
from services.contract.columns import NUMBER_COLUMNS, TEXT_COLUMNS
from services.ranker.derived import FIELDS as DERIVED_FIELDS
from services.ranker.derived import Derived
from services.ranker.rank import PageSpec, check_column, order, window
from services.ranker.scoring import Regime

_MAGIC = b"TRS2"
_FRAME = struct.Struct("<4sQQQQ")


@dataclass
class Accounting:
    """Counts per bucket; ranked + filtered + skipped + errored == requested."""

    requested: int
    ranked: int
    filtered: dict[str, int]
    skipped: dict[str, int]
    errored: dict[str, int]

    def total(self) -> int:
        return self.ranked + sum(self.filtered.values()) + sum(self.skipped.values()) + sum(self.errored.values())


@dataclass
class Issues:
    """Every requested symbol that is not ranked, as parallel lists."""

    symbols: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def extend(self, symbols: list[str], bucket: str, reasons: list[str], detail: list[str] | str = "") -> None:
        self.symbols += symbols
        self.buckets += [bucket] * len(symbols)
        self.reasons += reasons
        self.details += detail if isinstance(detail, list) else [detail] * len(symbols)

    def __len__(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True)
class Mover:
    row: int
    symbol: str
    change_pct: float
    note: str


@dataclass
class RankedScan:
    scan_id: str
    fingerprint: str
    as_of: str
    style: str
    feature_version: str
    model_versions: dict[str, str]
    created_unix: float
    stage_seconds: dict[str, float]
    regime: Regime
    accounting: Accounting
    issues: Issues
    movers: list[Mover]
    text: dict[str, np.ndarray]
    numbers: np.ndarray
    feature_names: tuple[str, ...]
    features: np.ndarray
    sparklines: np.ndarray
    derived: Derived
    # Symbol -> its encoded explanation (a SymbolExplanation message), for the rows explained so far.
    explanations: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    _orders: dict[tuple[str, bool], np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # Presentations of the rows built once per scan by the servicer (its row encoder), dropped with the scan.
    views: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def columns(self) -> ColumnView:
        return ColumnView(self)

    def number(self, name: str) -> np.ndarray:
        return self.numbers[:, NUMBER_COLUMNS.index(name)]

    def sortable(self) -> tuple[str, ...]:
        return (*NUMBER_COLUMNS, *self.feature_names, *TEXT_COLUMNS)

    def page(self, spec: PageSpec) -> np.ndarray:
        """Row indices of the requested page; the order per (column, direction) is computed once."""
        key = (spec.sort_by, spec.ascending)
        idx = self._orders.get(key)
        if idx is None:
            check_column(spec.sort_by, self.sortable(), "sort")
            idx = order(self.columns[spec.sort_by], spec.ascending)
            self._orders[key] = idx
        return window(idx, spec.offset, spec.limit)

    def attach(self, explanations: Mapping[str, bytes]) -> int:
        """Keep the explanations of symbols that are rows of this scan (replacing earlier ones); how many."""
        rows = set(self.text["symbol"].tolist())
        kept = {symbol: data for symbol, data in explanations.items() if symbol in rows}
        self.explanations.update(kept)
        return len(kept)

    def to_bytes(self) -> bytes:
        # vars(), not asdict(), for the issue lists: asdict deep-copies every string (~40 ms per scan).
        meta = {
            "scan_id": self.scan_id,
            "fingerprint": self.fingerprint,
            "as_of": self.as_of,
            "style": self.style,
            "feature_version": self.feature_version,
            "model_versions": self.model_versions,
            "created_unix": self.created_unix,
            "stage_seconds": self.stage_seconds,
            "regime": asdict(self.regime),
            "accounting": asdict(self.accounting),
            "issues": vars(self.issues),
            "movers": [[m.row, m.symbol, m.change_pct, m.note] for m in self.movers],
            "text": {k: v.tolist() for k, v in self.text.items() if k != "symbol"},
        }
        symbols = self.text["symbol"].tolist()
        table = encode_block(self.numbers, rows=symbols, fields=NUMBER_COLUMNS, meta=meta)
        feats = encode_block(self.features, fields=self.feature_names)
        sparks = encode_block(self.sparklines)
        scores = encode_block(self.derived.matrix(), fields=DERIVED_FIELDS)
        frame = _FRAME.pack(_MAGIC, len(table), len(feats), len(sparks), len(scores))
        return b"".join((frame, table, feats, sparks, scores))  # one copy of the megabytes, not one per +

    @classmethod
    def from_bytes(cls, data: bytes) -> RankedScan:
        """Decode :meth:`to_bytes`; BlockError when the bytes are not a ranked scan."""
        if len(data) < _FRAME.size:
            raise BlockError("ranked scan too short")
        magic, n1, n2, n3, n4 = _FRAME.unpack_from(data, 0)
        if magic != _MAGIC or _FRAME.size + n1 + n2 + n3 + n4 != len(data):
            raise BlockError("not a ranked scan (bad frame)")
        view = memoryview(data)[_FRAME.size :]
        table, feats = decode_block(view[:n1]), decode_block(view[n1 : n1 + n2])
        sparks, scores = decode_block(view[n1 + n2 : n1 + n2 + n3]), decode_block(view[n1 + n2 + n3 :])
        m: dict[str, Any] = dict(table.meta)
        if table.fields != NUMBER_COLUMNS or scores.fields != DERIVED_FIELDS:
            raise BlockError("ranked scan written with other columns")
        text = {k: np.asarray(v, dtype=object) for k, v in m["text"].items()}
        text["symbol"] = np.asarray(table.rows, dtype=object)
        regime_fields: dict[str, Any] = {k: (float("nan") if v is None else v) for k, v in m["regime"].items()}
        regime = Regime(**regime_fields)
        return cls(
            scan_id=m["scan_id"],
            fingerprint=m["fingerprint"],
            as_of=m["as_of"],
            style=m["style"],
            feature_version=m["feature_version"],
            model_versions=m["model_versions"],
            created_unix=m["created_unix"],
            stage_seconds=m["stage_seconds"],
            regime=regime,
            accounting=Accounting(**m["accounting"]),
            issues=Issues(**m["issues"]),
            movers=[Mover(int(r), s, float(c), n) for r, s, c, n in m["movers"]],
            text=text,
            numbers=table.array,
            feature_names=feats.fields,
            features=feats.array,
            sparklines=sparks.array,
            derived=Derived.from_matrix(scores.array),
        )


def explanations_to_bytes(explanations: Mapping[str, bytes]) -> bytes:
    """A codec block: the encoded explanations end to end as uint8, their symbols and sizes in its meta."""
    symbols = list(explanations)
    body = np.frombuffer(b"".join(explanations[s] for s in symbols), dtype=np.uint8)
    return encode_block(body, meta={"symbols": symbols, "sizes": [len(explanations[s]) for s in symbols]})


def explanations_from_bytes(data: bytes) -> dict[str, bytes]:
    """Decode :func:`explanations_to_bytes`; BlockError when the bytes are not explanations."""
    block = decode_block(data)
    meta = block.meta if isinstance(block.meta, Mapping) else {}
    symbols, sizes = meta.get("symbols"), meta.get("sizes")
    if not isinstance(symbols, list) or not isinstance(sizes, list) or len(symbols) != len(sizes):
        raise BlockError("not a block of explanations (symbols and sizes)")
    if not all(isinstance(n, int) and n >= 0 for n in sizes):
        raise BlockError("explanation sizes must be whole numbers >= 0")
    if block.array.ndim != 1 or sum(sizes) != block.array.size:
        raise BlockError("explanation sizes do not add up to the block")
    body = block.array.tobytes()
    ends = np.cumsum([0, *sizes]).tolist()
    return {str(s): body[a:b] for s, a, b in zip(symbols, ends[:-1], ends[1:], strict=True)}


class ColumnView(Mapping[str, np.ndarray]):
    """Every column of a ranked scan by name: numbers, features and text."""

    def __init__(self, scan: RankedScan) -> None:
        self.scan = scan

    def __getitem__(self, name: str) -> np.ndarray:
        s = self.scan
        if name in s.text:
            return s.text[name]
        if name in NUMBER_COLUMNS:
            return s.number(name)
        if name in s.feature_names:
            return s.features[:, s.feature_names.index(name)]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.scan.sortable())

    def __len__(self) -> int:
        return len(self.scan.sortable())
