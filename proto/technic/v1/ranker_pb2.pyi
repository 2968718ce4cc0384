from technic.v1 import common_pb2 as _common_pb2
from technic.v1 import compute_pb2 as _compute_pb2
from technic.v1 import scan_pb2 as _scan_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RankRequest(_message.Message):
    __slots__ = ("header", "chunk", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: RankHeader
    chunk: _compute_pb2.ScoreResponse
    end: RankEnd
    def __init__(self, header: _Optional[_Union[RankHeader, _Mapping]] = ..., chunk: _Optional[_Union[_compute_pb2.ScoreResponse, _Mapping]] = ..., end: _Optional[_Union[RankEnd, _Mapping]] = ...) -> None: ...

class RankEnd(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SymbolInfo(_message.Message):
    __slots__ = ("symbols", "names", "sectors", "industries", "market_caps")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    INDUSTRIES_FIELD_NUMBER: _ClassVar[int]
    MARKET_CAPS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    sectors: _containers.RepeatedScalarFieldContainer[str]
    industries: _containers.RepeatedScalarFieldContainer[str]
    market_caps: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., sectors: _Optional[_Iterable[str]] = ..., industries: _Optional[_Iterable[str]] = ..., market_caps: _Optional[_Iterable[float]] = ...) -> None: ...

class RankHeader(_message.Message):
    __slots__ = ("scan_id", "fingerprint", "options", "as_of", "info", "issues", "requested", "benchmark", "stage_seconds", "win_prob")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WIN_PROB_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    fingerprint: str
    options: _scan_pb2.ScanOptions
    as_of: str
    info: SymbolInfo
    issues: _containers.RepeatedCompositeFieldContainer[_common_pb2.SymbolIssue]
    requested: int
    benchmark: bytes
    stage_seconds: _containers.ScalarMap[str, float]
    win_prob: _compute_pb2.WinProbCalibration
    def __init__(self, scan_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., options: _Optional[_Union[_scan_pb2.ScanOptions, _Mapping]] = ..., as_of: _Optional[str] = ..., info: _Optional[_Union[SymbolInfo, _Mapping]] = ..., issues: _Optional[_Iterable[_Union[_common_pb2.SymbolIssue, _Mapping]]] = ..., requested: _Optional[int] = ..., benchmark: _Optional[bytes] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., win_prob: _Optional[_Union[_compute_pb2.WinProbCalibration, _Mapping]] = ...) -> None: ...

class AttachExplanationsRequest(_message.Message):
    __slots__ = ("fingerprint", "explanations")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    explanations: _containers.RepeatedCompositeFieldContainer[_compute_pb2.SymbolExplanation]
    def __init__(self, fingerprint: _Optional[str] = ..., explanations: _Optional[_Iterable[_Union[_compute_pb2.SymbolExplanation, _Mapping]]] = ...) -> None: ...

class AttachExplanationsResponse(_message.Message):
    __slots__ = ("attached",)
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    attached: int
    def __init__(self, attached: _Optional[int] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("scan_id", "fingerprint", "offset", "limit", "sort_by", "ascending", "include_issues")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    ASCENDING_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ISSUES_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    fingerprint: str
    offset: int
    limit: int
    sort_by: str
    ascending: bool
    include_issues: bool
    def __init__(self, scan_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., sort_by: _Optional[str] = ..., ascending: _Optional[bool] = ..., include_issues: _Optional[bool] = ...) -> None: ...
