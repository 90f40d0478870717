"""Labels are validated as maps and selectors pair by pair (audit findings L3 and L6)."""

from __future__ import annotations

import pytest

from controlplane.errors import InvalidArgumentError
from controlplane.fleet.classes import hardware_class, hardware_facts
from controlplane.selectors import Selector, parse_selector, parse_target, validate_labels


@pytest.mark.parametrize("selector", [",", " , ", ",,", "site=berlin,", ",site=berlin",
                                      "site=berlin,,tier=canary"])
def test_selectors_made_of_empty_pairs_do_not_target_the_whole_fleet(selector: str) -> None:
    """Input tried (L3): a lone comma, one between spaces, two commas, and stray commas around
    real pairs: each used to parse as "no condition", i.e. every device."""
    with pytest.raises(InvalidArgumentError, match="empty pair"):
        parse_target(selector)
    with pytest.raises(InvalidArgumentError, match="empty pair"):
        parse_selector(selector)


def test_the_whole_fleet_takes_the_explicit_star_and_an_empty_target_is_refused() -> None:
    assert parse_target("*") == Selector() == parse_selector("") == parse_selector("*")
    with pytest.raises(InvalidArgumentError, match="every device"):
        parse_target("  ")


def test_a_comma_in_a_label_value_cannot_set_another_label() -> None:
    """Input tried (L6): {"note": "ok,site=paris"}, which once became two labels when the map
    was joined into text and parsed again."""
    with pytest.raises(InvalidArgumentError, match="bad value 'ok,site=paris' for label 'note'"):
        validate_labels({"note": "ok,site=paris"})
    with pytest.raises(InvalidArgumentError, match="bad value"):
        validate_labels({"site": "a=b"})


@pytest.mark.parametrize(("labels", "says"), [
    ({"": "x"}, "bad label key"),
    ({"-site": "x"}, "bad label key"),
    ({"site": "x" * 64}, "bad value"),
    ({"k" * 64: "x"}, "bad label key"),
    ({"site": "b\x00"}, "bad value"),
    ({"site": ""}, "has no value"),
])
def test_malformed_label_maps_are_refused_naming_the_label(labels: dict[str, str],
                                                           says: str) -> None:
    """Input tried: an empty key, a key starting with '-', a 64-character value and key, a NUL
    byte in a value, an empty value where removal is not allowed."""
    with pytest.raises(InvalidArgumentError, match=says):
        validate_labels(labels)


def test_an_empty_value_removes_a_label_where_that_is_allowed() -> None:
    assert validate_labels({"site": ""}, allow_empty_values=True) == {"site": ""}


# --- hardware terms ------------------------------------------------------------------------------

BOARD = {"arch": "aarch64", "interpreter": {"name": "tflite-runtime", "version": "2.14.0"},
         "ram_bytes": str(4 * 2**30 - 200 * 2**20), "ram_available_bytes": str(3 * 2**30),
         "storage_free_bytes": str(900 * 2**20), "cpu_cores": 4, "os": "linux",
         "delegates": ["xnnpack", "edgetpu"]}


@pytest.mark.parametrize(("selector", "expected"), [
    ("arch=aarch64", True),
    ("arch!=aarch64", False),
    ("interpreter=tflite-runtime,ram_bytes>=1Gi", True),
    ("ram_bytes>=4Gi", False),                 # 4 GiB less 200 MiB
    ("ram_available_bytes<3Gi", False),
    ("ram_available_bytes<=3Gi", True),
    ("storage_free_bytes>512Mi,cpu_cores>=4", True),
    ("interpreter_version>=2.9.0", True),      # compared as versions, not text
    ("interpreter_version<2.14.0", False),
    ("delegate=edgetpu", True),
    ("delegate=gpu", False),
    ("delegate!=gpu", True),
    (f"class={hardware_class(BOARD).key}", True),
    (f"class={hardware_class(BOARD).name}", True),
    ("class=hc-000000000000", False),
    ("site=berlin,arch=aarch64", True),
    ("site!=berlin", False),
    ("labels.arch=arm", True),                 # a label named like a hardware field
    ("tier=canary", False),
])
def test_hardware_and_label_terms(selector: str, expected: bool) -> None:
    labels = {"site": "berlin", "arch": "arm"}
    assert parse_selector(selector).matches(labels, hardware_facts(BOARD)) is expected


def test_a_device_without_a_profile_matches_only_negative_and_lower_bound_terms() -> None:
    facts = hardware_facts(None)
    assert not parse_selector("arch=aarch64").matches({}, facts)
    assert parse_selector("arch!=aarch64").matches({}, facts)
    assert not parse_selector("ram_bytes>=1").matches({}, facts)


@pytest.mark.parametrize(("selector", "says"), [
    ("ram_bytes>=lots", "a whole number"),
    ("ram_bytes>=1Gb", "a whole number"),
    ("site>=berlin", "compares with = or != only"),
    ("arch>arm", "compares with = or != only"),
    ("arch=", "bad value"),
    ("arch=a b", "bad value"),
    ("ram_bytes", "is not KEY=VALUE"),
    ("arch=x,arch=y", "given twice"),
])
def test_malformed_hardware_terms_are_refused_naming_the_term(selector: str, says: str) -> None:
    """Input tried: a size that is no number, a decimal unit, an ordering on a label and on a
    text field, an empty and a spaced value, a bare key, one field given twice."""
    with pytest.raises(InvalidArgumentError, match=says):
        parse_selector(selector)


def test_classes_group_boards_of_one_line_and_part_others() -> None:
    same = {**BOARD, "ram_bytes": str(4 * 2**30), "storage_free_bytes": "1",
            "interpreter": {"name": "tflite-runtime", "version": "2.14.1"}}
    assert hardware_class(same) == hardware_class(BOARD)
    assert hardware_class(BOARD).name == "aarch64/tflite-runtime-2.14/4G/edgetpu"
    other = {**BOARD, "delegates": ["xnnpack"]}
    assert hardware_class(other).key != hardware_class(BOARD).key
    assert hardware_class(other).name.endswith("/cpu")
    assert hardware_class({}).name == "unknown/unknown-unknown/unknown/cpu"
    assert hardware_class(BOARD).key.startswith("hc-") and len(hardware_class(BOARD).key) == 15
