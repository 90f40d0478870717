"""The registry domain: models, versions, variants, their artifacts and their signed manifests.

Database-free building blocks live in their own modules and are re-exported here:
``tflite`` (parse and validate a model), ``store`` (content-addressed artifact store),
``signing`` (ed25519 key and signed documents), ``measure`` (run a model in an interpreter),
``errors`` (the domain's exceptions). ``models``, ``services`` and ``tasks`` hold the tables, the
push service and the Celery tasks; import them by module, they are not re-exported.
"""

from controlplane.registry.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    DuplicateVersionError,
    InterpreterUnavailableError,
    InvalidModelError,
    ModelNotFoundError,
    ModelRunError,
    ModelTooLargeError,
    RegistryError,
    SigningKeyError,
    StorageError,
)
from controlplane.registry.measure import Measurement, measure_latency, reference_outputs
from controlplane.registry.signing import (
    SignedDoc,
    Signer,
    build_desired_state,
    build_manifest,
    canonical_json,
    parse_rfc3339,
    rfc3339,
)
from controlplane.registry.store import (
    ArtifactStore,
    FilesystemArtifactStore,
    StoredArtifact,
    Upload,
    check_sha256,
)
from controlplane.registry.tflite import (
    ModelInfo,
    Quantization,
    TensorInfo,
    inspect_model,
    tensor_to_dict,
    version_tuple,
)

__all__ = [
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "DuplicateVersionError",
    "FilesystemArtifactStore",
    "InterpreterUnavailableError",
    "InvalidModelError",
    "Measurement",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRunError",
    "ModelTooLargeError",
    "Quantization",
    "RegistryError",
    "SignedDoc",
    "Signer",
    "SigningKeyError",
    "StorageError",
    "StoredArtifact",
    "TensorInfo",
    "Upload",
    "build_desired_state",
    "build_manifest",
    "canonical_json",
    "check_sha256",
    "inspect_model",
    "measure_latency",
    "parse_rfc3339",
    "reference_outputs",
    "rfc3339",
    "tensor_to_dict",
    "version_tuple",
]
