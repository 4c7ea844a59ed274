"""Email addresses: the one rule for what reporter accepts as an address, and its spelling.

An address is one mailbox (``local@domain``): no display name, no list, no whitespace or
control characters. It is checked with email-validator (syntax only, no DNS) and
normalized: the domain as email-validator spells it, the whole address in lower case, so
``Alice@ACME.com`` and ``alice@acme.com`` are one member.
"""

from __future__ import annotations

import functools

from reporter.errors import ReporterError

#: the longest address a mail server must accept (RFC 5321: 64 + 1 + 255, as stored)
MAX_LENGTH = 320


class AddressError(ReporterError):
    """Text that is not one valid email address."""


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
    from email_validator import EmailNotValidError, validate_email  # 25 ms: on first use

    try:
        checked = validate_email(stripped, check_deliverability=False,
                                 allow_smtputf8=True, allow_display_name=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{stripped!r} is not an email address: {exc}") from None
    return checked.normalized.lower()


def is_valid(text: str) -> bool:
    """Whether ``text`` is one valid email address."""
    try:
        normalize(text)
    except AddressError:
        return False
    return True
