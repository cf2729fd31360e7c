"""The error raised for bad settings, before any work starts."""

from hydra.errors import CompactHydraException


class ConfigError(ValueError, CompactHydraException):
    """A setting has a value that is not allowed.

    The message names the setting, the value given and what is allowed. It is
    a ``ValueError`` for library callers; Hydra prints it as one line.
    """


def check_int(value, key: str, minimum: int) -> int:
    """Returns ``value`` as an int, or raises if it is not an integer ``≥ minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{key}={value!r} is not allowed: expected an integer ≥ {minimum}"
        )
    return int(value)


def check_float(
    value, key: str, *, greater_than: float | None = None, at_least: float | None = None
) -> float:
    """Returns ``value`` as a finite float, or raises naming the allowed range."""
    if greater_than is not None:
        allowed = f"a finite number > {greater_than:g}"
    elif at_least is not None:
        allowed = f"a finite number ≥ {at_least:g}"
    else:
        allowed = "a finite number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key}={value!r} is not allowed: expected {allowed}"
        ) from None
    if (
        isinstance(value, bool)
        or number != number
        or number in (float("inf"), float("-inf"))
        or (greater_than is not None and not number > greater_than)
        or (at_least is not None and not number >= at_least)
    ):
        raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    return number


def check_choice(value, key: str, choices) -> str:
    """Returns ``value`` if it is one of ``choices``, or raises listing them."""
    if value not in choices:
        raise ConfigError(
            f"{key}={value!r} is not allowed: expected one of {', '.join(choices)}"
        )
    return value


def check_bool(value, key: str) -> bool:
    """Returns ``value`` if it is a boolean, or raises."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not allowed: expected true or false")
    return value
