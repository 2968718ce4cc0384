from technic.v1 import common_pb2 as _common_pb2
from technic.v1 import scan_pb2 as _scan_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScanRequest(_message.Message):
    __slots__ = ("options", "refresh")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    options: _scan_pb2.ScanOptions
    refresh: bool
    def __init__(self, options: _Optional[_Union[_scan_pb2.ScanOptions, _Mapping]] = ..., refresh: _Optional[bool] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "done", "total", "elapsed_seconds", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    elapsed_seconds: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., elapsed_seconds: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class ScanEvent(_message.Message):
    __slots__ = ("scan_id", "progress", "result")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    progress: Progress
    result: _scan_pb2.ScanResult
    def __init__(self, scan_id: _Optional[str] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[_scan_pb2.ScanResult, _Mapping]] = ...) -> None: ...

class GetScanRequest(_message.Message):
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

class GetSymbolRequest(_message.Message):
    __slots__ = ("symbol", "days")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    days: int
    def __init__(self, symbol: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("date", "open", "high", "low", "close", "volume")
    DATE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    def __init__(self, date: _Optional[str] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ...) -> None: ...

class SymbolDetail(_message.Message):
    __slots__ = ("symbol", "name", "sector", "industry", "market_cap", "last_price", "change_pct", "history", "latest", "in_latest_scan")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECTOR_FIELD_NUMBER: _ClassVar[int]
    INDUSTRY_FIELD_NUMBER: _ClassVar[int]
    MARKET_CAP_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PCT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    IN_LATEST_SCAN_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    name: str
    sector: str
    industry: str
    market_cap: float
    last_price: float
    change_pct: float
    history: _containers.RepeatedCompositeFieldContainer[Bar]
    latest: _scan_pb2.ScanRow
    in_latest_scan: bool
    def __init__(self, symbol: _Optional[str] = ..., name: _Optional[str] = ..., sector: _Optional[str] = ..., industry: _Optional[str] = ..., market_cap: _Optional[float] = ..., last_price: _Optional[float] = ..., change_pct: _Optional[float] = ..., history: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ..., latest: _Optional[_Union[_scan_pb2.ScanRow, _Mapping]] = ..., in_latest_scan: _Optional[bool] = ...) -> None: ...

class GetUniverseStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SectorCount(_message.Message):
    __slots__ = ("name", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class UniverseStats(_message.Message):
    __slots__ = ("sectors", "industries", "total", "as_of", "last_scan")
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    INDUSTRIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    LAST_SCAN_FIELD_NUMBER: _ClassVar[int]
    sectors: _containers.RepeatedCompositeFieldContainer[SectorCount]
    industries: _containers.RepeatedCompositeFieldContainer[SectorCount]
    total: int
    as_of: str
    last_scan: _common_pb2.Accounting
    def __init__(self, sectors: _Optional[_Iterable[_Union[SectorCount, _Mapping]]] = ..., industries: _Optional[_Iterable[_Union[SectorCount, _Mapping]]] = ..., total: _Optional[int] = ..., as_of: _Optional[str] = ..., last_scan: _Optional[_Union[_common_pb2.Accounting, _Mapping]] = ...) -> None: ...
