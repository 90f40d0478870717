"""Paged listings: how every list RPC (tokens, models, devices, rollouts) cuts its pages.

A listing is read in one stable order, its ``Order``: key columns ending in a unique one, so no
two rows tie. A page continues after the position (the key values) of the previous page's last
item: keyset paging, no OFFSET, so a late page costs what the first does, and rows added while a
client pages through never make it see an item twice. A listing filtered in Python (``keep``)
scans on until the page is full or the rows run out: a page never comes back short while more
matching rows exist, unless its weight stopped it (below).

Page tokens are opaque to clients: the hex digits of the UTF-8 of the compact JSON
``{"v": 1, "l": listing, "s": scope digest, "k": position}`` (the scope, e.g. the selector, tells
apart listings with different filters; its digest keeps the token short however long the
selector). They are neither secret nor signed: a crafted one could only choose where a listing
its caller may read anyway starts. Anything that does not decode to exactly this shape, for
this listing and scope, is refused as "not one this server issued". The longest position is a
device's: a name of at most 200 characters (``max_device_name_chars``, the column's width),
each at most 6 bytes of JSON (a control character an older server let in, as ``\u001b``), and
a 36-character id: under 1,300 bytes of JSON with the rest, under 2,600 hex digits, within
``max_page_token_chars`` (4,096).

Weight: a page holds at most ``page_size`` items (``default_page_size`` for 0, at most
``max_page_size``), and it stops before its response would outgrow ``page_budget``:
``grpc_max_message_bytes`` less room for the longest ``next_page_token`` (its characters plus a
tag and a length prefix, 16 bytes being ample): 4 MiB less 4,112 bytes by default. Each item
costs its encoded size plus its own tag and length prefix (``item_bytes``). So every page fits
in one message, whatever its items weigh; the bounds on what requests may carry
(``validation``, ``Settings``) keep one item far below the limit (a token well under 1 KiB, a
rollout too, a device its hardware profile of at most ``max_hardware_profile_bytes``, 16 KiB,
plus labels and models). An item heavier than a whole message on its own is refused with
RESOURCE_EXHAUSTED naming the setting, never cut.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError, ResourceExhaustedError

T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TOKEN_VERSION = 1
# The next_page_token field's tag and length prefix (a varint of 2 bytes for 4 KiB), with room
# to spare.
_TOKEN_FIELD_OVERHEAD = 16


class Weighable(Protocol):
    """What a page carries: anything that knows its encoded size (a protobuf message)."""

    def ByteSize(self) -> int: ...


M = TypeVar("M", bound=Weighable)


@dataclass(frozen=True)
class PageAsk:
    """A page as a request asks for it, unchecked: ``size`` 0 for the default, ``token`` ""
    for the first page."""

    size: int = 0
    token: str = ""


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a listing; ``next_token`` is "" on the last page."""

    items: list[M]
    next_token: str


@dataclass(frozen=True)
class Key(Generic[T]):
    """One key column of an order, and how to read its value from a listed row."""

    column: Any  # a SQLAlchemy column expression
    value: Callable[[T], Any]
    kind: Literal["text", "time"] = "text"


@dataclass(frozen=True)
class Order(Generic[T]):
    """A listing's name and its stable order: ``keys`` must end in a unique column."""

    listing: str
    keys: Sequence[Key[T]]
    descending: bool = False

    def clauses(self) -> list[Any]:
        return [k.column.desc() if self.descending else k.column.asc() for k in self.keys]

    def position(self, row: T) -> tuple[Any, ...]:
        return tuple(k.value(row) for k in self.keys)

    def after(self, position: tuple[Any, ...]) -> Any:
        """Rows strictly after ``position`` in this order. Written as (a > x) or (a = x and
        b > y) ..., not as a row-value comparison, which not every backend indexes alike."""
        terms = []
        for i, key in enumerate(self.keys):
            beyond = key.column < position[i] if self.descending else key.column > position[i]
            earlier = [k.column == position[j] for j, k in enumerate(self.keys[:i])]
            terms.append(sa.and_(*earlier, beyond))
        return sa.or_(*terms)


def page_size(asked: int, settings: Settings) -> int:
    """The page size in force: the default for 0. Raises InvalidArgumentError above the
    maximum."""
    if asked == 0:
        return min(settings.default_page_size, settings.max_page_size)
    if asked > settings.max_page_size:
        raise InvalidArgumentError(
            f"page_size {asked} is above the maximum {settings.max_page_size} (setting "
            f"max_page_size): ask for smaller pages and follow next_page_token")
    return asked


