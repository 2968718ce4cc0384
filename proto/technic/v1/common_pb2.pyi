from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_UNSPECIFIED: _ClassVar[Bucket]
    BUCKET_RANKED: _ClassVar[Bucket]
    BUCKET_FILTERED: _ClassVar[Bucket]
    BUCKET_SKIPPED: _ClassVar[Bucket]
    BUCKET_ERRORED: _ClassVar[Bucket]

class SymbolState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYMBOL_STATE_UNSPECIFIED: _ClassVar[SymbolState]
    SYMBOL_STATE_OK: _ClassVar[SymbolState]
    SYMBOL_STATE_INSUFFICIENT_HISTORY: _ClassVar[SymbolState]
    SYMBOL_STATE_NO_DATA: _ClassVar[SymbolState]
    SYMBOL_STATE_STALE: _ClassVar[SymbolState]
    SYMBOL_STATE_ERROR: _ClassVar[SymbolState]
BUCKET_UNSPECIFIED: Bucket
BUCKET_RANKED: Bucket
BUCKET_FILTERED: Bucket
BUCKET_SKIPPED: Bucket
BUCKET_ERRORED: Bucket
SYMBOL_STATE_UNSPECIFIED: SymbolState
SYMBOL_STATE_OK: SymbolState
SYMBOL_STATE_INSUFFICIENT_HISTORY: SymbolState
SYMBOL_STATE_NO_DATA: SymbolState
SYMBOL_STATE_STALE: SymbolState
SYMBOL_STATE_ERROR: SymbolState

class SymbolIssue(_message.Message):
    __slots__ = ("symbol", "bucket", "reason", "detail")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bucket: Bucket
    reason: str
    detail: str
    def __init__(self, symbol: _Optional[str] = ..., bucket: _Optional[_Union[Bucket, str]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Accounting(_message.Message):
    __slots__ = ("requested", "ranked", "filtered", "skipped", "errored")
    class FilteredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ErroredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    RANKED_FIELD_NUMBER: _ClassVar[int]
    FILTERED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    requested: int
    ranked: int
    filtered: _containers.ScalarMap[str, int]
    skipped: _containers.ScalarMap[str, int]
    errored: _containers.ScalarMap[str, int]
    def __init__(self, requested: _Optional[int] = ..., ranked: _Optional[int] = ..., filtered: _Optional[_Mapping[str, int]] = ..., skipped: _Optional[_Mapping[str, int]] = ..., errored: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("seconds", "counters")
    class SecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    seconds: _containers.ScalarMap[str, float]
    counters: _containers.ScalarMap[str, int]
    def __init__(self, seconds: _Optional[_Mapping[str, float]] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ChunkRef(_message.Message):
    __slots__ = ("key", "inline_block", "chunk_index", "symbols", "n_sessions", "fields", "as_of", "content_digest")
    KEY_FIELD_NUMBER: _ClassVar[int]
    INLINE_BLOCK_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    N_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    key: str
    inline_block: bytes
    chunk_index: int
    symbols: _containers.RepeatedScalarFieldContainer[str]
    n_sessions: int
    fields: _containers.RepeatedScalarFieldContainer[str]
    as_of: str
    content_digest: str
    def __init__(self, key: _Optional[str] = ..., inline_block: _Optional[bytes] = ..., chunk_index: _Optional[int] = ..., symbols: _Optional[_Iterable[str]] = ..., n_sessions: _Optional[int] = ..., fields: _Optional[_Iterable[str]] = ..., as_of: _Optional[str] = ..., content_digest: _Optional[str] = ...) -> None: ...
