"""The paging module (``controlplane.pages``) through the domain list functions, on SQLite and
PostgreSQL: sizes, tokens, order, filtered scans and the weight of a page."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controlplane.api import convert
from controlplane.auth import services as auth
from controlplane.auth.models import OperatorToken
from controlplane.config import Settings
from controlplane.db import new_id, transaction
from controlplane.errors import InvalidArgumentError, ResourceExhaustedError
from controlplane.fleet import services as fleet
from controlplane.fleet.models import Device
from controlplane.pages import Page, PageAsk, item_bytes
from protos import edgefleet_pb2 as pb

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SMALL = Settings(data_dir=Path("/nonexistent"), default_page_size=2, max_page_size=3)


def _tokens(s: Session, n: int, *, at: dt.datetime = NOW) -> list[str]:
    """``n`` operator tokens all created at the same instant: only the id tells them apart."""
    ids = [f"{i:016x}" for i in range(n)]
    for token_id in ids:
        s.add(OperatorToken(id=token_id, secret_hash="0" * 64, role="viewer", created_at=at))
    s.flush()
    return ids


def _devices(s: Session, labels: list[dict[str, str]], *, name: str = "d") -> list[str]:
    ids = []
    for i, lab in enumerate(labels):
        device = Device(id=new_id(), name=f"{name}{i:03d}", labels=lab, secret_hash="0" * 64,
                        enrolled_at=NOW)
        s.add(device)
        ids.append(device.id)
    s.flush()
    return ids


def _all(read: Callable[[PageAsk], Page[Any]], size: int = 0) -> list[list[Any]]:
    """Every page of a listing, following the tokens."""
    pages, token = [], ""
    while True:
        page = read(PageAsk(size=size, token=token))
        pages.append(page.items)
        if not page.next_token:
            return pages
        token = page.next_token


def _token_page(s: Session, settings: Settings = SMALL) -> Callable[[PageAsk], Page[Any]]:
    return lambda ask: auth.list_operator_tokens(s, ask, settings=settings,
                                                 render=convert.operator_token)


def test_page_size_zero_gives_the_default_and_one_above_the_maximum_is_refused(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: page_size 0 (default 2) over 3 tokens, page_size 3 (the maximum) and 4."""
    with transaction(session_factory) as s:
        _tokens(s, 3)
        first = _token_page(s)(PageAsk())
        assert len(first.items) == 2 and first.next_token
        assert len(_token_page(s)(PageAsk(size=3)).items) == 3
        with pytest.raises(InvalidArgumentError, match="max_page_size"):
            _token_page(s)(PageAsk(size=4))


