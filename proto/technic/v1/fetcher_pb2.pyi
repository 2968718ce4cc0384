from technic.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetUniverseRequest(_message.Message):
    __slots__ = ("symbols", "with_details", "refresh")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    WITH_DETAILS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    with_details: bool
    refresh: bool
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., with_details: _Optional[bool] = ..., refresh: _Optional[bool] = ...) -> None: ...

class GetUniverseResponse(_message.Message):
    __slots__ = ("symbols", "names", "types", "exchanges", "sic_codes", "sectors", "industries", "market_caps", "as_of_unix", "stats", "not_found")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    SIC_CODES_FIELD_NUMBER: _ClassVar[int]
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    INDUSTRIES_FIELD_NUMBER: _ClassVar[int]
    MARKET_CAPS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_UNIX_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    types: _containers.RepeatedScalarFieldContainer[str]
    exchanges: _containers.RepeatedScalarFieldContainer[str]
    sic_codes: _containers.RepeatedScalarFieldContainer[int]
    sectors: _containers.RepeatedScalarFieldContainer[str]
    industries: _containers.RepeatedScalarFieldContainer[str]
    market_caps: _containers.RepeatedScalarFieldContainer[float]
    as_of_unix: int
    stats: _common_pb2.Stats
    not_found: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., types: _Optional[_Iterable[str]] = ..., exchanges: _Optional[_Iterable[str]] = ..., sic_codes: _Optional[_Iterable[int]] = ..., sectors: _Optional[_Iterable[str]] = ..., industries: _Optional[_Iterable[str]] = ..., market_caps: _Optional[_Iterable[float]] = ..., as_of_unix: _Optional[int] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ..., not_found: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("as_of", "window")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    window: int
    def __init__(self, as_of: _Optional[str] = ..., window: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("block", "as_of", "failed_sessions", "stats")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    FAILED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    block: bytes
    as_of: str
    failed_sessions: _containers.RepeatedScalarFieldContainer[str]
    stats: _common_pb2.Stats
    def __init__(self, block: _Optional[bytes] = ..., as_of: _Optional[str] = ..., failed_sessions: _Optional[_Iterable[str]] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ...) -> None: ...

class PrefetchRequest(_message.Message):
    __slots__ = ("header", "batch")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    header: PrefetchHeader
    batch: SymbolBatch
    def __init__(self, header: _Optional[_Union[PrefetchHeader, _Mapping]] = ..., batch: _Optional[_Union[SymbolBatch, _Mapping]] = ...) -> None: ...

class PrefetchHeader(_message.Message):
    __slots__ = ("scan_id", "as_of", "lookback", "chunk_size")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    LOOKBACK_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    as_of: str
    lookback: int
    chunk_size: int
    def __init__(self, scan_id: _Optional[str] = ..., as_of: _Optional[str] = ..., lookback: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class SymbolBatch(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class PrefetchResponse(_message.Message):
    __slots__ = ("chunk", "no_data", "failed_sessions", "stats", "done", "failed_symbols", "as_of", "degraded")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    NO_DATA_FIELD_NUMBER: _ClassVar[int]
    FAILED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.ChunkRef
    no_data: _containers.RepeatedScalarFieldContainer[str]
    failed_sessions: _containers.RepeatedScalarFieldContainer[str]
    stats: _common_pb2.Stats
    done: bool
    failed_symbols: _containers.RepeatedScalarFieldContainer[str]
    as_of: str
    degraded: bool
    def __init__(self, chunk: _Optional[_Union[_common_pb2.ChunkRef, _Mapping]] = ..., no_data: _Optional[_Iterable[str]] = ..., failed_sessions: _Optional[_Iterable[str]] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ..., done: _Optional[bool] = ..., failed_symbols: _Optional[_Iterable[str]] = ..., as_of: _Optional[str] = ..., degraded: _Optional[bool] = ...) -> None: ...

class GetBarsRequest(_message.Message):
    __slots__ = ("symbol", "days", "as_of")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    days: int
    as_of: str
    def __init__(self, symbol: _Optional[str] = ..., days: _Optional[int] = ..., as_of: _Optional[str] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("symbol", "block", "stats", "as_of")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    block: bytes
    stats: _common_pb2.Stats
    as_of: str
    def __init__(self, symbol: _Optional[str] = ..., block: _Optional[bytes] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ..., as_of: _Optional[str] = ...) -> None: ...