def page_budget(settings: Settings) -> int:
    """The bytes a page's items may take so that the whole response fits in one message."""
    return settings.grpc_max_message_bytes - settings.max_page_token_chars - _TOKEN_FIELD_OVERHEAD


def item_bytes(size: int) -> int:
    """What an item of ``size`` encoded bytes adds to a response: its bytes, the repeated
    field's one-byte tag (field numbers below 16) and the varint of its length."""
    return 1 + _varint_bytes(size) + size


def _varint_bytes(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def read_page(
    session: Session,
    query: sa.Select[Any],
    order: Order[T],
    ask: PageAsk,
    *,
    settings: Settings,
    render: Callable[[T], M],
    keep: Callable[[T], bool] | None = None,
    scope: str = "",
) -> Page[M]:
    """One page of ``query`` (a select of one entity, without ORDER BY) in ``order``: its rows
    that ``keep`` accepts, each turned into what the response carries by ``render``.

    Rows are read ``size + 1`` at a time (one more tells whether another page exists), so a
    page holds at most that many rows in memory, however sparse ``keep`` finds its matches.
    Raises InvalidArgumentError for a bad page size or token, ResourceExhaustedError for an
    item heavier than a whole message.
    """
    size = page_size(ask.size, settings)
    scan = decode_token(ask.token, order, scope=scope, settings=settings)
    budget = page_budget(settings)
    items: list[M] = []
    weight = 0
    last: tuple[Any, ...] | None = None  # the position of the last item taken
    while True:
        chunk = query.order_by(*order.clauses()).limit(size + 1)
        if scan is not None:
            chunk = chunk.where(order.after(scan))
        rows = session.scalars(chunk).all()
        for row in rows:
            scan = order.position(row)
            if keep is not None and not keep(row):
                continue
            if len(items) == size:  # a match beyond a full page: there is a next one
                return Page(items, encode_token(order, last, scope=scope))
            item = render(row)
            cost = item_bytes(item.ByteSize())
            if cost > budget:
                raise ResourceExhaustedError(
                    f"an item of the {order.listing} listing weighs {cost} bytes, more than "
                    f"one message may carry (setting grpc_max_message_bytes, "
                    f"{settings.grpc_max_message_bytes})")
            if weight + cost > budget:
                return Page(items, encode_token(order, last, scope=scope))
            items.append(item)
            weight += cost
            last = scan
        if len(rows) <= size:  # the rows ran out
            return Page(items, "")


def encode_token(order: Order[Any], position: tuple[Any, ...] | None, *, scope: str) -> str:
    """The token of the page after ``position``."""
    assert position is not None, "a page that continues has at least one item"
    values = [_micros(v) if k.kind == "time" else v
              for k, v in zip(order.keys, position, strict=True)]
    doc = {"v": _TOKEN_VERSION, "l": order.listing, "s": _digest(scope), "k": values}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode().hex()


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def decode_token(
    token: str, order: Order[Any], *, scope: str, settings: Settings
) -> tuple[Any, ...] | None:
    """The position a token continues after; None for "" (the first page).

    Raises InvalidArgumentError for anything ``encode_token`` did not write for this listing
    and scope.
    """
    if not token:
        return None
    refused = InvalidArgumentError(
        f"page_token is not one this server issued for this {order.listing} listing (with "
        f"these filters): start again from the first page, without page_token")
    if len(token) > settings.max_page_token_chars:
        raise refused
    try:
        doc = json.loads(bytes.fromhex(token).decode())
    except ValueError:  # not hex digits, not UTF-8 (UnicodeDecodeError), not JSON
        raise refused from None
    if (not isinstance(doc, dict) or set(doc) != {"v", "l", "s", "k"}
            or type(doc["v"]) is not int or doc["v"] != _TOKEN_VERSION
            or doc["l"] != order.listing or doc["s"] != _digest(scope)
            or not isinstance(doc["k"], list) or len(doc["k"]) != len(order.keys)):
        raise refused
    position: list[Any] = []
    for key, value in zip(order.keys, doc["k"], strict=True):
        if key.kind == "time":
            if not isinstance(value, int) or isinstance(value, bool):
                raise refused
            try:
                position.append(_EPOCH + dt.timedelta(microseconds=value))
            except OverflowError:
                raise refused from None
        elif isinstance(value, str) and "\x00" not in value:
            position.append(value)
        else:
            raise refused
    return tuple(position)


def _micros(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(microseconds=1)