def test_following_tokens_lists_every_row_once_in_a_stable_order_despite_ties(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: 7 tokens created at the same microsecond, read 2 at a time; another token
    created while the client pages through."""
    with transaction(session_factory) as s:
        ids = _tokens(s, 7)
        read = _token_page(s)
        first = read(PageAsk(size=2))
        s.add(OperatorToken(id="f" * 16, secret_hash="0" * 64, role="viewer",
                            created_at=NOW + dt.timedelta(seconds=1)))
        s.flush()
        rest = _all(lambda ask: read(PageAsk(size=2, token=ask.token or first.next_token)))
        listed = [t.id for t in first.items] + [t.id for page in rest for t in page]
    assert listed == [*ids, "f" * 16]
    assert [len(p) for p in rest] == [2, 2, 2]  # the last page's token is empty


def _forged(doc: object) -> str:
    return json.dumps(doc).encode().hex()


SCOPE = hashlib.sha256(b"").hexdigest()[:16]  # the token listing's (it has no filter)


@pytest.mark.parametrize(
    "token",
    [
        "not hex at all!",
        "fffe",
        _forged(["a", "list"]),
        _forged({"v": 1, "l": "device", "s": SCOPE, "k": ["d000", "x"]}),  # another listing
        _forged({"v": 1, "l": "token", "s": "", "k": [0, "0"]}),  # not its scope
        _forged({"v": 2, "l": "token", "s": SCOPE, "k": [0, "0"]}),
        _forged({"v": 1, "l": "token", "s": SCOPE, "k": ["yesterday", "0"]}),
        _forged({"v": 1, "l": "token", "s": SCOPE, "k": [10**30, "0"]}),  # beyond datetime
        _forged({"v": 1, "l": "token", "s": SCOPE, "k": [0, "\x00"]}),
        _forged({"v": True, "l": "token", "s": SCOPE, "k": [0, "0"]}),
        "aa" * 4097,
    ],
)
def test_a_malformed_or_forged_page_token_is_refused(
    session_factory: sessionmaker[Session], token: str
) -> None:
    """Input tried: garbage, hex of bytes that are not UTF-8, JSON of the wrong shape, a
    token of the device listing, one without the listing's scope digest, an unknown version,
    a position of the wrong types, a time beyond year 9999, NUL in a position, True as the
    version, 8,194 characters; and, to show the forgeries are well made, the same document
    with nothing wrong, which is accepted."""
    with transaction(session_factory) as s:
        _tokens(s, 1)
        with pytest.raises(InvalidArgumentError, match="not one this server issued"):
            _token_page(s)(PageAsk(token=token))
        well_made = _forged({"v": 1, "l": "token", "s": SCOPE, "k": [0, "0"]})
        assert len(_token_page(s)(PageAsk(token=well_made)).items) == 1


def test_a_token_is_refused_for_another_selector(session_factory: sessionmaker[Session]) -> None:
    """Input tried: the next_page_token of `--selector site=a` sent with `--selector site=b`."""
    with transaction(session_factory) as s:
        _devices(s, [{"site": "a"}] * 3 + [{"site": "b"}] * 3)
        page = fleet.list_devices(s, "site=a", PageAsk(size=1), settings=SMALL,
                                  render=convert.device)
        with pytest.raises(InvalidArgumentError, match="not one this server issued"):
            fleet.list_devices(s, "site=b", PageAsk(size=1, token=page.next_token),
                               settings=SMALL, render=convert.device)


def test_a_filtered_listing_fills_its_pages_past_devices_that_do_not_match(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: 12 devices of which every third is site=x (4 matches, spread out), read
    with `--selector site=x` 3 at a time: pages of 3 and 1, never a short page before the
    last."""
    labels = [{"site": "x"} if i % 3 == 2 else {"site": "y"} for i in range(12)]
    with transaction(session_factory) as s:
        ids = _devices(s, labels)
        pages = _all(lambda ask: fleet.list_devices(s, "site=x", ask, settings=SMALL,
                                                    render=convert.device), size=3)
    assert [len(p) for p in pages] == [3, 1]
    assert [d.id for p in pages for d in p] == [ids[i] for i in (2, 5, 8, 11)]


def test_a_filtered_listing_with_no_match_is_one_empty_last_page(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: `--selector site=none` over 7 devices, page size 2."""
    with transaction(session_factory) as s:
        _devices(s, [{"site": "y"}] * 7)
        page = fleet.list_devices(s, "site=none", PageAsk(size=2), settings=SMALL,
                                  render=convert.device)
    assert (page.items, page.next_token) == ([], "")


def test_a_page_stops_before_its_response_outgrows_the_message_limit(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: 30 devices whose listed form weighs some 20 KB each, asked for 1000 at a
    time under a 128 KiB message limit: every response fits, and every device comes once."""
    settings = Settings(data_dir=Path("/nonexistent"), grpc_max_message_bytes=128 * 1024)

    def heavy(d: Device) -> pb.Device:
        return pb.Device(id=d.id, name=d.name, hardware=pb.HardwareProfile(cpu_model="c" * 20_000))

    with transaction(session_factory) as s:
        ids = _devices(s, [{}] * 30)
        responses, token = [], ""
        while True:
            page = fleet.list_devices(s, "", PageAsk(size=1000, token=token), settings=settings,
                                      render=heavy)
            responses.append(pb.ListDevicesResponse(devices=page.items,
                                                    next_page_token=page.next_token))
            if not (token := page.next_token):
                break
    assert len(responses) >= 5
    assert all(r.ByteSize() <= settings.grpc_max_message_bytes for r in responses)
    assert [d.id for r in responses for d in r.devices] == ids
    # the arithmetic the budget rests on: an item costs its bytes, a tag and a length varint
    assert item_bytes(heavy(Device(id="x", name="y")).ByteSize()) == \
        pb.ListDevicesResponse(devices=[heavy(Device(id="x", name="y"))]).ByteSize()


def test_an_item_heavier_than_a_whole_message_is_refused_naming_the_setting(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a device whose listed form weighs 200 KB under a 128 KiB message limit."""
    settings = Settings(data_dir=Path("/nonexistent"), grpc_max_message_bytes=128 * 1024)
    with transaction(session_factory) as s:
        _devices(s, [{}])
        with pytest.raises(ResourceExhaustedError, match="grpc_max_message_bytes"):
            fleet.list_devices(s, "", PageAsk(), settings=settings, render=lambda d: pb.Device(
                id=d.id, hardware=pb.HardwareProfile(cpu_model="c" * 200_000)))


@pytest.mark.parametrize("name", ["\U0001f600" * 197, "\x1b" * 197])
def test_the_longest_device_position_fits_in_a_page_token(
    session_factory: sessionmaker[Session], name: str
) -> None:
    """Input tried: two devices named with 200 four-byte characters, and two named with 200
    control characters (escaped as 6 bytes each in JSON; older servers let them in), listed
    one per page under a selector of 4,000 characters."""
    settings = Settings(data_dir=Path("/nonexistent"))
    selector = ",".join(f"k{i:03d}=v" for i in range(4000 // 7))
    labels = dict(pair.split("=") for pair in selector.split(","))
    with transaction(session_factory) as s:
        ids = _devices(s, [labels, labels], name=name)
        first = fleet.list_devices(s, selector, PageAsk(size=1), settings=settings,
                                   render=convert.device)
        assert 0 < len(first.next_token) <= settings.max_page_token_chars
        second = fleet.list_devices(s, selector, PageAsk(size=1, token=first.next_token),
                                    settings=settings, render=convert.device)
    assert [d.id for d in first.items + second.items] == ids
