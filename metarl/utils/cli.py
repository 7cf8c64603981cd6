"""Command-line settings for the experiment scripts: ``tyro`` parsing plus declared checks.

A script describes its settings as a dataclass; :func:`parse_settings` turns it into a CLI with
``tyro`` (as CleanRL does), so ``--help`` lists every field with the text of its docstring or
``# comment``, its default and, for ``Literal`` fields, its choices. Rules on values are declared
next to the type with ``typing.Annotated`` and checked before the script does any work::

    from dataclasses import dataclass
    from typing import Annotated, Literal

    from metarl.utils.cli import Check, Discount, NonNegative, Positive, parse_settings


    @dataclass
    class Settings:
        \"\"\"Meta-RL training.\"\"\"

        iterations: Annotated[int, NonNegative] = 200  # meta-updates (0: evaluate only)
        hidden: Annotated[tuple[int, ...], Positive] = (100, 100)  # checked item by item
        gamma: Annotated[float, Discount] = 0.99
        inner_batch: Annotated[int, NonNegative] | None = None  # None: all examples
        activation: Literal["relu", "tanh"] = "relu"
        ways: Annotated[int, Check(lambda n: n >= 2, "must be >= 2")] = 5

        def validate(self) -> None:  # optional: rules across fields
            if self.iterations == 0 and self.activation == "tanh":
                raise ValueError("--activation tanh needs --iterations > 0")


    s = parse_settings(Settings, argv)  # --iterations -3 exits with status 2

Flags are ``--field-name value`` (``--field_name`` is accepted too), booleans ``--flag`` /
``--no-flag``, tuples take several values (``--hidden 64 64``) and ``X | None`` fields take
``None`` (or ``none``). A field without a default is a required flag.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union

import tyro
from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec, PrimitiveTypeInfo

__all__ = [
    "Check",
    "Discount",
    "JsonObject",
    "NonEmpty",
    "NonNegative",
    "Positive",
    "Probability",
    "check_settings",
    "json_object",
    "parse_settings",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule on a settings value, declared with ``typing.Annotated``.

    ``predicate(value)`` is true for an allowed value; ``rule`` completes the error message
    ``"--flag <rule>, got <value>"``, so it reads like ``"must be > 0"``. On a tuple field the
    check applies to each item, unless ``each=False`` (then to the whole tuple). ``None`` (of an
    ``X | None`` field) is never checked::

        ways: Annotated[int, Check(lambda n: n >= 2, "must be >= 2")] = 5
        hidden: Annotated[tuple[int, ...], Positive, NonEmpty] = (100, 100)
    """

    predicate: Callable[[Any], bool]
    rule: str
    each: bool = True

    def __call__(self, value: Any) -> bool:
        """Whether ``value`` satisfies the rule."""
        return bool(self.predicate(value))

    def __repr__(self) -> str:
        return f"Check({self.rule!r})"


Positive = Check(lambda x: x > 0, "must be > 0")
NonNegative = Check(lambda x: x >= 0, "must be >= 0")
Probability = Check(lambda x: 0 <= x <= 1, "must be in [0, 1]")
Discount = Check(lambda x: 0 < x <= 1, "must be in (0, 1]")
NonEmpty = Check(lambda xs: len(xs) > 0, "must have at least one value", each=False)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


JsonObject = Check(_is_json_object, "must be a JSON object, e.g. '{\"arms\": 10}'")


def check_settings(settings: Any) -> None:
    """Check a settings dataclass instance against its declared rules, without any CLI.

    Runs every :class:`Check` found in the fields' ``Annotated`` types (on nested settings
    dataclasses too), then the instance's ``validate()`` method if it defines one.

    Raises:
        ValueError: on the first broken rule, e.g. ``"--iterations must be >= 0, got -3"``
            (fields are named by their flag), or whatever ``validate()`` raised.
        TypeError: if ``settings`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        raise TypeError(f"{settings!r} is not a dataclass instance")
    _check_fields(settings, prefix="")


def parse_settings(
    cls: type[T], argv: Sequence[str] | None = None, description: str | None = None
) -> T:
    """Parse command-line flags into the settings dataclass ``cls`` and check them.

    Args:
        cls: a dataclass; each field becomes a ``--field-name`` flag (required when the field
            has no default), documented in ``--help`` by the field's docstring or comment.
        argv: the arguments to parse; ``None`` means ``sys.argv[1:]``.
        description: the text at the top of ``--help``; ``None`` means ``cls``'s docstring.

    Returns:
        The parsed settings, which passed :func:`check_settings`.

    Raises:
        SystemExit: with status 2 for a flag or value that does not parse, or for settings that
            break a declared rule or ``validate()``, after printing the reason to stderr (as
            argparse does); with status 0 after ``--help``.
    """
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"{cls!r} is not a dataclass")
    settings = tyro.cli(
        cls,
        args=None if argv is None else list(argv),
        description=description,
        registry=_REGISTRY,
    )
    try:
        check_settings(settings)
    except ValueError as error:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "main"
        print(f"usage: {prog} [-h] [OPTIONS]\n{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    return settings


def json_object(text: str, flag: str) -> dict[str, Any]:
    """A flag's value ``text`` read as a JSON object (e.g. an environment's keyword
    arguments); ``SystemExit`` naming ``flag`` if it is not JSON or not an object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"{flag} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise SystemExit(f"{flag} must be a JSON object, got {text!r}")
    return value


# tyro spells a missing value ``None``; also take ``none``, as the argparse version did.
_REGISTRY = ConstructorRegistry()


@_REGISTRY.primitive_rule
def _none_rule(type_info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    if type_info.type is not type(None):
        return None
    return PrimitiveConstructorSpec(
        nargs=1,
        metavar="{None}",
        choices=("None", "none"),
        instance_from_str=lambda args: None,
        is_instance=lambda x: x is None,
        str_from_instance=lambda instance: ["None"],
    )


def _check_fields(settings: Any, prefix: str) -> None:
    hints = typing.get_type_hints(type(settings), include_extras=True)
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        flag = f"--{prefix}{field.name.replace('_', '-')}"
        for check, bad in _violations(value, hints.get(field.name, Any)):
            shown = f"{bad!r}" if bad is value else f"{bad!r} (in {value!r})"
            raise ValueError(f"{flag} {check.rule}, got {shown}")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            _check_fields(value, prefix=flag[2:] + ".")
    validate = getattr(settings, "validate", None)
    if callable(validate):
        validate()


def _violations(value: Any, hint: Any) -> Iterator[tuple[Check, Any]]:
    """Yield ``(check, offending value)`` for each declared rule ``value`` breaks."""
    if value is None:
        return
    origin = typing.get_origin(hint)
    if origin is Annotated:
        inner, *metadata = typing.get_args(hint)
        yield from _violations(value, inner)
        for check in metadata:
            if isinstance(check, Check):
                each = check.each and isinstance(value, (tuple, list))
                items = value if each else (value,)
                yield from ((check, item) for item in items if item is not None and not check(item))
    elif origin in (Union, types.UnionType):
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        matching = [arm for arm in arms if _matches(value, arm)] if len(arms) > 1 else arms
        for arm in matching:
            yield from _violations(value, arm)
    elif origin is tuple and isinstance(value, tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        for item, item_hint in zip(value, args):
            yield from _violations(item, item_hint)


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` could belong to the union arm ``hint`` (so that arm's checks apply)."""
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is Literal:
        return value in typing.get_args(hint)
    kind = typing.get_origin(hint) or hint
    try:
        return isinstance(value, kind)
    except TypeError:
        return True
