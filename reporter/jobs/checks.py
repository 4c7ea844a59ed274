"""What ``reporter validate`` warns about in the database, beside the file: organizations a
job will reach that cannot receive it (no owner or admin for an ``admins`` audience), and
organizations ingest or sync created that still have the defaults (timezone UTC, the slug
as name). Warnings, not errors: the file is right, the data needs a hand."""

from __future__ import annotations

from sqlalchemy import Engine

from reporter.config import Config
from reporter.store import orgs

_ADMINS = ("owner", "admin")


def warnings(engine: Engine, config: Config) -> list[str]:
    """One line per organization and problem, in job and slug order."""
    known = {o.slug: o for o in orgs.list_orgs(engine)}
    reached: dict[str, list[str]] = {}  # slug -> the jobs that reach it
    admin_jobs: dict[str, list[str]] = {}  # slug -> the jobs that send it to its admins
    for job in config.jobs.values():
        if not job.enabled:
            continue
        slugs = list(known) if job.organizations is None else [
            s for s in job.organizations if s in known]
        for slug in slugs:
            reached.setdefault(slug, []).append(job.name)
            if job.audience == "admins" and job.email is not None:
                admin_jobs.setdefault(slug, []).append(job.name)
    lines = []
    for slug in sorted(admin_jobs):
        people = orgs.members(engine, known[slug].id)
        if not any(m.role in _ADMINS for m in people):
            lines.append(f"organization {slug!r} has no owner or admin, so job(s) "
                         f"{', '.join(admin_jobs[slug])} will fail for it on every run: "
                         f"reporter member set {slug} EMAIL --role admin")
    for slug in sorted(reached):
        org = known[slug]
        if org.timezone == orgs.DEFAULT_TIMEZONE and org.name == org.slug:
            lines.append(f"organization {slug!r} still has the defaults ingest and sync give "
                         f"(timezone {orgs.DEFAULT_TIMEZONE}, its slug as name), so its days "
                         f"end at midnight UTC: reporter org set {slug} --name NAME "
                         f"--timezone ZONE")
    return lines
