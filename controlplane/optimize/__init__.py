"""The optimize domain: a pushed float TFLite model's optimized variants, measured and signed.

Database-free building blocks live in their own modules and are re-exported here: ``recipes``
(which variants a model gets, ``plan_variants``, and making one, ``build_variant``, with
ai-edge-quantizer) and ``errors`` (the domain's exceptions). ai-edge-quantizer is the optional
``optimize`` extra: importing this package never needs it, only ``build_variant`` does.

The rest are imported by module: ``build`` and ``evaluate`` (the quantizer and the interpreters,
each in a child process, through ``isolation``), ``inputs`` (what variants are measured on),
``accuracy`` (figures against the reference, and the tolerance), ``golden`` (each variant's
golden samples), ``pipeline`` (the steps, idempotent and resumable) and ``tasks`` (its Celery
task). The variant tables are the registry's.
"""

from controlplane.optimize.errors import QuantizerNotInstalledError, VariantBuildError
from controlplane.optimize.recipes import (
    BUILT_KINDS,
    KINDS,
    Planned,
    build_variant,
    plan_variants,
    variant_kind,
    weight_precision,
)

__all__ = [
    "BUILT_KINDS",
    "KINDS",
    "Planned",
    "QuantizerNotInstalledError",
    "VariantBuildError",
    "build_variant",
    "plan_variants",
    "variant_kind",
    "weight_precision",
]
