from technic.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreRequest(_message.Message):
    __slots__ = ("scan_id", "chunk")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    chunk: _common_pb2.ChunkRef
    def __init__(self, scan_id: _Optional[str] = ..., chunk: _Optional[_Union[_common_pb2.ChunkRef, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("chunk_index", "symbols", "states", "features", "scores", "levels", "sparklines", "feature_version", "model_versions", "stats", "replica")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    SPARKLINES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    chunk_index: int
    symbols: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.SymbolState]
    features: bytes
    scores: bytes
    levels: bytes
    sparklines: bytes
    feature_version: str
    model_versions: _containers.ScalarMap[str, str]
    stats: _common_pb2.Stats
    replica: str
    def __init__(self, chunk_index: _Optional[int] = ..., symbols: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[_Union[_common_pb2.SymbolState, str]]] = ..., features: _Optional[bytes] = ..., scores: _Optional[bytes] = ..., levels: _Optional[bytes] = ..., sparklines: _Optional[bytes] = ..., feature_version: _Optional[str] = ..., model_versions: _Optional[_Mapping[str, str]] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ..., replica: _Optional[str] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("scan_id", "features", "top_k")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    features: bytes
    top_k: int
    def __init__(self, scan_id: _Optional[str] = ..., features: _Optional[bytes] = ..., top_k: _Optional[int] = ...) -> None: ...

class FeatureContribution(_message.Message):
    __slots__ = ("feature", "label", "value", "contribution")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    label: str
    value: float
    contribution: float
    def __init__(self, feature: _Optional[str] = ..., label: _Optional[str] = ..., value: _Optional[float] = ..., contribution: _Optional[float] = ...) -> None: ...

class ModelExplanation(_message.Message):
    __slots__ = ("model", "base_value", "prediction", "contributions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    base_value: float
    prediction: float
    contributions: _containers.RepeatedCompositeFieldContainer[FeatureContribution]
    def __init__(self, model: _Optional[str] = ..., base_value: _Optional[float] = ..., prediction: _Optional[float] = ..., contributions: _Optional[_Iterable[_Union[FeatureContribution, _Mapping]]] = ...) -> None: ...

class SymbolExplanation(_message.Message):
    __slots__ = ("symbol", "models")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    models: _containers.RepeatedCompositeFieldContainer[ModelExplanation]
    def __init__(self, symbol: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelExplanation, _Mapping]]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("symbols", "stats")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedCompositeFieldContainer[SymbolExplanation]
    stats: _common_pb2.Stats
    def __init__(self, symbols: _Optional[_Iterable[_Union[SymbolExplanation, _Mapping]]] = ..., stats: _Optional[_Union[_common_pb2.Stats, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WinProbCalibration(_message.Message):
    __slots__ = ("model", "version", "edges", "p_up")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    P_UP_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    edges: _containers.RepeatedScalarFieldContainer[float]
    p_up: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., edges: _Optional[_Iterable[float]] = ..., p_up: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "trained_on", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_ON_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    trained_on: str
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., trained_on: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("feature_version", "model_versions", "feature_fields", "score_fields", "level_fields", "sparkline_length", "win_prob", "models", "replica")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FEATURE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    SPARKLINE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    WIN_PROB_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    feature_version: str
    model_versions: _containers.ScalarMap[str, str]
    feature_fields: _containers.RepeatedScalarFieldContainer[str]
    score_fields: _containers.RepeatedScalarFieldContainer[str]
    level_fields: _containers.RepeatedScalarFieldContainer[str]
    sparkline_length: int
    win_prob: WinProbCalibration
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    replica: str
    def __init__(self, feature_version: _Optional[str] = ..., model_versions: _Optional[_Mapping[str, str]] = ..., feature_fields: _Optional[_Iterable[str]] = ..., score_fields: _Optional[_Iterable[str]] = ..., level_fields: _Optional[_Iterable[str]] = ..., sparkline_length: _Optional[int] = ..., win_prob: _Optional[_Union[WinProbCalibration, _Mapping]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., replica: _Optional[str] = ...) -> None: ...
