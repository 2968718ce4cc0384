"""Generate the protobuf modules beside the protos (``make proto``), or into another folder.

The generated ``*_pb2.py``, ``*_pb2_grpc.py`` and ``*_pb2.pyi`` files are committed; a test
regenerates them into a temporary folder and compares, so they never drift from the protos.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.common.settings import PROJECT_ROOT

PROTO_ROOT = PROJECT_ROOT / "proto"
PROTO_PACKAGE = Path("technic") / "v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (grpcio-tools) over every proto into ``out_dir``; returns the generated files."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    return sorted(p for p in (out_dir / PROTO_PACKAGE).glob("*_pb2*") if p.is_file())


def main() -> int:
    generated = generate(PROTO_ROOT)
    for path in generated:
        print(path.relative_to(PROJECT_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
