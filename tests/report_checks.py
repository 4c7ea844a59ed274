"""Checks of a JSON report against the contract in PRODUCT.md: shape, types, and that every
view adds up to the summary (used by the aggregation and CLI tests)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

MONEY = re.compile(r"^\d+\.\d{2,9}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
METRIC_KEYS = ["cost_usd", "requests", "input_tokens", "output_tokens", "tokens"]

SHAPE = {
    "organization": ["slug", "name", "timezone"],
    "period": ["name", "start", "end", "timezone"],
    "summary": ["total_cost_usd", "total_requests", "avg_cost_per_request_usd", "input_tokens",
                "output_tokens", "total_tokens", "active_users"],
    "by_day": ["date", *METRIC_KEYS, "users", "members"],
    "by_model_day": ["date", "model", *METRIC_KEYS, "users", "members"],
    "by_project": ["project", *METRIC_KEYS, "users"],
    "by_member": ["email", "name", *METRIC_KEYS, "active_days", "top_model"],
    "members": ["email", *METRIC_KEYS],
}
MONEY_KEYS = {"cost_usd", "total_cost_usd", "avg_cost_per_request_usd"}


def _check_value(key: str, value: Any) -> None:
    if key in MONEY_KEYS:
        assert isinstance(value, str), (key, value)
        assert MONEY.match(value), (key, value)
    elif key == "date":
        assert isinstance(value, str), (key, value)
        assert DATE.match(value), (key, value)
    elif key in {"requests", "input_tokens", "output_tokens", "tokens", "total_requests",
                 "total_tokens", "active_users", "users", "active_days"}:
        assert type(value) is int, (key, value)
        assert value >= 0, (key, value)


def check_shape(data: dict[str, Any]) -> None:
    """Keys and types exactly as PRODUCT.md says (extra keys are allowed)."""
    for key in ("organization", "period", "member", "summary", "by_day", "by_model_day",
                "by_project", "by_member"):
        assert key in data, key
    assert data["member"] is None or isinstance(data["member"], str)
    for section in ("organization", "period", "summary"):
        for key in SHAPE[section]:
            assert key in data[section], (section, key)
            _check_value(key, data[section][key])
    for section in ("by_day", "by_model_day", "by_project", "by_member"):
        for item in data[section]:
            for key in SHAPE[section]:
                assert key in item, (section, key)
                _check_value(key, item[key])
            for nested in item.get("members", []):
                for key in SHAPE["members"]:
                    assert key in nested, ("members", key)
                    _check_value(key, nested[key])
    for item in data["by_project"]:
        assert item["project"] is None or (isinstance(item["project"], str) and item["project"])
    start = datetime.fromisoformat(data["period"]["start"])
    end = datetime.fromisoformat(data["period"]["end"])
    assert start.tzinfo is not None
    assert end.tzinfo is not None
    assert start < end


def project_contract(data: dict[str, Any]) -> dict[str, Any]:
    """The contract's keys of a JSON report, money as Decimal."""

    def pick(item: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        out = {}
        for key in keys:
            value = item[key]
            if key in MONEY_KEYS:
                value = Decimal(value)
            elif key == "members":
                value = [pick(m, SHAPE["members"]) for m in value]
            out[key] = value
        return out

    return {
        "member": data["member"],
        "summary": pick(data["summary"], SHAPE["summary"]),
        "by_day": [pick(r, SHAPE["by_day"]) for r in data["by_day"]],
        "by_model_day": [pick(r, SHAPE["by_model_day"]) for r in data["by_model_day"]],
        "by_project": [pick(r, SHAPE["by_project"]) for r in data["by_project"]],
        "by_member": [pick(r, SHAPE["by_member"]) for r in data["by_member"]],
        "daily": [p["date"] for p in data["daily_series"]],
    }


def _add(rows: list[dict[str, Any]]) -> tuple[Decimal, int, int, int]:
    return (sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0)),
            sum(r["requests"] for r in rows), sum(r["input_tokens"] for r in rows),
            sum(r["output_tokens"] for r in rows))


def _total(r: dict[str, Any]) -> tuple[Decimal, int, int, int]:
    return (Decimal(r["cost_usd"]), r["requests"], r["input_tokens"], r["output_tokens"])


def check_invariants(data: dict[str, Any]) -> None:
    """Every view adds up to the summary, rows to their members, in the documented order."""
    s = data["summary"]
    summary = (Decimal(s["total_cost_usd"]), s["total_requests"], s["input_tokens"],
               s["output_tokens"])
    assert s["total_tokens"] == s["input_tokens"] + s["output_tokens"]
    # days add up to the summary; so do models, projects and members
    for view in ("by_day", "by_model_day", "by_project", "by_member"):
        assert _add(data[view]) == summary, view
    # model-days add up to their day
    for day in data["by_day"]:
        assert _add([m for m in data["by_model_day"] if m["date"] == day["date"]]) == _total(day)
        assert day["users"] == len(day["members"])
    # members add up to their row; rows hold each member once
    for view in ("by_day", "by_model_day"):
        for item in data[view]:
            assert _add(item["members"]) == _total(item)
            emails = [m["email"] for m in item["members"]]
            assert len(emails) == len(set(emails))
            assert item["users"] == len(emails)
            assert item["tokens"] == item["input_tokens"] + item["output_tokens"]
    assert s["active_users"] == len(data["by_member"])
    # sort orders
    dates = [d["date"] for d in data["by_day"]]
    assert dates == sorted(set(dates))
    keys = [(r["date"], -Decimal(r["cost_usd"])) for r in data["by_model_day"]]
    assert keys == sorted(keys)
    for view, name in (("by_project", "project"), ("by_member", "email")):
        keys2 = [(-Decimal(r["cost_usd"]), r[name] or "") for r in data[view]]
        assert keys2 == sorted(keys2)
    for view in ("by_day", "by_model_day"):
        for item in data[view]:
            keys2 = [(-Decimal(m["cost_usd"]), m["email"]) for m in item["members"]]
            assert keys2 == sorted(keys2)
    # the daily series covers every day of the period, zero-filled, matching by_day
    series = {p["date"]: p for p in data["daily_series"]}
    for day in data["by_day"]:
        assert series[day["date"]]["cost_usd"] == day["cost_usd"]
    assert sum(Decimal(p["cost_usd"]) for p in series.values()) == summary[0]
