"""Labels, NAME[:VERSION] references and wave lists: accepted forms and refused inputs."""

from __future__ import annotations

import pytest

from controlplane.cli.parsing import (
    ModelRef,
    parse_label,
    parse_label_list,
    parse_labels,
    parse_model_ref,
    parse_waves,
)


def test_label_list_splits_on_commas_and_trims() -> None:
    assert parse_label_list("site=berlin, tier=canary,") == {"site": "berlin", "tier": "canary"}


def test_label_keys_may_carry_dots_slashes_and_dashes() -> None:
    assert parse_label("example.com/rack-id=r_1", allow_empty_value=False) == (
        "example.com/rack-id", "r_1")


def test_empty_value_means_removal_only_where_allowed() -> None:
    assert parse_label("tier=", allow_empty_value=True) == ("tier", "")
    with pytest.raises(ValueError, match="empty value"):
        parse_label("tier=", allow_empty_value=False)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("site", "not key=value"), ("=berlin", "key ''"), ("si te=x", "invalid"),
     ("-site=x", "invalid"), ("", "not key=value")],
)
def test_label_refuses_malformed_pairs(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_label(text, allow_empty_value=True)


def test_label_list_refuses_a_key_given_twice() -> None:
    with pytest.raises(ValueError, match="given twice"):
        parse_labels(["a=1", "a=2"])


def test_label_list_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError, match="no labels"):
        parse_label_list(" , ")


def test_model_ref_with_and_without_version() -> None:
    assert parse_model_ref("face:1.2.0", require_version=True) == ModelRef("face", "1.2.0")
    assert parse_model_ref("face", require_version=False) == ModelRef("face", "")
    assert str(ModelRef("face", "")) == "face"
    assert str(ModelRef("face", "2")) == "face:2"


@pytest.mark.parametrize(
    ("text", "require_version", "complaint"),
    [("face", True, "needs a version"), (":1.0", False, "no name"),
     ("face:", False, "empty version"), ("face:1:2", True, "more than one")],
)
def test_model_ref_refuses_incomplete_references(
    text: str, require_version: bool, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_model_ref(text, require_version=require_version)


def test_waves_parse_increasing_percentages() -> None:
    assert parse_waves("1%,10%,50%,100%") == [1.0, 10.0, 50.0, 100.0]
    assert parse_waves("100%") == [100.0]
    assert parse_waves("0.5%, 100%") == [0.5, 100.0]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("10,100", "not a percentage"), ("x%,100%", "not a percentage"), ("", "not a percentage"),
     ("0%,100%", "above 0%"), ("50%,120%", "at most 100%"), ("50%,10%,100%", "increase"),
     ("10%,50%", "last wave"), ("10%,10%,100%", "increase")],
)
def test_waves_refuse_malformed_lists(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_waves(text)
