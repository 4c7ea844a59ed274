"""Walking jobs.yaml's YAML nodes by the key table, collecting ``file:line: where: what``.

Nothing here trusts the document: tags outside plain YAML are refused, values are built
by PyYAML's safe constructor behind a guard, and values shown in messages are shortened.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reporter.config.keys import Computed, Key, Section, describe
from reporter.config.values import BAD, LISTS, SCALARS, STANDARD, WRONG, show, tag_name
from reporter.errors import ConfigError

#: the tags plain YAML resolves by itself; anything else (``!!python/...``, ``!!binary``,
#: ``!custom``) means nothing in jobs.yaml
TAGS: dict[type[yaml.Node], frozenset[str]] = {
    yaml.ScalarNode: frozenset(STANDARD + name for name in (
        "str", "int", "float", "bool", "null", "timestamp", "merge")),
    yaml.SequenceNode: frozenset({STANDARD + "seq"}),
    yaml.MappingNode: frozenset({STANDARD + "map"}),
}
KINDS = {yaml.ScalarNode: "single value", yaml.SequenceNode: "list",
         yaml.MappingNode: "mapping"}
NESTED = frozenset({"section", "jobs", "email", "sources"})
MAX_MESSAGE = 300

#: builds a nested section: (its node, None when left out; the values around it) -> value
Builder = Callable[[yaml.Node | None, ChainMap[str, Any]], Any]


class ConfigErrors(ConfigError):
    """Every problem found in a config file; ``str()`` is the first one and a count."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        more = len(messages) - 1
        suffix = f" (and {more} more; see 'reporter validate')" if more else ""
        super().__init__(messages[0] + suffix)


@dataclass
class Read:
    """A section as read: every key's value (file or default), and the nodes it came from."""

    own: dict[str, Any]  # this section's values by key name
    nodes: dict[str, yaml.Node]
    ok: bool  # no problem was found inside it


