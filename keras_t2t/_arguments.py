"""Argument checks where arguments enter the library, in one message style.

Every public constructor and function checks its arguments here before it
does any work. A message names the argument, says what is allowed and
shows the value received as the caller wrote it, as Keras and keras-hub
do:

    `batch_size` must be an integer >= 1. Received: batch_size=0

Each check returns the value (an integer as a Python `int`), so that a
constructor can check and store in one line.
"""

import difflib
import functools
import inspect
import math
import numbers

# Keyword arguments that Keras layers and models take through `**kwargs`.
_KERAS_KEYWORDS = frozenset(
    (
        "name dtype trainable autocast activity_regularizer input_dim "
        "input_shape batch_input_shape batch_size weights inputs outputs"
    ).split()
)


def _received(name, value):
    return f"Received: {name}={value!r}"


def require(condition, message):
    """Raises `ValueError(message)` unless `condition`."""
    if not condition:
        raise ValueError(message)


def integer(name, value, minimum=None, maximum=None, *, allow_none=False):
    """`value` as an `int` in `[minimum, maximum]`; a bool is refused."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        ok = (minimum is None or value >= minimum) and (
            maximum is None or value <= maximum
        )
    if not ok:
        raise ValueError(
            f"`{name}` must be {_integer_rule(minimum, maximum, allow_none)}."
            f" {_received(name, value)}"
        )
    return int(value)


def _integer_rule(minimum, maximum, allow_none):
    rule = "an integer"
    if minimum is not None and maximum is not None:
        rule += f" in [{minimum}, {maximum}]"
    elif minimum is not None:
        rule += f" >= {minimum}"
    elif maximum is not None:
        rule += f" <= {maximum}"
    return rule + (" or None" if allow_none else "")


def number(
    name,
    value,
    minimum=None,
    maximum=None,
    *,
    above=None,
    below=None,
    allow_none=False,
):
    """`value` as a finite `float` in the range given.

    `minimum`/`maximum` are inclusive bounds, `above`/`below` exclusive.
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum)
    ok = ok and (maximum is None or value <= maximum)
    ok = ok and (above is None or value > above)
    ok = ok and (below is None or value < below)
    if not ok:
        bounds = [
            f"{sign} {bound}"
            for sign, bound in (
                (">=", minimum),
                (">", above),
                ("<=", maximum),
                ("<", below),
            )
            if bound is not None
        ]
        rule = (
            "a finite number" + (" " if bounds else "") + " and ".join(bounds)
        )
        rule += " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be {rule}. {_received(name, value)}")
    return float(value)


def choice(name, value, choices):
    """`value`, one of `choices`; a near miss is named."""
    # Choices are strings (and `None`): compared without `==` on arrays.
    if any(
        value is c or (isinstance(value, str) and value == c) for c in choices
    ):
        return value
    hint = _closest(value, choices)
    raise ValueError(
        f"`{name}` must be one of {list(choices)}{hint}. "
        f"{_received(name, value)}"
    )


def boolean(name, value):
    """`value`, a bool (numpy's too)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(
        f"`{name}` must be True or False. {_received(name, value)}"
    )


def keywords(owner, received, allowed):
    """Refuses keyword arguments `owner` does not take, naming the closest.

    Args:
        owner: str. The callable's name, as the user calls it.
        received: the keyword arguments given (a dict or names).
        allowed: the names `owner` takes.
    """
    unknown = sorted(set(received) - set(allowed))
    if not unknown:
        return
    name = unknown[0]
    hint = _closest(name, allowed)
    raise TypeError(
        f"{owner} got an unexpected keyword argument {name!r}{hint}."
        + (f" (Also unknown: {unknown[1:]}.)" if len(unknown) > 1 else "")
    )


def _closest(value, choices):
    if not isinstance(value, str):
        return ""
    names = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def suggests_keywords(function):
    """Refuses a misspelled keyword argument, naming the closest valid one.

    Python's own message names the bad keyword only; a function that takes
    `**kwargs` (a Keras layer's) would pass it on, for Keras to refuse
    without a hint. Here a keyword `function` does not take is refused
    with the closest of its arguments; where `function` takes `**kwargs`,
    only a near miss of one of its own arguments is.
    """
    parameters = inspect.signature(function).parameters
    kinds = {p.kind for p in parameters.values()}
    open_ended = inspect.Parameter.VAR_KEYWORD in kinds
    names = [
        name
        for name, p in parameters.items()
        if p.kind
        not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        and name != "self"
    ]

    @functools.wraps(function)
    def checked(*args, **kwargs):
        unknown = [name for name in kwargs if name not in parameters]
        if open_ended:
            unknown = [
                name
                for name in unknown
                if name not in _KERAS_KEYWORDS
                and difflib.get_close_matches(name, names, n=1, cutoff=0.75)
            ]
        if unknown:
            owner = function.__name__
            if owner == "__init__":
                owner = type(args[0]).__name__
            keywords(f"{owner}()", unknown, names)
        return function(*args, **kwargs)

    # Keras reads a layer's constructor with `inspect.getfullargspec`,
    # which does not follow `__wrapped__` but reads `__signature__`.
    checked.__signature__ = inspect.signature(function)
    return checked
