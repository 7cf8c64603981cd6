"""Build a command-line parser from a settings dataclass (CleanRL-style experiment scripts)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def parse_settings(cls: type[T], argv: Sequence[str] | None = None, description: str = "") -> T:
    """Parse ``--field value`` flags for every field of the dataclass ``cls``.

    Booleans become ``--flag`` / ``--no-flag``; ``X | None`` fields accept ``none``; tuple
    fields take several values. Field docstrings are not available at run time, so the help
    text shows each default.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    parser = argparse.ArgumentParser(
        description=description or cls.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        kind, optional = _unwrap_optional(hints[field.name])
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif typing.get_origin(kind) is tuple:
            (item,) = set(typing.get_args(kind)) - {Ellipsis}
            parser.add_argument(flag, type=item, nargs="+", default=default)
        else:
            parser.add_argument(flag, type=_optional(kind) if optional else kind, default=default)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name)
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return hint, False


def _optional(kind: type) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__
    return convert
