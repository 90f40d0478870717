"""Checks for what requests carry, shared by the domain services: text, ids, code words, wire
timestamps, 64-bit counts, label maps and selectors.

Why they exist: PostgreSQL refuses NUL in text and integers past 2^63 - 1, SQLite keeps NaN as
NULL, Python's datetime ends at year 9999, and anything a request carries may end up in a
listing every operator reads. Input that breaks one of these is the caller's mistake and must
be refused as such (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a count over a configured
limit) before it reaches a query, never surface as a database error (INTERNAL).

Invariants: every check raises a ``controlplane.errors`` category whose message names the field
and, for a configured bound, its setting; no message quotes more than ``SHOWN_CHARS`` characters
of what it was given (``shown``), so an error about a megabyte of input is still a short status.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError, ResourceExhaustedError

#: The largest integer a signed 64-bit column (PostgreSQL BIGINT, SQLite INTEGER) holds.
MAX_INT64 = 2**63 - 1
#: google.protobuf.Timestamp's range, which is Python's too: 0001-01-01T00:00:00Z to
#: 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
SHOWN_CHARS = 40

_CODE_WORD = re.compile(r"[a-z][a-z_]{0,31}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a message may quote it: its repr, cut after ``limit`` characters."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID as this server writes them (36 characters, lower-case hex):
    device, rollout and metric-window ids."""
    return _UUID.fullmatch(value) is not None


def is_token_id(value: str) -> bool:
    """Whether ``value`` is an operator or enrollment token id (16 lower-case hex characters)."""
    return _TOKEN_ID.fullmatch(value) is not None


def check_name(value: str, *, what: str, max_chars: int, setting: str) -> str:
    """A one-line name shown in tables: at most ``max_chars`` characters, no control characters
    (NUL among them). Returns it unchanged. Raises InvalidArgumentError."""
    if len(value) > max_chars:
        raise InvalidArgumentError(
            f"{what} {shown(value)} is too long: at most {max_chars} characters "
            f"(setting {setting})")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidArgumentError(
            f"{what} {shown(value)} holds a control character (NUL, newline, ...): use "
            f"printable text")
    return value


def check_code_word(value: str, *, what: str) -> str:
    """A code word agents and the server agree on (an install state, a finding's reason): a
    lower-case word of at most 32 letters and '_'. Returns it unchanged. Raises
    InvalidArgumentError."""
    if not _CODE_WORD.fullmatch(value):
        raise InvalidArgumentError(
            f"bad {what} {shown(value)}: a lower-case word of at most 32 letters and '_'")
    return value


def cut_text(value: str, max_chars: int) -> str:
    """Free text kept to at most ``max_chars`` characters instead of being refused: NUL (which
    PostgreSQL cannot store) becomes U+FFFD, and a longer text ends in a marker saying how many
    characters were cut, so a reader sees that something is missing."""
    value = value.replace("\x00", "\ufffd")
    if len(value) <= max_chars:
        return value
    marker = f"... [cut from {len(value)} characters]"
    if len(marker) >= max_chars:  # no room for a marker in so small a bound
        return value[:max_chars]
    return value[: max_chars - len(marker)] + marker


def check_int64(value: int, *, what: str) -> int:
    """``value`` if a signed 64-bit column can hold it (uint64 fields reach 2^64 - 1).
    Raises InvalidArgumentError."""
    if not 0 <= value <= MAX_INT64:
        raise InvalidArgumentError(f"{what} {value} is out of range: at most 2^63 - 1")
    return value


@dataclass(frozen=True)
class WireTime:
    """A ``google.protobuf.Timestamp``'s two fields as they arrived, not yet checked; (0, 0)
    is an unset timestamp."""

    seconds: int = 0
    nanos: int = 0

    @classmethod
    def of(cls, value: dt.datetime) -> WireTime:
        delta = value - _EPOCH
        micros = delta // dt.timedelta(microseconds=1)
        return cls(seconds=micros // 1_000_000, nanos=micros % 1_000_000 * 1000)

    def to_datetime(self, *, what: str, default: dt.datetime) -> dt.datetime:
        """The aware UTC datetime, or ``default`` when unset. Raises InvalidArgumentError for
        seconds outside years 1-9999 or nanos outside 0..999,999,999 (as protobuf defines a
        Timestamp); sub-microsecond digits are dropped."""
        if self.seconds == 0 and self.nanos == 0:
            return default
        if not MIN_TIMESTAMP_SECONDS <= self.seconds <= MAX_TIMESTAMP_SECONDS:
            raise InvalidArgumentError(
                f"{what} ({self.seconds} s since 1970) is outside the years 1-9999")
        if not 0 <= self.nanos < 1_000_000_000:
            raise InvalidArgumentError(f"{what} has nanos {self.nanos}: use 0-999999999")
        return _EPOCH + dt.timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)


def check_label_count(labels: Mapping[str, object], *, settings: Settings, what: str) -> None:
    """Refuse more than ``settings.max_labels`` labels on one device or enrollment token.
    Raises ResourceExhaustedError naming the setting."""
    if len(labels) > settings.max_labels:
        raise ResourceExhaustedError(
            f"{what} would carry {len(labels)} labels; at most {settings.max_labels} "
            f"(setting max_labels)")


def check_selector_text(text: str, *, settings: Settings) -> str:
    """A selector's text, which a rollout stores as given, bounded before it is parsed.
    Raises InvalidArgumentError naming the setting."""
    if len(text) > settings.max_selector_chars:
        raise InvalidArgumentError(
            f"the selector is {len(text)} characters; at most {settings.max_selector_chars} "
            f"(setting max_selector_chars)")
    return text