class Walker:
    """Walks the YAML nodes of one file by the key table, collecting every problem."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self.errors: list[str] = []
        #: ``file:line: where: environment variable X (what) is not set``, one per variable
        #: the file names and the environment lacks or holds what cannot be used (not
        #: errors: a job that needs one fails)
        self.unset_variables: list[str] = []

    def error(self, node: yaml.Node | yaml.Mark | int, where: str, message: str) -> None:
        """Record ``file:line: where: message`` (one line, of bounded length)."""
        if isinstance(node, int):
            line = node
        else:
            line = (node if isinstance(node, yaml.Mark) else node.start_mark).line + 1
        message = " ".join((f"{where}: {message}" if where else message).splitlines())
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        self.errors.append(f"{self.path.name}:{line}: {message}")

    def unset(self, node: yaml.Node, where: str, variable: str, what: str) -> None:
        """Note that the variable ``variable`` (named by the key ``what``) is not set."""
        self.unset_variables.append(f"{self.path.name}:{node.start_mark.line + 1}: {where}: "
                                    f"environment variable {variable} ({what}) is not set")

    def unusable(self, node: yaml.Node, where: str, message: str) -> None:
        """Note that an environment variable the file names holds what cannot be used
        (``message`` names it): like an unset one, only the job that needs it fails."""
        self.unset_variables.append(f"{self.path.name}:{node.start_mark.line + 1}: {where}: "
                                    f"{message}")

    def raise_errors(self) -> None:
        """ConfigErrors with every message so far, if there is one."""
        if self.errors:
            raise ConfigErrors(self.errors)

    def compose(self, text: str) -> yaml.Node | None:
        """The document's node tree, tags checked; ConfigErrors when it is not plain YAML."""
        loader, root = None, None
        try:
            loader = yaml.SafeLoader(text)  # this already checks the characters
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = ", ".join(text for text in (exc.context, exc.problem) if text)
            self.error(mark or 1, "", f"not valid YAML: {problem}")
        except yaml.reader.ReaderError as exc:
            self.error(text.count("\n", 0, exc.position) + 1, "",
                       f"not valid YAML: character {exc.character!r}: {exc.reason}")
        except RecursionError:
            self.error(loader.get_mark() if loader else 1, "", "not valid YAML: nested too deeply")
        finally:
            if loader is not None:
                loader.dispose()
        self.raise_errors()
        if root is not None:
            self._check_tags(root)
            self.raise_errors()
        return root

    def _check_tags(self, root: yaml.Node) -> None:
        seen: set[int] = set()
        todo = [root]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.tag in TAGS[type(node)]:
                pass
            elif any(node.tag in tags for tags in TAGS.values()):
                self.error(node, "", f"YAML tag {show(tag_name(node.tag))} cannot stand on "
                                     f"a {KINDS[type(node)]}")
            else:
                self.error(node, "", f"unsupported YAML tag {show(tag_name(node.tag))}")
            if isinstance(node, yaml.SequenceNode):
                todo.extend(reversed(node.value))
            elif isinstance(node, yaml.MappingNode):
                todo.extend(n for pair in reversed(node.value) for n in reversed(pair))

    def value(self, node: yaml.Node, where: str, name: str) -> Any:
        """The Python value of ``node`` (PyYAML's safe constructor); BAD when it has none."""
        try:
            return yaml.constructor.SafeConstructor().construct_document(node)
        except yaml.MarkedYAMLError as exc:
            self.error(exc.problem_mark or node, where, f"{name!r}: {exc.problem}")
        except RecursionError:
            self.error(node, where, f"{name!r} is nested too deeply")
        except Exception:  # the safe constructor fails in many ways on hostile input
            self.error(node, where, f"{name!r}: {show(node.value)} is not a valid "
                                    f"{tag_name(node.tag)}")
        return BAD

    def mapping(self, node: yaml.Node, where: str, known: tuple[str, ...] | None,
                what: str = "this") -> dict[str, yaml.Node] | None:
        """The keys of a mapping node (unknown or duplicate ones reported)."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, f"{what} must be a mapping of keys to values")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key:
                self.error(key_node, where, "keys must be plain names")
            elif key in out:
                self.error(key_node, where, f"duplicate key {show(key)}")
            elif known is not None and key not in known:
                self.error(key_node, where,
                           f"unknown key {show(key)} (known: {', '.join(known)})")
            else:
                out[key] = value_node
        return out

    def section(self, node: yaml.Node | None, section: Section, where: str,
                outer: ChainMap[str, Any], nested: Mapping[str, Builder],
                what: str = "this") -> Read | None:
        """Read every key of ``section`` from ``node`` (None: left out, all defaults)."""
        nodes = {} if node is None else self.mapping(node, where, section.names, what)
        if nodes is None:
            return None
        before = len(self.errors)
        own: dict[str, Any] = {}
        values = outer.new_child(own)
        plain = [key for key in section.keys if key.kind not in NESTED]
        for key in plain:
            if key.name in nodes:
                own[key.name] = self.read(nodes[key.name], key, where)
            elif key.required:
                self.error(node or 1, where, f"missing key {key.name!r}")
                own[key.name] = BAD
        for computed in (False, True):  # plain defaults first: computed ones may use them
            for key in plain:
                if key.name not in own and isinstance(key.default, Computed) == computed:
                    own[key.name] = self._default(key, values)
        for key in plain:
            if key.env and self.env.get(key.env):
                own[key.name] = self.env[key.env]
        for key in (key for key in section.keys if key.kind in NESTED):
            child = nodes.get(key.name)
            if child is None and key.required:
                self.error(node or 1, where, f"missing key {key.name!r}")
                own[key.name] = BAD
            elif child is None and key.default is None:
                own[key.name] = None
            else:
                own[key.name] = nested[key.name](child, values)
        return Read(own, nodes, ok=len(self.errors) == before)

    def misplaced(self, read: Read, section: Section, kind: str, where: str,
                  message: str) -> bool:
        """Report each key given in ``read`` that belongs to other kinds than ``kind``
        (``message`` formatted with ``key``, ``kind`` and ``known``); whether there was one."""
        known = [key.name for key in section.keys if not key.kinds or kind in key.kinds]
        wrong = [key for key in section.keys if key.kinds and kind not in key.kinds
                 and key.name in read.nodes]
        for key in wrong:
            self.error(read.nodes[key.name], where, message.format(
                key=key.name, kind=kind, known=", ".join(known)))
        return bool(wrong)

    def _default(self, key: Key, values: Mapping[str, Any]) -> Any:
        value = key.default_for(values, self.env)
        if key.kind in ("path", "folder", "file") and isinstance(value, str):
            return self.path.parent / value
        return value

    def read(self, node: yaml.Node, key: Key, where: str) -> Any:
        """The value of one key from its node, checked against the table; BAD if wrong."""
        if key.kind in LISTS:
            return LISTS[key.kind](self, node, key, where)
        value = self.value(node, where, key.name)
        if value is BAD:
            return BAD
        checked = SCALARS[key.kind](self, node, key, where, value)
        if checked is WRONG:
            self.error(node, where, f"{key.name!r} must be {describe(key)}, not {show(value)}")
            return BAD
        return checked

    def strings(self, node: yaml.Node, key: Key, where: str) -> list[tuple[str, yaml.Node]]:
        """The items of a list of non-empty strings (wrong items reported)."""
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, where, f"{key.name!r} must be {describe(key)}")
            return []
        out = []
        for item in node.value:
            text = self.value(item, where, key.name)
            if isinstance(text, str) and text.strip():
                out.append((text, item))
            elif text is not BAD:
                self.error(item, where, f"{key.name!r} items must be non-empty strings, "
                                        f"not {show(text)}")
        return out
