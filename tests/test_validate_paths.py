"""The fast path of row validation accepts only what the careful path accepts, with the same
values; whatever it does not take gets the careful path's message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporter.store import validate
from reporter.store.validate import RowError

BASE = {"id": "r1", "timestamp": "2025-03-01T10:00:00.5+01:00", "organization": "acme",
        "user_email": "Alice@Acme.com", "model": "m", "project": "p", "input_tokens": "5",
        "output_tokens": "7", "cache_read_tokens": "", "cache_write_tokens": "3",
        "cost_usd": "0.25"}

TRICKY: dict[str, list[Any]] = {
    "id": ["", " ", " x ", "x\u200b", "i" * 255, "i" * 256, "a\x00", 5, None, "\ud800"],
    "timestamp": ["", "2025-03-01T10:00:00", " 2025-03-01T10:00:00Z ", "9999-12-31T23:59:59-23:59",
                  "0001-01-01T00:00:00+01:00", "2025-13-01T00:00:00Z", 17, None],
    "organization": ["", " acme ", "ACME", "a" * 100, "a" * 101, "a\x00", None, 3],
    "user_email": ["", " a@b.com ", "nobody", "a@b.com,c@d.com", None, 4, "A@B.COM"],
    "model": ["", "   ", " m ", "m" * 1000, "m" * 1001, "m\n", "m\u200b", None, 1, "\udc80"],
    "project": ["", "  ", " p ", "p" * 1001, "p\t", None, 2],
    "input_tokens": ["", " 5 ", "0", "999999999999", "1000000000000", "+5", "1_0", "\u0661",
                     "５", 5, -1, None, "00000000000001"],
    "cache_read_tokens": ["", " ", "0", "x", 0, 3, None, "999999999999", False, True, 0.0],
    "output_tokens": ["0", "", " ", False, "12" * 7, "1.0"],
    "cost_usd": ["", ".", "3.", ".5", "0.000000001", "0.0000000001", "0.0000000010",
                 "999999.999999999", "1000000", "0999999.5", "-1", "1e-3", " 1.5 ", "1.2.3",
                 "\u0661.5", "nan", 1, None, "00000001.5", "1" * 41],
}


def outcome(func: Any, row: dict[str, Any]) -> Any:
    try:
        return func(row)
    except RowError as exc:
        return ("error", str(exc))


CASES = [(key, value) for key, values in TRICKY.items() for value in values]


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}-{i}" for i, (k, _) in
                                                       enumerate(CASES)])
def test_both_paths_agree(key: str, value: Any) -> None:
    row = {**BASE, key: value}
    assert outcome(validate.values, row) == outcome(validate._careful, row)
    # a second time: what the first remembered changes nothing
    assert outcome(validate.values, row) == outcome(validate._careful, row)


def test_missing_keys_and_unknown_ones() -> None:
    for key in BASE:
        row = {k: v for k, v in BASE.items() if k != key}
        assert outcome(validate.values, row) == outcome(validate._careful, row)
    row = {**BASE, "region": "eu"}
    assert outcome(validate.values, row) == ("error", "unknown column 'region'")


text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", " 1 ", "12", "0.5", ".", "a", "acme", "a@b.co"])


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({k: text for k in BASE}))
def test_both_paths_agree_on_any_text(row: dict[str, Any]) -> None:
    merged = {**BASE, **{k: v for k, v in row.items() if v != "a"}}
    assert outcome(validate.values, merged) == outcome(validate._careful, merged)
