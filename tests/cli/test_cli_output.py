"""Plain-text tables, human sizes and cell rendering."""

from __future__ import annotations

import pytest

from controlplane.cli.output import cell, human_size, render_fields, render_table


def test_table_columns_align_to_the_widest_cell() -> None:
    text = render_table(("name", "size"), [("face", "1 B"), ("keyword-spotter", None)])
    assert text.splitlines() == [
        "NAME             SIZE",
        "face             1 B",
        "keyword-spotter  -",
    ]


def test_table_with_no_rows_is_just_the_header() -> None:
    assert render_table(("id", "state"), []) == "ID  STATE"


def test_fields_align_their_values() -> None:
    assert render_fields([("id", "r1"), ("selector", {"site": "berlin"})]).splitlines() == [
        "id:       r1",
        "selector: site=berlin",
    ]


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"),
     (3 * 1024**4, "3.0 TiB"), (2048 * 1024**4, "2048.0 TiB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_cells_render_nulls_lists_and_booleans() -> None:
    assert cell(None) == "-"
    assert cell("") == "-"
    assert cell([]) == "-"
    assert cell(["a", None]) == "a,-"
    assert cell(True) == "yes"
    assert cell(0) == "0"
