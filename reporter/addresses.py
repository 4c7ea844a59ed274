"""Email addresses: the one rule for what reporter accepts as an address, and its spelling.

An address is one mailbox (``local@domain``): no display name, no list, no whitespace or
control characters. It is an identifier first (a member is known by it), so every
syntactically valid mailbox is accepted, special-use domains included (``corp.local``,
``build.test``, ``host.internal``): a mail server inside the network may well deliver to
them, and one that cannot says so when a message is sent. It is checked with
email-validator (syntax only, no DNS) and
normalized: the domain as email-validator spells it, the whole address in lower case, so
``Alice@ACME.com`` and ``alice@acme.com`` are one member.
"""

from __future__ import annotations

import functools
from types import ModuleType

from reporter.errors import ReporterError

#: the longest address a mail server must accept (RFC 5321: 64 + 1 + 255, as stored)
MAX_LENGTH = 320


class AddressError(ReporterError):
    """Text that is not one valid email address."""


@functools.cache
def _validator() -> ModuleType:
    """email-validator, imported on first use (25 ms). It refuses special-use domains
    (.local, .test, .internal, localhost...) even with globally_deliverable=False; emptying
    its list is its documented way to accept them."""
    import email_validator

    email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = []
    return email_validator


@functools.lru_cache(maxsize=65_536)
def normalize(text: str) -> str:
    """The address in ``text``, normalized; AddressError saying why when it is not one."""
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not an email address")
    stripped = text.strip()
    if not stripped:
        raise AddressError("the email address is empty")
    if len(stripped) > MAX_LENGTH:
        raise AddressError(f"email address is longer than {MAX_LENGTH} characters")
    validator = _validator()
    try:
        checked = validator.validate_email(stripped, check_deliverability=False,
                                           globally_deliverable=False, allow_smtputf8=True,
                                           allow_display_name=False)
    except validator.EmailNotValidError as exc:
        raise AddressError(f"{stripped!r} is not an email address: {exc}") from None
    normalized: str = checked.normalized.lower()
    return normalized


def is_valid(text: str) -> bool:
    """Whether ``text`` is one valid email address."""
    try:
        normalize(text)
    except AddressError:
        return False
    return True
