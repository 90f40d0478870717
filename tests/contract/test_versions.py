"""protos.contract.versions: one parser for runtime floors and devices' interpreter versions."""

from __future__ import annotations

import pytest

from protos.contract import ContractError
from protos.contract.versions import at_least, is_version, newest, version_key


def test_releases_order_numerically_and_trailing_zeros_do_not_count() -> None:
    assert version_key("2.14.0") > version_key("2.3.0")
    assert version_key("2.14") == version_key("2.14.0")
    assert newest(["2.3.0", "2.14.0", "2.9.1"]) == "2.14.0"


def test_a_pre_release_is_below_its_release() -> None:
    assert version_key("2.14.0rc1") < version_key("2.14.0")
    assert version_key("2.19.0.dev20250101") < version_key("2.19.0")
    assert at_least("2.14.0rc1", "2.13.0")
    assert not at_least("2.14.0rc1", "2.14.0")


def test_post_releases_and_local_tags_read_as_their_release() -> None:
    assert version_key("2.14.0.post1") == version_key("2.14.0")
    assert version_key("2.14.0+cpu") == version_key("2.14.0")


@pytest.mark.parametrize("bad", ["", "unknown", "2.x", "v", "2..1", "1.2.3.4.5", "9" * 80])
def test_strings_that_are_no_version_are_refused(bad: str) -> None:
    """Input tried: empty, a word, a letter for a number, a bare v, an empty part, five parts,
    an 80-character number."""
    assert not is_version(bad)
    with pytest.raises(ContractError):
        version_key(bad)
