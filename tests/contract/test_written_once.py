"""What both sides of the wire agree on is written once, in ``protos/contract``: neither
``agent`` nor ``controlplane`` spells it again."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

#: A spelling that belongs to the contract, and what it is.
CONTRACT_SPELLINGS = {
    '"edgefleet.manifest.v1"': "the manifest type string",
    '"edgefleet.desired_state.v1"': "the desired-state type string",
    "[0-9a-f]{64}": "the sha256 digest pattern",
    "{16,128}": "the enrollment-key pattern",
    "tflite_runtime.interpreter": "the interpreter table",
    "ai_edge_litert.interpreter": "the interpreter table",
    "sort_keys=True, separators": "canonical JSON",
    "b64decode(": "the nested signed-document form",
    "os.replace(": "the crash-safe writer",
    "- zero_point": "quantization arithmetic",
    "/ scale": "quantization arithmetic",
    "bisect_left(": "histogram bucket placement",
}


def _sources() -> list[Path]:
    return [p for package in ("agent", "controlplane") for p in (ROOT / package).rglob("*.py")]


@pytest.mark.parametrize("spelling", sorted(CONTRACT_SPELLINGS))
def test_the_contract_is_not_spelled_again_outside_protos_contract(spelling: str) -> None:
    found = [str(p.relative_to(ROOT)) for p in _sources() if spelling in p.read_text()]
    assert found == [], f"{CONTRACT_SPELLINGS[spelling]} belongs in protos/contract"


def test_the_contract_itself_spells_each_of_them() -> None:
    contract = "".join(p.read_text() for p in (ROOT / "protos" / "contract").rglob("*.py"))
    missing = [s for s in CONTRACT_SPELLINGS if s not in contract
               and s not in ("sort_keys=True, separators",)]
    assert missing == []
