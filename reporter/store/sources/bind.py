"""Organizations of a source bound to slugs by the source's own id: the slug a source
organization is first stored under is kept, so renaming it in the source changes only its
display name, and two source organizations never share one slug by accident."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from reporter.errors import ReporterError
from reporter.store import db, orgs
from reporter.store.schema import source_organizations as table
from reporter.store.sources.common import NOT_CONFIGURED, Skip, SourceError, printable, slug_of

log = logging.getLogger(__name__)

CONFLICT = "organization conflict"
#: the PostgreSQL advisory lock held while a source's new bindings are written
_LOCK_KEY = 0x52504F42


def derived_slug(name: str, source_id: str) -> str:
    """The slug a source organization gets when none is configured: from its name
    (``Acme Corp.`` -> ``acme-corp``); a name with no latin letter or digit (``Инженеры``,
    ``開発``) gives ``org-`` and a digest of the name, stable and usable."""
    slug = slug_of(name)
    if slug:
        return slug
    seed = name.strip() or source_id
    return "org-" + hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class Bindings:
    """Source organization ids -> slugs for one source. A configured map decides outright;
    otherwise an id keeps the slug it was first stored under, and a new id takes the slug
    of its name unless another source organization already has it (then its rows are
    skipped with a line naming both ids and the fix)."""

    def __init__(self, source: str, configured: Mapping[str, str] | None, id_key: str) -> None:
        self.source = source
        self.configured = configured
        self.id_key = id_key  # how the map is named in messages: 'organizations'
        self.bound: dict[tuple[str, str], str] = {}   # (source, id) -> slug, every source
        self.owners: dict[str, list[tuple[str, str]]] = {}  # slug -> its (source, id)s
        self.names: dict[str, str] = {}               # id -> the source's current name
        self.fresh: dict[str, str] = {}               # id -> slug, to store on first use
        self.refused: dict[str, str] = {}             # id -> why its rows are skipped

    def load(self, engine: Engine) -> None:
        """Read every source's bindings from the store."""
        with engine.connect() as conn:
            rows = conn.execute(select(table.c.source, table.c.source_id, table.c.slug)).all()
        self.bound = {(source, key): slug for source, key, slug in rows}
        self.owners = {}
        for (source, key), slug in self.bound.items():
            self.owners.setdefault(slug, []).append((source, key))

    def known(self, organizations: Iterable[tuple[Any, Any]]) -> None:
        """The source's organizations as (id, name): new ids that would share one slug are
        refused together, so neither takes the other's place by coming first."""
        wanted: dict[str, list[str]] = {}
        for org_id, name in organizations:
            key = str(org_id)
            self.names[key] = "" if name is None else printable(name)
            if self.configured is None and (self.source, key) not in self.bound:
                wanted.setdefault(derived_slug(self.names[key], key), []).append(key)
        for slug, ids in wanted.items():
            if len(ids) > 1:
                for key in ids:
                    self.refused[key] = self._clash(slug, [(self.source, i) for i in ids])

    def _clash(self, slug: str, owners: list[tuple[str, str]]) -> str:
        shown = ", ".join(printable(key) if source == self.source
                          else f"{printable(key)} of source {source!r}"
                          for source, key in sorted(owners))
        return (f"organizations {shown} would all be {slug!r}; give each its slug in "
                f"'{self.id_key}'")

    def slug(self, source_id: Any, name: Any) -> str | Skip:
        """The slug for a row of organization ``source_id`` (named ``name`` in the source
        now), or why the row is skipped."""
        key = str(source_id)
        if name is not None and key not in self.names:
            self.names[key] = printable(name)
        if self.configured is not None:
            slug = self.configured.get(key)
            if slug is None:
                shown = f"{self.names.get(key, '')!r} ({printable(key)})"
                return Skip(NOT_CONFIGURED, f"organization {shown} is not in "
                                            f"'{self.id_key}'")
            self._use(key, slug)
            return slug
        if key in self.refused:
            return Skip(CONFLICT, self.refused[key])
        slug = self.bound.get((self.source, key)) or self.fresh.get(key)
        if slug is not None:
            return slug
        slug = derived_slug(self.names.get(key, ""), key)
        # the same id under another source name is this organization (a renamed source)
        others = [o for o in self.owners.get(slug, []) if o[1] != key]
        if others:
            self.refused[key] = self._clash(slug, [*others, (self.source, key)])
            return Skip(CONFLICT, self.refused[key])
        self._use(key, slug)
        return slug

    def _use(self, key: str, slug: str) -> None:
        if self.bound.get((self.source, key)) != slug and self.fresh.get(key) != slug:
            self.fresh[key] = slug
            self.owners.setdefault(slug, []).append((self.source, key))

    def _check_race(self, conn: Connection) -> None:
        """Refuse (rolling back) when another process bound a slug this one derived since
        ``load``: the store never holds two source organizations under one derived slug."""
        slugs = sorted(set(self.fresh.values()))
        taken = conn.execute(select(table.c.source, table.c.source_id, table.c.slug)
                             .where(table.c.slug.in_(slugs))).all()
        for source, key, slug in taken:
            mine = [k for k, s in self.fresh.items() if s == slug]
            if mine and key not in mine:
                raise SourceError(_race(self.source, mine[0], slug, (source, key)))

    def store(self, engine: Engine, now: datetime) -> None:
        """Keep the bindings first used since the last call (a configured map rebinds)."""
        if not self.fresh:
            return
        rows = [{"source": self.source, "source_id": key, "slug": slug, "bound_at": now}
                for key, slug in sorted(self.fresh.items())]
        statement = db.upsert(engine, table).values(rows)
        if self.configured is not None:
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.source, table.c.source_id],
                set_={"slug": statement.excluded.slug, "bound_at": statement.excluded.bound_at})
        else:
            statement = statement.on_conflict_do_nothing()
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one binding at a time, across processes
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            conn.execute(statement)  # on SQLite this write takes the database's write lock
            if self.configured is None:
                self._check_race(conn)
        for key, slug in self.fresh.items():
            self.bound[(self.source, key)] = slug
        self.fresh.clear()



def _race(source: str, key: str, slug: str, other: tuple[str, str]) -> str:
    return (f"source {source!r}: organization {printable(key)} would be {slug!r}, which "
            f"organization {printable(other[1])} of source {other[0]!r} took at the same "
            f"moment (another sync ran at once); nothing of this page was stored: run "
            f"'reporter sync' again, and it names the conflict")


def name_organizations(engine: Engine, names: Mapping[str, str], what: str) -> list[str]:
    """Create the organizations ``names`` holds (slug -> the source's name) and give those
    that exist the source's current name; the slugs created."""
    created: list[str] = []
    if not names:
        return created
    current = {o.slug: o for o in orgs.list_orgs(engine)}
    for slug, name in sorted(names.items()):
        known = current.get(slug)
        if known is not None and (not name or known.name == name):
            continue
        try:
            orgs.set_org(engine, slug, name=name or None)
        except ReporterError as exc:  # a name the store refuses: keep the slug
            log.warning("organization %s: %s's name is not used: %s", slug, what, exc)
            if known is None:
                orgs.set_org(engine, slug)
                created.append(slug)
            continue
        if known is None:
            created.append(slug)
        else:
            log.info("organization %s: name %r from %s", slug, printable(name), what)
    return created
