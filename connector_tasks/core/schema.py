"""Typed, validated settings: the base of every connector's connection settings and of each
system's process-wide (environment) settings.

A connector declares a frozen dataclass per kind of settings; :meth:`TypedSettings.from_dict`
checks every value against the field's annotation (``str``, ``int``, ``float``, ``bool``,
``Optional[...]``, ``tuple[str, ...]``, ``Literal[...]``) and refuses unknown keys, so a typo
or a wrong type is a :class:`ConfigurationError` naming the field when the settings are
written, not a ``KeyError`` in a worker hours later.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Mapping

from connector_tasks.core.errors import ConfigurationError

_MISSING = object()


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp, where: str) -> Any:
    """``value`` checked against annotation ``tp`` (a list becomes a tuple; an int is accepted
    where a float is wanted). Raises ConfigurationError naming ``where`` when it does not fit."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigurationError:
                continue
        raise ConfigurationError(f"{where} must be {_describe(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigurationError(f"{where} must be one of {_describe(tp)}, got {value!r}")
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, (list, tuple)):
            return tuple(coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
        raise ConfigurationError(f"{where} must be {_describe(tp)}, got {value!r}")
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigurationError(f"{where} must be a mapping, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigurationError(f"{where} must be {_describe(tp)}, got {value!r}")


class TypedSettings:
    """Mixin of a frozen dataclass of settings: :meth:`from_dict` (validated), :meth:`to_dict`
    (JSON-safe), :meth:`validate` (cross-field rules, overridden by subclasses).

    ``TITLE`` names the settings in errors (e.g. ``"<System> connection"``); ``LEGACY`` maps a
    key stored by an older release to the field that replaces it, or to ``None`` when it is
    dropped on read (values moved elsewhere by a migration)."""

    TITLE: ClassVar[str] = "settings"
    LEGACY: ClassVar[Mapping[str, str | None]] = {}

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """``{field name: resolved annotation}``."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def upgrade(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` with :attr:`LEGACY` keys renamed or dropped (subclasses may do more)."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in cls.LEGACY:
                new = cls.LEGACY[key]
                if new is not None and new not in data:
                    out[new] = value
                continue
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, strict: bool = True):
        """Build and validate from stored/entered values. ``strict``: unknown keys are an error
        (when writing); reading stored settings passes ``strict=False`` so a key a newer release
        wrote does not stop an older worker. Raises ConfigurationError naming the field."""
        data = cls.upgrade(dict(data or {}))
        types_ = cls.field_types()
        unknown = sorted(set(data) - set(types_))
        if unknown and strict:
            raise ConfigurationError(f"{cls.TITLE}: unknown setting(s) {', '.join(unknown)}; "
                                     f"known: {', '.join(types_)}")
        values = {}
        for name, tp in types_.items():
            if name in data:
                values[name] = coerce(data[name], tp, f"{cls.TITLE} setting {name!r}")
        try:
            obj = cls(**values)  # type: ignore[call-arg]
        except TypeError as exc:  # a required field is missing
            missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                       if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                       and f.name not in values]
            raise ConfigurationError(f"{cls.TITLE}: missing setting(s) {', '.join(missing) or exc}") from None
        obj.validate()
        return obj

    def validate(self) -> None:
        """Cross-field rules; raise ConfigurationError naming the setting. Default: none."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples as lists) that :meth:`from_dict` reads back."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def merged(self, changes: Mapping[str, Any]):
        """A validated copy with ``changes`` applied (``None`` resets a field to its default).
        Raises ConfigurationError for an unknown field or a bad value."""
        data = self.to_dict()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return type(self).from_dict(data)
