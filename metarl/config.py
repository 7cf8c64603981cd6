"""Objects that record how they were built, so a checkpoint can rebuild them.

A class that derives from ``Configurable`` remembers the arguments of the constructor call
that made each instance (defaults filled in) as ``obj.config``, and registers itself under
its import path. ``describe(obj)`` turns an instance into a plain record
``{"class": "metarl.nn.Conv4", "kwargs": {...}}`` that ``torch.load(weights_only=True)``
reads back, and ``build(record)`` makes a fresh instance from it. Networks (``metarl.nn``,
the policies of ``metarl.rl``) and meta-learners (``metarl.core``) are configurable; a
user's own class becomes one by deriving from ``Configurable``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

PLAIN = (bool, int, float, str, type(None))

_CLASSES: dict[str, type] = {}


def class_path(cls: type) -> str:
    """``module.QualName``: the key a configurable class is registered and saved under."""
    return f"{cls.__module__}.{cls.__qualname__}"


class Configurable:
    """Mixin: record the constructor's arguments as ``self.config`` (see the module docstring).

    ``config_excludes`` names constructor arguments that are not part of the record because
    they are saved another way (a meta-learner's ``model`` is described on its own).
    Arguments must be plain values (numbers, strings, booleans, ``None`` and tuples, lists
    or string-keyed dicts of them) for the instance to be saved; ``describe`` checks this.
    """

    config_excludes: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[class_path(cls)] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Any, *args: Any, **kw: Any) -> None:
            # Only the outermost constructor call records: a subclass's super().__init__
            # must not overwrite what the user actually asked for.
            if "_config" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                values = dict(bound.arguments)
                values.pop(next(iter(signature.parameters)))  # self
                for name, parameter in signature.parameters.items():
                    if parameter.kind is inspect.Parameter.VAR_KEYWORD and name in values:
                        values.update(values.pop(name))
                for name in type(self).config_excludes:
                    values.pop(name, None)
                object.__setattr__(self, "_config", values)
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments this instance was built with (a copy)."""
        return dict(self.__dict__.get("_config", {}))


def _check_plain(value: Any, where: str) -> Any:
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_check_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _check_plain(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(
        f"{where} is a {type(value).__name__}, which a checkpoint cannot record; "
        "configurable objects take plain values (numbers, strings, tuples) as arguments"
    )


def describe(obj: Any) -> dict[str, Any]:
    """``{"class": <import path>, "kwargs": <constructor arguments>}`` for a configurable."""
    if not isinstance(obj, Configurable) or "_config" not in obj.__dict__:
        raise TypeError(
            f"{type(obj).__name__} does not record its constructor arguments, so it cannot "
            "be rebuilt from a checkpoint: derive it from metarl.config.Configurable (as "
            "metarl.nn's networks and the policies of metarl.rl do)"
        )
    path = class_path(type(obj))
    return {"class": path, "kwargs": _check_plain(obj.config, path)}


def resolve(path: str) -> type:
    """The configurable class registered under ``path``, importing it from metarl if needed.

    Only modules of metarl itself are imported on demand (a checkpoint is data, and never
    picks which code runs); a user's own class must be imported before loading.
    """
    if path not in _CLASSES:
        module = path.rsplit(".", 1)[0]
        while module and path not in _CLASSES:
            if module.split(".")[0] == "metarl":
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError:
                    pass
            module = module.rpartition(".")[0]
    if path not in _CLASSES:
        raise ValueError(
            f"the checkpoint names the class {path}, which is not registered here: import the "
            "module that defines it before loading"
        )
    return _CLASSES[path]


def build(record: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """A fresh instance from a ``describe`` record; ``args`` / ``kwargs`` add to its
    arguments (a meta-learner's model, which is recorded on its own)."""
    cls = resolve(record["class"])
    return cls(*args, **{**record["kwargs"], **kwargs})
