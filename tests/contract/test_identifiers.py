"""protos.contract.identifiers: digests and enrollment keys are checked the same on both sides."""

from __future__ import annotations

import secrets

import pytest

from protos.contract import ContractError
from protos.contract.identifiers import check_sha256, is_enrollment_key, is_sha256


def test_a_sha256_is_64_lowercase_hex() -> None:
    digest = "ab" * 32
    assert is_sha256(digest) and check_sha256(digest) == digest


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "ab" * 32 + "\n", "../../etc/passwd",
                                 "ab" * 31 + "/x", None, 123])
def test_anything_else_is_not_a_sha256(bad: object) -> None:
    """Input tried: upper case, 62 characters, a trailing newline, a path, None, a number."""
    assert not is_sha256(bad)
    with pytest.raises(ContractError, match="sha256"):
        check_sha256(bad)


def test_the_agents_own_keys_have_the_accepted_shape() -> None:
    assert is_enrollment_key(secrets.token_urlsafe(32))


@pytest.mark.parametrize("bad", ["short", "x" * 129, "has space in it..", "semi;colon;key;x", ""])
def test_enrollment_keys_outside_the_shape_are_refused(bad: str) -> None:
    assert not is_enrollment_key(bad)
