"""Labels, NAME[:VERSION] references and a rollout plan's small languages (waves, shares,
counts, start times, cron windows, time zones): accepted forms and refused inputs."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.cli.parsing import (
    ModelRef,
    parse_count_or_share,
    parse_cron,
    parse_label,
    parse_label_list,
    parse_labels,
    parse_model_ref,
    parse_share,
    parse_start_at,
    parse_time_zone,
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
    assert parse_waves("1%,10%,50%,100%") == ["1%", "10%", "50%", "100%"]
    assert parse_waves("100%") == ["100%"]
    assert parse_waves("0.5%, 100%") == ["0.5%", "100%"]
    assert parse_waves("100.0%") == ["100%"]


def test_waves_take_device_counts_increasing_within_their_kind() -> None:
    assert parse_waves("5,10%,50%,100%") == ["5", "10%", "50%", "100%"]
    assert parse_waves("1,50,10%,100%") == ["1", "50", "10%", "100%"]
    assert parse_waves("20%,5,100%") == ["20%", "5", "100%"]   # each kind on its own


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("10,100", "last wave"), ("x%,100%", "not a percentage"), ("", "not a device count"),
     ("0%,100%", "above 0%"), ("50%,120%", "at most 100%"), ("50%,10%,100%", "increase"),
     ("10%,50%", "last wave"), ("10%,10%,100%", "increase"), ("5,5,100%", "increase"),
     ("0,100%", "at least 1"), ("-5,100%", "not a device count"), ("1.5,100%", "not a device"),
     ("nan%,100%", "not a percentage"), ("5,,100%", "not a device count")],
)
def test_waves_refuse_malformed_lists(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_waves(text)


def test_the_last_wave_hint_shows_the_list_ending_at_100() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 5,10%,100%"):
        parse_waves("5,10%")


@pytest.mark.parametrize(("text", "share"), [("95%", 0.95), ("0.95", 0.95), ("0", 0.0),
                                             ("100%", 1.0), ("0.5%", 0.005), (" 1 ", 1.0)])
def test_shares_as_percentages_or_fractions(text: str, share: float) -> None:
    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize(("text", "complaint"), [("lots", "not a share"), ("101%", "from 0 to"),
                                                 ("-1%", "from 0 to"), ("1.5", "from 0 to"),
                                                 ("nan", "from 0 to"), ("inf%", "percentage"),
                                                 ("%", "percentage")])
def test_shares_refuse_what_is_not_one(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_share(text)


def test_a_share_may_go_past_one_where_allowed() -> None:
    assert parse_share("250%", maximum=100.0) == pytest.approx(2.5)


@pytest.mark.parametrize(("text", "wire"), [("3", "3"), ("0", "0"), ("5%", "5%"),
                                            ("2.50%", "2.5%"), ("007", "7")])
def test_count_or_share_as_the_wire_spells_it(text: str, wire: str) -> None:
    assert parse_count_or_share(text) == wire


@pytest.mark.parametrize("text", ["-1", "3.5", "x", "120%", "", "-1%", "nan%"])
def test_count_or_share_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count_or_share(text)


NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def test_start_at_as_rfc3339_in_utc_or_a_delay_from_now() -> None:
    assert parse_start_at("2026-05-01T22:00:00Z") == dt.datetime(2026, 5, 1, 22, tzinfo=dt.UTC)
    assert parse_start_at("2026-05-01T22:00:00+02:00") == dt.datetime(2026, 5, 1, 20,
                                                                       tzinfo=dt.UTC)
    assert parse_start_at("+30m", now=NOW) == dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    assert parse_start_at("+1h30m", now=NOW) == NOW + dt.timedelta(minutes=90)


@pytest.mark.parametrize(("text", "complaint"), [("2026-05-01T22:00:00", "no time zone"),
                                                 ("tomorrow", "RFC 3339"), ("+30", "no unit"),
                                                 ("+", "empty duration"), ("", "RFC 3339")])
def test_start_at_refuses_ambiguous_or_malformed_times(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_start_at(text, now=NOW)


def test_cron_needs_five_fields_of_cron_characters() -> None:
    assert parse_cron("0  22 * *   mon-fri") == "0 22 * * mon-fri"
    assert parse_cron("*/15 1,3 1-7 jan-mar 0") == "*/15 1,3 1-7 jan-mar 0"
    with pytest.raises(ValueError, match="has 4 fields; give 5"):
        parse_cron("0 22 * *")
    with pytest.raises(ValueError, match="has 6 fields"):
        parse_cron("0 0 22 * * *")
    with pytest.raises(ValueError, match="cron field '22;' "):
        parse_cron("0 22; * * *")


def test_time_zone_names_are_checked_for_shape() -> None:
    assert parse_time_zone("Europe/Berlin") == "Europe/Berlin"
    assert parse_time_zone("UTC") == "UTC"
    assert parse_time_zone("Etc/GMT+1") == "Etc/GMT+1"
    assert parse_time_zone("America/Argentina/Buenos_Aires") == "America/Argentina/Buenos_Aires"
    for bad in ("", "Europe Berlin", "/Berlin", "Europe/", "+02:00"):
        with pytest.raises(ValueError, match="IANA"):
            parse_time_zone(bad)
