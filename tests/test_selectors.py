"""Labels are validated as maps and selectors pair by pair (audit findings L3 and L6)."""

from __future__ import annotations

import pytest

from controlplane.errors import InvalidArgumentError
from controlplane.selectors import parse_selector, parse_target, validate_labels


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
    assert parse_target("*") == {} and parse_selector("") == {} and parse_selector("*") == {}
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
