"""``ModelRef``: which variant of which model version, the key the agent files everything under."""

from __future__ import annotations

from dataclasses import dataclass

from protos import edgefleet_pb2 as pb


@dataclass(frozen=True)
class ModelRef:
    model: str
    version: str
    variant: str
    sha256: str

    def to_proto(self) -> pb.ModelRef:
        return pb.ModelRef(
            model=self.model, version=self.version, variant=self.variant, sha256=self.sha256
        )

    def __str__(self) -> str:
        return f"{self.model}:{self.version} ({self.variant}, {self.sha256[:12]})"
