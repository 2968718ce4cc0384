"""The committed generated modules match the protos (regenerated into a temporary folder)."""

from __future__ import annotations

from pathlib import Path

from services.common.protogen import PROTO_PACKAGE, PROTO_ROOT, generate


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    fresh = {p.name: p.read_bytes() for p in generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in (PROTO_ROOT / PROTO_PACKAGE).glob("*_pb2*") if p.is_file()}
    assert sorted(fresh) == sorted(committed), "generated file set differs: run `make proto`"
    stale = [name for name, data in fresh.items() if committed[name] != data]
    assert not stale, f"stale generated modules (run `make proto`): {stale}"
