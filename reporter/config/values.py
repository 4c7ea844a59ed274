"""What each kind of key in the table may hold: one checker per kind.

A checker gets the value PyYAML built (or, for lists, the node) and returns the value the
settings hold, ``BAD`` after reporting a problem itself, or ``WRONG`` for the generic
"'key' must be ..., not ..." message.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import yaml

from reporter import addresses, periods
from reporter.config.keys import Key
from reporter.errors import ConfigError, ReporterError

STANDARD = "tag:yaml.org,2002:"
#: what an environment variable's name may be, wherever the file names one
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlong = 60, 60, 40
_short.maxlist = _short.maxtuple = _short.maxset = 5
_short.maxdict, _short.maxlevel = 4, 3


class Invalid:
    """The value of a key that was reported as wrong (so later checks skip it)."""

    def __repr__(self) -> str:
        return "<invalid>"


BAD: Any = Invalid()
WRONG: Any = Invalid()  # a checker's answer for "the generic message applies"


def show(value: object) -> str:
    """``value`` as a message shows it: a repr, shortened (huge or nested values too)."""
    return _short.repr(value)


def tag_name(tag: str) -> str:
    """``!!binary`` for ``tag:yaml.org,2002:binary``."""
    return "!!" + tag[len(STANDARD):] if tag.startswith(STANDARD) else tag


#: where the check that a schedule fires at all starts looking
NEVER_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)


def cron_trigger(expression: str, timezone: str | None = None) -> Any:
    """APScheduler's CronTrigger for a five-field crontab line (ConfigError when invalid)."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=timezone or "UTC")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid cron expression {show(expression)}: {exc}") from None


class Checking(Protocol):
    """What the checkers use of the reader: the file, reporting, values and lists."""

    path: Path

    def error(self, node: yaml.Node, where: str, message: str) -> None:
        """Record a problem at ``node``."""

    def value(self, node: yaml.Node, where: str, name: str) -> Any:
        """The Python value of ``node``; BAD when it has none."""

    def strings(self, node: yaml.Node, key: Key, where: str) -> list[tuple[str, yaml.Node]]:
        """The items of a list of non-empty strings."""


Scalar = Callable[[Checking, yaml.Node, Key, str, Any], Any]


