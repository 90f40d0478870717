import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedDocument(_message.Message):
    __slots__ = ("payload", "signature", "key_id")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    key_id: str
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class Quantization(_message.Message):
    __slots__ = ("scale", "zero_point", "quantized_dimension")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    ZERO_POINT_FIELD_NUMBER: _ClassVar[int]
    QUANTIZED_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    scale: _containers.RepeatedScalarFieldContainer[float]
    zero_point: _containers.RepeatedScalarFieldContainer[int]
    quantized_dimension: int
    def __init__(self, scale: _Optional[_Iterable[float]] = ..., zero_point: _Optional[_Iterable[int]] = ..., quantized_dimension: _Optional[int] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "shape", "dtype", "quantization")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    quantization: Quantization
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., quantization: _Optional[_Union[Quantization, _Mapping]] = ...) -> None: ...

class InterpreterInfo(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class HardwareProfile(_message.Message):
    __slots__ = ("arch", "cpu_model", "cpu_cores", "cpu_flags", "ram_bytes", "ram_available_bytes", "storage_free_bytes", "os", "kernel", "interpreter", "delegates")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    CPU_FLAGS_FIELD_NUMBER: _ClassVar[int]
    RAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAM_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_FIELD_NUMBER: _ClassVar[int]
    DELEGATES_FIELD_NUMBER: _ClassVar[int]
    arch: str
    cpu_model: str
    cpu_cores: int
    cpu_flags: _containers.RepeatedScalarFieldContainer[str]
    ram_bytes: int
    ram_available_bytes: int
    storage_free_bytes: int
    os: str
    kernel: str
    interpreter: InterpreterInfo
    delegates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, arch: _Optional[str] = ..., cpu_model: _Optional[str] = ..., cpu_cores: _Optional[int] = ..., cpu_flags: _Optional[_Iterable[str]] = ..., ram_bytes: _Optional[int] = ..., ram_available_bytes: _Optional[int] = ..., storage_free_bytes: _Optional[int] = ..., os: _Optional[str] = ..., kernel: _Optional[str] = ..., interpreter: _Optional[_Union[InterpreterInfo, _Mapping]] = ..., delegates: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("model", "version", "variant", "sha256")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    variant: str
    sha256: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("name", "hardware", "labels", "enrollment_key")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    hardware: HardwareProfile
    labels: _containers.ScalarMap[str, str]
    enrollment_key: str
    def __init__(self, name: _Optional[str] = ..., hardware: _Optional[_Union[HardwareProfile, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., enrollment_key: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("device_id", "device_token")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    device_token: str
    def __init__(self, device_id: _Optional[str] = ..., device_token: _Optional[str] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("known_sequence", "active", "hardware")
    KNOWN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    known_sequence: int
    active: _containers.RepeatedCompositeFieldContainer[ModelRef]
    hardware: HardwareProfile
    def __init__(self, known_sequence: _Optional[int] = ..., active: _Optional[_Iterable[_Union[ModelRef, _Mapping]]] = ..., hardware: _Optional[_Union[HardwareProfile, _Mapping]] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("desired_state", "poll_interval_seconds")
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    desired_state: SignedDocument
    poll_interval_seconds: int
    def __init__(self, desired_state: _Optional[_Union[SignedDocument, _Mapping]] = ..., poll_interval_seconds: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("known_sequence",)
    KNOWN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    known_sequence: int
    def __init__(self, known_sequence: _Optional[int] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("desired_sequence", "keepalive")
    DESIRED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_FIELD_NUMBER: _ClassVar[int]
    desired_sequence: int
    keepalive: bool
    def __init__(self, desired_sequence: _Optional[int] = ..., keepalive: _Optional[bool] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("sha256", "offset")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    offset: int
    def __init__(self, sha256: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ArtifactChunk(_message.Message):
    __slots__ = ("offset", "data", "total_size")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    total_size: int
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...

class InstallEvent(_message.Message):
    __slots__ = ("ref", "state", "message", "at", "finding")
    REF_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    ref: ModelRef
    state: str
    message: str
    at: _timestamp_pb2.Timestamp
    finding: Finding
    def __init__(self, ref: _Optional[_Union[ModelRef, _Mapping]] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finding: _Optional[_Union[Finding, _Mapping]] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("reason", "interpreter", "interpreter_version", "sample", "output", "observed", "limit")
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    interpreter: str
    interpreter_version: str
    sample: int
    output: str
    observed: float
    limit: float
    def __init__(self, reason: _Optional[str] = ..., interpreter: _Optional[str] = ..., interpreter_version: _Optional[str] = ..., sample: _Optional[int] = ..., output: _Optional[str] = ..., observed: _Optional[float] = ..., limit: _Optional[float] = ...) -> None: ...

class StatusReport(_message.Message):
    __slots__ = ("events", "active")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[InstallEvent]
    active: _containers.RepeatedCompositeFieldContainer[ModelRef]
    def __init__(self, events: _Optional[_Iterable[_Union[InstallEvent, _Mapping]]] = ..., active: _Optional[_Iterable[_Union[ModelRef, _Mapping]]] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "rejections")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: int
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MetricWindow(_message.Message):
    __slots__ = ("window_id", "ref", "start", "end", "count", "errors", "bucket_bounds_ms", "bucket_counts", "latency_sum_ms", "latency_max_ms", "nonfinite")
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BOUNDS_MS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SUM_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_FIELD_NUMBER: _ClassVar[int]
    window_id: str
    ref: ModelRef
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    count: int
    errors: int
    bucket_bounds_ms: _containers.RepeatedScalarFieldContainer[float]
    bucket_counts: _containers.RepeatedScalarFieldContainer[int]
    latency_sum_ms: float
    latency_max_ms: float
    nonfinite: int
    def __init__(self, window_id: _Optional[str] = ..., ref: _Optional[_Union[ModelRef, _Mapping]] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., bucket_bounds_ms: _Optional[_Iterable[float]] = ..., bucket_counts: _Optional[_Iterable[int]] = ..., latency_sum_ms: _Optional[float] = ..., latency_max_ms: _Optional[float] = ..., nonfinite: _Optional[int] = ...) -> None: ...

class MetricsReport(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[MetricWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[MetricWindow, _Mapping]]] = ...) -> None: ...

class ExplainDeviceRequest(_message.Message):
    __slots__ = ("device_id", "model", "version", "prefer", "variant")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    model: str
    version: str
    prefer: str
    variant: str
    def __init__(self, device_id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., prefer: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class VariantVerdict(_message.Message):
    __slots__ = ("kind", "eligible", "chosen", "reasons", "latency_ms", "latency_source", "accuracy_cosine", "size_bytes", "memory_bytes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_COSINE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    eligible: bool
    chosen: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    latency_ms: float
    latency_source: str
    accuracy_cosine: float
    size_bytes: int
    memory_bytes: int
    def __init__(self, kind: _Optional[str] = ..., eligible: _Optional[bool] = ..., chosen: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., latency_ms: _Optional[float] = ..., latency_source: _Optional[str] = ..., accuracy_cosine: _Optional[float] = ..., size_bytes: _Optional[int] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("device_id", "model", "version", "hardware_class", "prefer", "chosen", "reason", "variants", "interpreter", "interpreter_version", "ram_available_bytes", "storage_free_bytes")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_VERSION_FIELD_NUMBER: _ClassVar[int]
    RAM_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    model: str
    version: str
    hardware_class: HardwareClass
    prefer: str
    chosen: str
    reason: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantVerdict]
    interpreter: str
    interpreter_version: str
    ram_available_bytes: int
    storage_free_bytes: int
    def __init__(self, device_id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., hardware_class: _Optional[_Union[HardwareClass, _Mapping]] = ..., prefer: _Optional[str] = ..., chosen: _Optional[str] = ..., reason: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantVerdict, _Mapping]]] = ..., interpreter: _Optional[str] = ..., interpreter_version: _Optional[str] = ..., ram_available_bytes: _Optional[int] = ..., storage_free_bytes: _Optional[int] = ...) -> None: ...

class ListHardwareClassesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHardwareClassesResponse(_message.Message):
    __slots__ = ("classes",)
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[HardwareClass]
    def __init__(self, classes: _Optional[_Iterable[_Union[HardwareClass, _Mapping]]] = ...) -> None: ...

class Incompatibility(_message.Message):
    __slots__ = ("model", "version", "variant", "hardware_class", "reason", "finding", "device_id", "reports", "created_at", "updated_at")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    variant: str
    hardware_class: HardwareClass
    reason: str
    finding: Finding
    device_id: str
    reports: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., hardware_class: _Optional[_Union[HardwareClass, _Mapping]] = ..., reason: _Optional[str] = ..., finding: _Optional[_Union[Finding, _Mapping]] = ..., device_id: _Optional[str] = ..., reports: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListIncompatibilitiesRequest(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListIncompatibilitiesResponse(_message.Message):
    __slots__ = ("incompatibilities",)
    INCOMPATIBILITIES_FIELD_NUMBER: _ClassVar[int]
    incompatibilities: _containers.RepeatedCompositeFieldContainer[Incompatibility]
    def __init__(self, incompatibilities: _Optional[_Iterable[_Union[Incompatibility, _Mapping]]] = ...) -> None: ...

class ClearIncompatibilityRequest(_message.Message):
    __slots__ = ("model", "version", "variant", "hardware_class")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    variant: str
    hardware_class: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., hardware_class: _Optional[str] = ...) -> None: ...

class ClearIncompatibilityResponse(_message.Message):
    __slots__ = ("cleared",)
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    cleared: int
    def __init__(self, cleared: _Optional[int] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("role", "description", "expires_in_seconds")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    role: str
    description: str
    expires_in_seconds: int
    def __init__(self, role: _Optional[str] = ..., description: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("id", "token", "role", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    token: str
    role: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., token: _Optional[str] = ..., role: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateEnrollmentTokenRequest(_message.Message):
    __slots__ = ("labels", "uses", "expires_in_seconds")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    uses: int
    expires_in_seconds: int
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ..., uses: _Optional[int] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class CreateEnrollmentTokenResponse(_message.Message):
    __slots__ = ("id", "token", "uses", "expires_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    token: str
    uses: int
    expires_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., token: _Optional[str] = ..., uses: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class OperatorToken(_message.Message):
    __slots__ = ("id", "role", "description", "created_at", "created_by", "revoked_at", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    revoked_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., role: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[OperatorToken]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[OperatorToken, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeEnrollmentTokenRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokedEnrollmentToken(_message.Message):
    __slots__ = ("id", "uses_left", "revoked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USES_LEFT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    uses_left: int
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., uses_left: _Optional[int] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PushModelHeader(_message.Message):
    __slots__ = ("name", "version", "size", "sha256", "calibration_size", "calibration_sha256", "tolerance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SHA256_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    size: int
    sha256: str
    calibration_size: int
    calibration_sha256: str
    tolerance: Tolerance
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., calibration_size: _Optional[int] = ..., calibration_sha256: _Optional[str] = ..., tolerance: _Optional[_Union[Tolerance, _Mapping]] = ...) -> None: ...

class Tolerance(_message.Message):
    __slots__ = ("min_cosine", "min_top1")
    MIN_COSINE_FIELD_NUMBER: _ClassVar[int]
    MIN_TOP1_FIELD_NUMBER: _ClassVar[int]
    min_cosine: float
    min_top1: float
    def __init__(self, min_cosine: _Optional[float] = ..., min_top1: _Optional[float] = ...) -> None: ...

class PushModelRequest(_message.Message):
    __slots__ = ("header", "chunk", "calibration_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: PushModelHeader
    chunk: bytes
    calibration_chunk: bytes
    def __init__(self, header: _Optional[_Union[PushModelHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., calibration_chunk: _Optional[bytes] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("kind", "sha256", "size", "status", "latency_ms", "failure", "manifest", "inputs", "outputs", "min_runtime", "measured_with", "measurements", "golden_sha256", "golden_samples")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    MIN_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MEASURED_WITH_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    GOLDEN_SHA256_FIELD_NUMBER: _ClassVar[int]
    GOLDEN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    sha256: str
    size: int
    status: str
    latency_ms: float
    failure: str
    manifest: SignedDocument
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    min_runtime: str
    measured_with: str
    measurements: _containers.RepeatedCompositeFieldContainer[VariantMeasurement]
    golden_sha256: str
    golden_samples: int
    def __init__(self, kind: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., status: _Optional[str] = ..., latency_ms: _Optional[float] = ..., failure: _Optional[str] = ..., manifest: _Optional[_Union[SignedDocument, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., min_runtime: _Optional[str] = ..., measured_with: _Optional[str] = ..., measurements: _Optional[_Iterable[_Union[VariantMeasurement, _Mapping]]] = ..., golden_sha256: _Optional[str] = ..., golden_samples: _Optional[int] = ...) -> None: ...

class VariantMeasurement(_message.Message):
    __slots__ = ("interpreter", "interpreter_version", "status", "reason", "latency_p50_ms", "latency_p95_ms", "accuracy", "inputs_source", "samples")
    INTERPRETER_FIELD_NUMBER: _ClassVar[int]
    INTERPRETER_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    INPUTS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    interpreter: str
    interpreter_version: str
    status: str
    reason: str
    latency_p50_ms: float
    latency_p95_ms: float
    accuracy: _containers.RepeatedCompositeFieldContainer[OutputAccuracy]
    inputs_source: str
    samples: int
    def __init__(self, interpreter: _Optional[str] = ..., interpreter_version: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., accuracy: _Optional[_Iterable[_Union[OutputAccuracy, _Mapping]]] = ..., inputs_source: _Optional[str] = ..., samples: _Optional[int] = ...) -> None: ...

class OutputAccuracy(_message.Message):
    __slots__ = ("name", "max_abs_error", "mean_abs_error", "cosine", "top1")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    MEAN_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    COSINE_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1: float
    def __init__(self, name: _Optional[str] = ..., max_abs_error: _Optional[float] = ..., mean_abs_error: _Optional[float] = ..., cosine: _Optional[float] = ..., top1: _Optional[float] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("name", "version", "status", "failure", "inputs", "outputs", "operators", "min_runtime", "sha256", "size", "variants", "created_at", "tolerance", "calibrated", "class_metrics", "class_metrics_coverage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    MIN_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATED_FIELD_NUMBER: _ClassVar[int]
    CLASS_METRICS_FIELD_NUMBER: _ClassVar[int]
    CLASS_METRICS_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    status: str
    failure: str
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    operators: _containers.RepeatedScalarFieldContainer[str]
    min_runtime: str
    sha256: str
    size: int
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    created_at: _timestamp_pb2.Timestamp
    tolerance: Tolerance
    calibrated: bool
    class_metrics: _containers.RepeatedCompositeFieldContainer[ClassVariantMetrics]
    class_metrics_coverage: MetricsCoverage
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[str] = ..., failure: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., operators: _Optional[_Iterable[str]] = ..., min_runtime: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tolerance: _Optional[_Union[Tolerance, _Mapping]] = ..., calibrated: _Optional[bool] = ..., class_metrics: _Optional[_Iterable[_Union[ClassVariantMetrics, _Mapping]]] = ..., class_metrics_coverage: _Optional[_Union[MetricsCoverage, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name", "version", "by_class")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BY_CLASS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    by_class: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., by_class: _Optional[bool] = ...) -> None: ...

class ClassVariantMetrics(_message.Message):
    __slots__ = ("hardware_class", "variant", "devices", "windows", "inferences", "errors", "nonfinite", "latency_p50_ms", "latency_p95_ms")
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    hardware_class: HardwareClass
    variant: str
    devices: int
    windows: int
    inferences: int
    errors: int
    nonfinite: int
    latency_p50_ms: float
    latency_p95_ms: float
    def __init__(self, hardware_class: _Optional[_Union[HardwareClass, _Mapping]] = ..., variant: _Optional[str] = ..., devices: _Optional[int] = ..., windows: _Optional[int] = ..., inferences: _Optional[int] = ..., errors: _Optional[int] = ..., nonfinite: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ...) -> None: ...

class DeviceModel(_message.Message):
    __slots__ = ("model", "desired", "active", "state", "message", "finding")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    model: str
    desired: ModelRef
    active: ModelRef
    state: str
    message: str
    finding: Finding
    def __init__(self, model: _Optional[str] = ..., desired: _Optional[_Union[ModelRef, _Mapping]] = ..., active: _Optional[_Union[ModelRef, _Mapping]] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., finding: _Optional[_Union[Finding, _Mapping]] = ...) -> None: ...

class DeviceModelMetrics(_message.Message):
    __slots__ = ("model", "version", "variant", "windows", "inferences", "errors", "nonfinite", "latency_p50_ms", "latency_p95_ms", "first_window_start", "last_window_end")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    LAST_WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    variant: str
    windows: int
    inferences: int
    errors: int
    nonfinite: int
    latency_p50_ms: float
    latency_p95_ms: float
    first_window_start: _timestamp_pb2.Timestamp
    last_window_end: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., windows: _Optional[int] = ..., inferences: _Optional[int] = ..., errors: _Optional[int] = ..., nonfinite: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., first_window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricsCoverage(_message.Message):
    __slots__ = ("windows_considered", "truncated", "max_windows")
    WINDOWS_CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    MAX_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows_considered: int
    truncated: bool
    max_windows: int
    def __init__(self, windows_considered: _Optional[int] = ..., truncated: _Optional[bool] = ..., max_windows: _Optional[int] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "name", "labels", "hardware", "last_seen", "models", "enrolled_at", "desired_sequence", "revoked_at", "metrics", "metrics_coverage", "hardware_class", "hardware_history")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    DESIRED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    labels: _containers.ScalarMap[str, str]
    hardware: HardwareProfile
    last_seen: _timestamp_pb2.Timestamp
    models: _containers.RepeatedCompositeFieldContainer[DeviceModel]
    enrolled_at: _timestamp_pb2.Timestamp
    desired_sequence: int
    revoked_at: _timestamp_pb2.Timestamp
    metrics: _containers.RepeatedCompositeFieldContainer[DeviceModelMetrics]
    metrics_coverage: MetricsCoverage
    hardware_class: HardwareClass
    hardware_history: _containers.RepeatedCompositeFieldContainer[ProfileChange]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., hardware: _Optional[_Union[HardwareProfile, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., models: _Optional[_Iterable[_Union[DeviceModel, _Mapping]]] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., desired_sequence: _Optional[int] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[DeviceModelMetrics, _Mapping]]] = ..., metrics_coverage: _Optional[_Union[MetricsCoverage, _Mapping]] = ..., hardware_class: _Optional[_Union[HardwareClass, _Mapping]] = ..., hardware_history: _Optional[_Iterable[_Union[ProfileChange, _Mapping]]] = ...) -> None: ...

class ProfileChange(_message.Message):
    __slots__ = ("recorded_at", "hardware_class", "profile")
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    recorded_at: _timestamp_pb2.Timestamp
    hardware_class: HardwareClass
    profile: HardwareProfile
    def __init__(self, recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hardware_class: _Optional[_Union[HardwareClass, _Mapping]] = ..., profile: _Optional[_Union[HardwareProfile, _Mapping]] = ...) -> None: ...

class HardwareClass(_message.Message):
    __slots__ = ("key", "name", "fields", "devices")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    fields: _containers.ScalarMap[str, str]
    devices: int
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., devices: _Optional[int] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("selector", "page_size", "page_token")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    selector: str
    page_size: int
    page_token: str
    def __init__(self, selector: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices", "next_page_token")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    next_page_token: str
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeDeviceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class LabelDeviceRequest(_message.Message):
    __slots__ = ("id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateRolloutRequest(_message.Message):
    __slots__ = ("model", "version", "selector", "variant", "prefer", "plan")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    selector: str
    variant: str
    prefer: str
    plan: RolloutPlan
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., selector: _Optional[str] = ..., variant: _Optional[str] = ..., prefer: _Optional[str] = ..., plan: _Optional[_Union[RolloutPlan, _Mapping]] = ...) -> None: ...

class RolloutPlan(_message.Message):
    __slots__ = ("waves", "bake_seconds", "success_threshold", "max_failures", "min_finished", "step_timeout_seconds", "max_per_minute", "start_at", "window", "dynamic", "gates")
    WAVES_FIELD_NUMBER: _ClassVar[int]
    BAKE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    MIN_FINISHED_FIELD_NUMBER: _ClassVar[int]
    STEP_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    waves: _containers.RepeatedScalarFieldContainer[str]
    bake_seconds: int
    success_threshold: float
    max_failures: str
    min_finished: int
    step_timeout_seconds: int
    max_per_minute: int
    start_at: _timestamp_pb2.Timestamp
    window: MaintenanceWindow
    dynamic: bool
    gates: Gates
    def __init__(self, waves: _Optional[_Iterable[str]] = ..., bake_seconds: _Optional[int] = ..., success_threshold: _Optional[float] = ..., max_failures: _Optional[str] = ..., min_finished: _Optional[int] = ..., step_timeout_seconds: _Optional[int] = ..., max_per_minute: _Optional[int] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ..., dynamic: _Optional[bool] = ..., gates: _Optional[_Union[Gates, _Mapping]] = ...) -> None: ...

class MaintenanceWindow(_message.Message):
    __slots__ = ("cron", "duration_seconds", "time_zone")
    CRON_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    cron: str
    duration_seconds: int
    time_zone: str
    def __init__(self, cron: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., time_zone: _Optional[str] = ...) -> None: ...

class Gates(_message.Message):
    __slots__ = ("max_p95_regression", "max_error_rate", "max_nonfinite_rate", "max_rollbacks", "min_inferences", "on_breach")
    MAX_P95_REGRESSION_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_NONFINITE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_ROLLBACKS_FIELD_NUMBER: _ClassVar[int]
    MIN_INFERENCES_FIELD_NUMBER: _ClassVar[int]
    ON_BREACH_FIELD_NUMBER: _ClassVar[int]
    max_p95_regression: float
    max_error_rate: float
    max_nonfinite_rate: float
    max_rollbacks: int
    min_inferences: int
    on_breach: str
    def __init__(self, max_p95_regression: _Optional[float] = ..., max_error_rate: _Optional[float] = ..., max_nonfinite_rate: _Optional[float] = ..., max_rollbacks: _Optional[int] = ..., min_inferences: _Optional[int] = ..., on_breach: _Optional[str] = ...) -> None: ...

class Wave(_message.Message):
    __slots__ = ("index", "devices", "succeeded", "failed", "state", "skipped", "no_compatible", "queued", "in_progress", "held", "timed_out", "rolled_back", "target", "started_at", "completed_at", "bake_until", "finished_at", "gates")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NO_COMPATIBLE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    BAKE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    index: int
    devices: int
    succeeded: int
    failed: int
    state: str
    skipped: int
    no_compatible: int
    queued: int
    in_progress: int
    held: int
    timed_out: int
    rolled_back: int
    target: int
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    bake_until: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    gates: _containers.RepeatedCompositeFieldContainer[GateReading]
    def __init__(self, index: _Optional[int] = ..., devices: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., state: _Optional[str] = ..., skipped: _Optional[int] = ..., no_compatible: _Optional[int] = ..., queued: _Optional[int] = ..., in_progress: _Optional[int] = ..., held: _Optional[int] = ..., timed_out: _Optional[int] = ..., rolled_back: _Optional[int] = ..., target: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bake_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gates: _Optional[_Iterable[_Union[GateReading, _Mapping]]] = ...) -> None: ...

class GateReading(_message.Message):
    __slots__ = ("gate", "hardware_class", "class_name", "verdict", "observed", "limit", "baseline", "new_value", "inferences", "baseline_inferences", "baseline_source", "detail")
    GATE_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_CLASS_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_INFERENCES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    gate: str
    hardware_class: str
    class_name: str
    verdict: str
    observed: float
    limit: float
    baseline: float
    new_value: float
    inferences: int
    baseline_inferences: int
    baseline_source: str
    detail: str
    def __init__(self, gate: _Optional[str] = ..., hardware_class: _Optional[str] = ..., class_name: _Optional[str] = ..., verdict: _Optional[str] = ..., observed: _Optional[float] = ..., limit: _Optional[float] = ..., baseline: _Optional[float] = ..., new_value: _Optional[float] = ..., inferences: _Optional[int] = ..., baseline_inferences: _Optional[int] = ..., baseline_source: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("id", "model", "version", "selector", "state", "waves", "created_at", "updated_at", "created_by", "variant", "failed_devices", "prefer", "plan", "reason", "previous_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    FAILED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    version: str
    selector: str
    state: str
    waves: _containers.RepeatedCompositeFieldContainer[Wave]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    created_by: str
    variant: str
    failed_devices: _containers.RepeatedCompositeFieldContainer[FailedDevice]
    prefer: str
    plan: RolloutPlan
    reason: str
    previous_version: str
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., selector: _Optional[str] = ..., state: _Optional[str] = ..., waves: _Optional[_Iterable[_Union[Wave, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., variant: _Optional[str] = ..., failed_devices: _Optional[_Iterable[_Union[FailedDevice, _Mapping]]] = ..., prefer: _Optional[str] = ..., plan: _Optional[_Union[RolloutPlan, _Mapping]] = ..., reason: _Optional[str] = ..., previous_version: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("at", "actor", "action", "subject", "subject_id", "reason", "details_json", "wave", "actor_role")
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    WAVE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ROLE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    subject: str
    subject_id: str
    reason: str
    details_json: str
    wave: int
    actor_role: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., subject: _Optional[str] = ..., subject_id: _Optional[str] = ..., reason: _Optional[str] = ..., details_json: _Optional[str] = ..., wave: _Optional[int] = ..., actor_role: _Optional[str] = ...) -> None: ...

class RolloutHistoryRequest(_message.Message):
    __slots__ = ("id", "page_size", "page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    page_size: int
    page_token: str
    def __init__(self, id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RolloutHistoryResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "actor", "subject_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    actor: str
    subject_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., actor: _Optional[str] = ..., subject_id: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FailedDevice(_message.Message):
    __slots__ = ("device_id", "message", "state")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    message: str
    state: str
    def __init__(self, device_id: _Optional[str] = ..., message: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "next_page_token")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    next_page_token: str
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ChangeRolloutRequest(_message.Message):
    __slots__ = ("id", "action", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    action: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model", "inputs")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    inputs: _containers.MessageMap[str, Tensor]
    def __init__(self, model: _Optional[str] = ..., inputs: _Optional[_Mapping[str, Tensor]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("outputs", "ref", "latency_ms")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.MessageMap[str, Tensor]
    ref: ModelRef
    latency_ms: float
    def __init__(self, outputs: _Optional[_Mapping[str, Tensor]] = ..., ref: _Optional[_Union[ModelRef, _Mapping]] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class AgentStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentModelStatus(_message.Message):
    __slots__ = ("model", "version", "variant", "sha256", "state", "message", "inferences", "errors", "latency_p50_ms", "latency_p95_ms", "previous_sha256")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SHA256_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    variant: str
    sha256: str
    state: str
    message: str
    inferences: int
    errors: int
    latency_p50_ms: float
    latency_p95_ms: float
    previous_sha256: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ..., sha256: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., inferences: _Optional[int] = ..., errors: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., previous_sha256: _Optional[str] = ...) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("device_id", "server", "desired_sequence", "models", "last_sync", "last_error")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    DESIRED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    server: str
    desired_sequence: int
    models: _containers.RepeatedCompositeFieldContainer[AgentModelStatus]
    last_sync: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, device_id: _Optional[str] = ..., server: _Optional[str] = ..., desired_sequence: _Optional[int] = ..., models: _Optional[_Iterable[_Union[AgentModelStatus, _Mapping]]] = ..., last_sync: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...
