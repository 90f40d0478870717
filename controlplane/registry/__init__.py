"""The registry domain: models, versions, variants, their artifacts and their signed manifests.

Database-free building blocks live in their own modules and are re-exported here:
``tflite`` (parse and validate a model), ``store`` (content-addressed artifact store),
``signing`` (the ed25519 key and the documents it signs; their formats are
``protos.contract``'s), ``measure`` (run a model in an interpreter),
``errors`` (the domain's exceptions). ``models``, ``services`` and ``tasks`` hold the tables, the
push service and the Celery tasks; import them by module, they are not re-exported.
"""

from controlplane.registry.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    InterpreterUnavailableError,
    InvalidModelError,
    ModelRunError,
    ModelTooLargeError,
    SigningKeyError,
    StorageError,
)
from controlplane.registry.measure import Measurement, measure_latency, reference_outputs
from controlplane.registry.signing import Signer, build_desired_state, build_manifest
from controlplane.registry.store import (
    ArtifactStore,
    FilesystemArtifactStore,
    StoredArtifact,
    Upload,
)
from controlplane.registry.tflite import ModelInfo, inspect_model

__all__ = [
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "FilesystemArtifactStore",
    "InterpreterUnavailableError",
    "InvalidModelError",
    "Measurement",
    "ModelInfo",
    "ModelRunError",
    "ModelTooLargeError",
    "Signer",
    "SigningKeyError",
    "StorageError",
    "StoredArtifact",
    "Upload",
    "build_desired_state",
    "build_manifest",
    "inspect_model",
    "measure_latency",
    "reference_outputs",
]
