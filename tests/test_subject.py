"""Subject templates are sandboxed and bounded: a hostile subject is refused, never run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reporter.config import ConfigErrors, parse
from reporter.deliver.subject import render_subject, sample_context

HOSTILE = [
    '{{ "a" * 10**10 }}',
    '{{ [1] * 10**10 }}',
    '{{ 7 ** 999999999 }}',
    '{{ "%99999999999s" % "x" }}',
    '{{ "{:>99999999999}".format(1) }}',
    '{{ "{x:>99999999999}".format_map({"x": 1}) }}',
    '{{ "x".center(10**10) }}',
    '{{ "x".ljust(10**10) }}',
    '{{ "x"|center(10**10) }}',
    '{{ "x"|indent(10**10) }}',
]

JOB = """\
jobs:
  weekly:
    period: previous-week
    formats: [json]
    deliver:
      email:
        subject: '{subject}'
"""


@pytest.mark.parametrize("subject", HOSTILE)
def test_a_hostile_subject_is_refused_at_load_time_in_one_line(subject: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigErrors) as caught:
        parse(JOB.format(subject=subject.replace("'", "''")), Path("jobs.yaml"), env={})
    assert time.monotonic() - started < 5
    [message] = caught.value.messages
    assert message.startswith("jobs.yaml:7: job 'weekly': subject")
    assert "\n" not in message


def test_ordinary_subjects_still_render() -> None:
    text = render_subject('{{ organization.name }}: {{ "ab" * 3 }} {{ 2 ** 10 }} '
                          '{{ period.label|upper }}', sample_context())
    assert text == "Acme: ababab 1024 JAN 5 – 11, 2026 (UTC)"