def _text(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    return value if isinstance(value, str) and value.strip() else WRONG


def _integer(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    ok = isinstance(value, int) and not isinstance(value, bool) and _within(value, key)
    return value if ok else WRONG


def _number(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    ok = (isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and _within(value, key))
    return float(value) if ok else WRONG


def _within(value: float, key: Key) -> bool:
    return ((key.minimum is None or value >= key.minimum)
            and (key.maximum is None or value <= key.maximum))


def _boolean(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    return value if isinstance(value, bool) else WRONG


def _choice(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if not isinstance(value, str):
        return WRONG
    if value not in key.choices:
        r.error(node, where, f"unknown {key.name} {show(value)} (one of: "
                             f"{', '.join(key.choices)})")
        return BAD
    return value


def _path(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        return WRONG
    path = r.path.parent / value
    try:
        exists = {"path": True, "folder": path.is_dir(), "file": path.is_file()}[key.kind]
    except (OSError, ValueError):
        exists = False
    if not exists:
        r.error(node, where, f"{key.name!r} {str(path)!r} is not a {key.kind}")
        return BAD
    return path


def _template(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return WRONG
    # Jinja2 is imported only for a file that has a template: a report read from the command
    # line with a jobs file of plain settings does not load it
    from jinja2 import TemplateError, TemplateSyntaxError

    from reporter.deliver.subject import render_subject, sample_context

    try:
        render_subject(value, sample_context())
    except TemplateSyntaxError as exc:
        r.error(node, where, f"{key.name} is not a valid template: {exc.message}")
    except TemplateError as exc:
        r.error(node, where, f"{key.name} template: {exc.message}")
    except Exception as exc:  # any failure of the sandboxed sample render is the template's
        r.error(node, where, f"{key.name} template: {type(exc).__name__}: {exc}")
    else:
        return value
    return BAD


def _cron(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return WRONG
    try:
        trigger = cron_trigger(value)
    except ConfigError as exc:
        r.error(node, where, str(exc))
        return BAD
    # a date that never comes (31 February): APScheduler looks ahead to its last year
    if trigger.get_next_fire_time(None, NEVER_BEFORE) is None:
        r.error(node, where, f"schedule {show(value)} never fires (no such date); "
                             "give a day that exists in the months it names")
        return BAD
    return value


def _timezone(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return WRONG
    if "\0" in value or not periods.is_timezone(value):
        r.error(node, where, f"unknown timezone {show(value)}")
        return BAD
    return value


def _env_var(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    if isinstance(value, str) and ENV_NAME.fullmatch(value):
        return value
    if isinstance(value, str) and value.strip():
        r.error(node, where, f"{key.name} must name an environment variable (letters, digits "
                             f"and _), not {show(value)}; the value itself stays in the "
                             f"environment")
        return BAD
    return WRONG


def _slug(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    from reporter.store.orgs import SLUG_RULE, is_slug

    if not isinstance(value, str) or not value.strip():
        return WRONG
    if not is_slug(value.strip()):
        r.error(node, where, f"{key.name} {show(value)} is not a valid organization slug "
                             f"({SLUG_RULE})")
        return BAD
    return value.strip()


def _usd(r: Checking, node: yaml.Node, key: Key, where: str, value: Any) -> Any:
    """An amount in USD (nano-dollars), read exactly from the file's text, not a float."""
    from reporter.store.orgs import parse_budget

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return WRONG
    text = str(node.value if isinstance(node, yaml.ScalarNode) else value).strip()
    least = Decimal(str(key.minimum)) if key.minimum is not None else None
    if text.strip("0.") == "" and text.count(".") <= 1 and text:
        nanos: int | None = 0
    else:
        try:
            nanos = parse_budget(text, repr(key.name))
        except ReporterError as exc:
            r.error(node, where, str(exc).replace(" or 'none'", ""))
            return BAD
    if nanos is None:  # "none": no amount, which a key of this kind never means
        r.error(node, where, f"{key.name!r} must be an amount in USD (like 10 or 2.50), "
                             f"not {show(text)}")
        return BAD
    if least is not None and nanos < least.scaleb(9):
        r.error(node, where, f"{key.name!r} must be at least {least} USD, not {show(text)}")
        return BAD
    return nanos


SCALARS: dict[str, Scalar] = {
    "string": _text, "usd": _usd, "integer": _integer, "number": _number, "boolean": _boolean,
    "choice": _choice, "path": _path, "folder": _path, "file": _path,
    "template": _template, "cron": _cron, "timezone": _timezone, "env_var": _env_var,
    "slug": _slug,
}


def _formats(r: Checking, node: yaml.Node, key: Key, where: str) -> Any:
    out: list[str] = []
    for name, item in r.strings(node, key, where):
        if name not in key.choices:
            r.error(item, where, f"unknown format {show(name)} in {key.name!r} "
                                 f"(one of: {', '.join(key.choices)})")
        elif name not in out:
            out.append(name)
    if (key.minimum or 0) > 0 and isinstance(node, yaml.SequenceNode) and not node.value:
        r.error(node, where, f"{key.name!r} is empty")
    return tuple(out)


def _organizations(r: Checking, node: yaml.Node, key: Key, where: str) -> Any:
    if isinstance(node, yaml.ScalarNode) and r.value(node, where, key.name) == "all":
        return "all"
    return tuple(text for text, _ in r.strings(node, key, where))


def _audience(r: Checking, node: yaml.Node, key: Key, where: str) -> Any:
    if not isinstance(node, yaml.SequenceNode):
        raw = r.value(node, where, key.name)
        if isinstance(raw, str) and raw in ("admins", "members"):
            return raw
        if raw is not BAD:
            r.error(node, where, f"audience must be 'admins', 'members' or a list of "
                                 f"addresses, not {show(raw)}")
        return BAD
    found: list[str] = []
    for text, item in r.strings(node, key, where):
        try:
            address = addresses.normalize(text)
        except addresses.AddressError as exc:
            r.error(item, where, f"audience: {exc}")
        else:
            if address not in found:
                found.append(address)
    if not node.value:
        r.error(node, where, "audience list is empty")
    return tuple(found)


def _percents(r: Checking, node: yaml.Node, key: Key, where: str) -> Any:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        r.error(node, where, f"{key.name!r} must be {describe_list}")
        return BAD
    out: list[int] = []
    for item in node.value:
        value = r.value(item, where, key.name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            if value is not BAD:
                r.error(item, where, f"{key.name!r} items must be whole percents from 1 to "
                                     f"1000, not {show(value)}")
            continue
        if value not in out:
            out.append(value)
    return tuple(sorted(out))


def _slug_map(r: Checking, node: yaml.Node, key: Key, where: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        r.error(node, where, f"{key.name!r} must be {key.help}")
        return BAD
    out: dict[str, str] = {}
    for id_node, slug_node in node.value:
        source_id = r.value(id_node, where, key.name)
        if not isinstance(source_id, str | int) or isinstance(source_id, bool) or not str(
                source_id).strip():
            r.error(id_node, where, f"{key.name}: ids must be plain text, not {show(source_id)}")
            continue
        name = f"{key.name}: {str(source_id).strip()}"
        slug = _slug(r, slug_node, Key(name, "slug", key.help), where,
                     r.value(slug_node, where, name))
        if slug is WRONG:
            r.error(slug_node, where, f"{name!r} must be an organization slug")
        elif slug is not BAD:
            if str(source_id).strip() in out:
                r.error(id_node, where, f"{key.name}: duplicate id {show(source_id)}")
            out[str(source_id).strip()] = slug
    return out


describe_list = "a non-empty list of whole percents, like [50, 80, 100]"

LISTS: dict[str, Callable[[Checking, yaml.Node, Key, str], Any]] = {
    "percents": _percents, "formats": _formats, "organizations": _organizations,
    "audience": _audience, "slug_map": _slug_map}
