"""Amounts and durations as people type them, parsed exactly (no floats): ``0.01ether``, ``5gwei``, ``1e15``,
``2.5token``, ``30d``, ``12h``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ledgermind.errors import InvalidInputError

_UNITS = {"": 0, "wei": 0, "gwei": 9, "ether": 18, "eth": 18, "token": 18, "tokens": 18, "lmpay": 18}
_AMOUNT = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_amount(text: str) -> int:
    """An amount in the token's smallest unit: a plain integer is wei (or the token's smallest unit); a unit
    scales it (``gwei`` 10^9; ``ether``, ``eth``, ``token``, ``lmpay`` 10^18). Raises InvalidInputError for
    anything else, or a fraction of the smallest unit."""
    m = _AMOUNT.fullmatch(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise InvalidInputError(f"amount {text!r} is not a number with an optional unit (wei, gwei, ether, token)")
    try:
        value = Decimal(m.group(1).replace("_", "")) * (Decimal(10) ** _UNITS[unit])
    except InvalidOperation:
        raise InvalidInputError(f"amount {text!r} is not a number") from None
    if value != value.to_integral_value():
        raise InvalidInputError(f"amount {text!r} is a fraction of the smallest unit")
    if value >= 2**256:
        raise InvalidInputError(f"amount {text!r} does not fit in 256 bits")
    return int(value)


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``12h``, ``30d`` or ``2w``. Raises InvalidInputError."""
    m = _DURATION.fullmatch(text)
    if m is None or int(m.group(1)) == 0:
        raise InvalidInputError(f"duration {text!r} is not a positive number with an optional unit (s, m, h, d, w)")
    return int(m.group(1)) * _SECONDS[m.group(2).lower()]


def whole(value: int | str) -> str:
    """An 18-decimal amount in whole units, exactly: ``1500000000000000000`` -> ``1.5``."""
    v = Decimal(int(value)) / Decimal(10**18)
    return format(v.normalize(), "f") if v else "0"


def format_amount(value: int | str, token: str | None = None, demo: str | None = None) -> str:
    """``1.5 ETH`` for the native coin, ``2 LMPAY`` for the demo token, else ``N units of 0xABC…``; exact."""
    text = whole(value)
    if token is None or int(token, 16) == 0:
        return f"{text} ETH"
    if demo is not None and token.lower() == demo.lower():
        return f"{text} LMPAY"
    return f"{int(value)} units of {token[:10]}…"
