"""Labels, and selectors over labels and hardware: ``site=berlin,arch=aarch64,ram_bytes>=1Gi``.

A label map is validated as a map, key by key and value by value: a value can never hold a ``,``
or ``=`` that would make another label when the map is written out.

A selector is a comma-separated list of terms, every one of which must hold (AND). A term is
``KEY OP VALUE`` with OP one of ``=``, ``!=``, ``>=``, ``<=``, ``>``, ``<``. KEY is
- a hardware field (``HARDWARE_FIELDS``): ``class`` (a hardware class's key or name), ``arch``,
  ``interpreter``, ``interpreter_version`` (compared as a version), ``os``, ``delegate`` (the
  device has that delegate), and the numbers ``ram_bytes``, ``ram_available_bytes``,
  ``storage_free_bytes``, ``cpu_cores``, whose values may carry a binary unit
  (``Ki``, ``Mi``, ``Gi``, ``Ti``);
- ``labels.NAME`` for a label whose name is one of those fields;
- otherwise a label name. Labels compare as text: only ``=`` and ``!=``.
Every term must be a real ``key OP value`` (``,``, ``" , "`` and ``a=1,,b=2`` are refused, not
read as "no condition"). For listing, an empty selector or ``*`` selects everything. A rollout
target must be explicit: an empty one is refused (a forgotten flag must not update the whole
fleet) and ``*`` means every device.

Pure: the caller gives each device's labels and hardware facts (``hardware_facts`` in
``controlplane.fleet.classes``) to ``Selector.matches``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.errors import InvalidArgumentError
from protos.contract.versions import is_version, version_key

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}")
_VALUE = re.compile(r"[A-Za-z0-9_.\-]{0,63}")
_RULE = "letters, digits, '_', '.', '-' (keys also '/'), at most 63 characters"
WHOLE_FLEET = "*"


def validate_labels(
    labels: Mapping[str, str], *, allow_empty_values: bool = False
) -> dict[str, str]:
    """``labels`` checked key by key and value by value. Raises InvalidArgumentError naming
    the bad one. An empty value (``allow_empty_values``) means "remove this label"."""
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidArgumentError(f"bad label key {str(key)[:80]!r}: use {_RULE}")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidArgumentError(
                f"bad value {str(value)[:80]!r} for label {key!r}: use {_RULE}")
        if not value and not allow_empty_values:
            raise InvalidArgumentError(f"label {key!r} has no value")
        checked[key] = value
    return checked



TEXT_FIELDS = frozenset({"class", "arch", "interpreter", "interpreter_version", "os",
                         "delegate"})
NUMBER_FIELDS = frozenset({"ram_bytes", "ram_available_bytes", "storage_free_bytes",
                           "cpu_cores"})
HARDWARE_FIELDS = TEXT_FIELDS | NUMBER_FIELDS
LABEL_PREFIX = "labels."
_OPS = (">=", "<=", "!=", ">", "<", "=")   # two-character operators first
_HW_VALUE = re.compile(r"[A-Za-z0-9_.\-/+~]{1,64}")
_NUMBER = re.compile(r"(\d{1,19})(Ki|Mi|Gi|Ti)?")
_UNITS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


@dataclass(frozen=True)
class Term:
    """One condition: a label (``field`` None) or a hardware field, an operator and a value."""

    key: str
    op: str
    value: str
    field: str | None = None

    def holds(self, labels: Mapping[str, object], facts: Mapping[str, object]) -> bool:
        if self.field is None:
            present = str(labels[self.key]) if self.key in labels else None
            return (present == self.value) == (self.op == "=")
        have = facts.get(self.field)
        if self.field in ("delegate", "class"):   # facts hold the delegates, the class's key+name
            found = self.value in (have or ())    # type: ignore[operator]
            return found == (self.op == "=")
        if self.field in NUMBER_FIELDS:
            return _compare(int(have or 0), self.op, _number(self.value))  # type: ignore[call-overload]
        if self.field == "interpreter_version" and self.op not in ("=", "!=") \
                and is_version(str(have or "")) and is_version(self.value):
            return _compare(version_key(str(have)), self.op, version_key(self.value))
        if self.op in ("=", "!="):
            return (str(have or "") == self.value) == (self.op == "=")
        return False


@dataclass(frozen=True)
class Selector:
    """Every term must hold; no terms: every device."""

    terms: tuple[Term, ...] = ()

    def matches(self, labels: Mapping[str, object],
                facts: Mapping[str, object] | None = None) -> bool:
        return all(t.holds(labels, facts or {}) for t in self.terms)

    @property
    def label_terms(self) -> dict[str, str]:
        """The ``label=value`` terms, as labels (what a listing's page scope keys on)."""
        return {t.key: t.value for t in self.terms if t.field is None and t.op == "="}

    @property
    def scope(self) -> str:
        """A canonical text of the terms (what a page token is bound to)."""
        return ",".join(sorted(f"{t.key}{t.op}{t.value}" for t in self.terms))

    @property
    def needs_hardware(self) -> bool:
        return any(t.field is not None for t in self.terms)


def parse_labels(text: str, *, allow_empty_values: bool = False) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict. Raises InvalidArgumentError naming the bad pair (an empty pair
    included: ``a=1,,b=2`` or a lone ``,``)."""
    labels: dict[str, str] = {}
    for term in _split(text):
        key, sep, value = term.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise InvalidArgumentError(f"bad labels {text!r}: {term!r} is not key=value")
        if key in labels:
            # site=berlin,site=paris can match nothing (or silently mean the last one).
            raise InvalidArgumentError(f"label {key!r} given twice: a label has one value")
        labels[key] = value
    return validate_labels(labels, allow_empty_values=allow_empty_values)


def parse_terms(text: str) -> Selector:
    """A selector's text as a ``Selector``. Raises InvalidArgumentError naming the bad term."""
    terms: list[Term] = []
    seen: set[tuple[str, str]] = set()
    for part in _split(text):
        op = next((o for o in _OPS if o in part), None)
        if op is None:
            raise InvalidArgumentError(
                f"bad selector {text!r}: {part!r} is not KEY=VALUE (or !=, >=, <=, >, <)")
        key, _, value = (x.strip() for x in part.partition(op))
        terms.append(_term(text, key, op, value))
        if (key, op) in seen and op == "=":
            raise InvalidArgumentError(f"{key!r} given twice: it has one value")
        seen.add((key, op))
    return Selector(tuple(terms))


def _term(text: str, key: str, op: str, value: str) -> Term:
    if key.startswith(LABEL_PREFIX) or key not in HARDWARE_FIELDS:
        label = key.removeprefix(LABEL_PREFIX)
        if op not in ("=", "!="):
            raise InvalidArgumentError(
                f"bad selector {text!r}: label {label!r} compares with = or != only "
                f"(hardware fields that compare by size: {', '.join(sorted(NUMBER_FIELDS))})")
        checked = validate_labels({label: value})
        return Term(label, op, checked[label])
    if not _HW_VALUE.fullmatch(value):
        raise InvalidArgumentError(
            f"bad value {value[:80]!r} for {key}: letters, digits and _ . - / + ~, at most 64")
    if key in NUMBER_FIELDS:
        _number(value, key)
    elif op not in ("=", "!=") and key != "interpreter_version":
        raise InvalidArgumentError(f"{key} compares with = or != only")
    return Term(key, op, value, field=key)


def _number(value: str, key: str = "") -> int:
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise InvalidArgumentError(
            f"bad value {value[:80]!r} for {key}: a whole number, optionally with Ki, Mi, Gi "
            "or Ti (ram_bytes>=1Gi)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _compare(have: object, op: str, want: object) -> bool:
    return {"=": have == want, "!=": have != want,
            ">=": have >= want, "<=": have <= want,        # type: ignore[operator]
            ">": have > want, "<": have < want}[op]        # type: ignore[operator]


def _split(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise InvalidArgumentError(f"bad selector {text!r}: it has an empty pair (a stray ',')")
    return parts


def parse_target(text: str) -> Selector:
    """A rollout's selector: ``*`` is the whole fleet (no terms), empty is refused.

    Raises InvalidArgumentError for an empty or malformed selector.
    """
    if text.strip() == WHOLE_FLEET:
        return Selector()
    if not text.strip():
        raise InvalidArgumentError(
            "an empty selector would target every device: name the devices (e.g. site=berlin) "
            f"or pass '{WHOLE_FLEET}' to roll out to the whole fleet"
        )
    return parse_terms(text)


def parse_selector(text: str) -> Selector:
    """A listing's selector: empty or ``*`` selects everything."""
    return Selector() if text.strip() in ("", WHOLE_FLEET) else parse_terms(text)
