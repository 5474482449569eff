"""Helpers for the frozen dataclass configs that travel with checkpoints and run records."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, TypeVar

T = TypeVar("T")


def field_names(cls_or_obj: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls_or_obj)}


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build the dataclass `cls` from a dict (a config.json section), refusing unknown keys by
    name: a record written by a newer or older version must fail loudly, not drop settings."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    known = field_names(cls)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    return cls(**data)


def replace(obj: T, **changes: Any) -> T:
    """dataclasses.replace that names unknown fields (its own error is a bare TypeError)."""
    unknown = sorted(set(changes) - field_names(obj))
    if unknown:
        raise ValueError(f"unknown {type(obj).__name__} field(s) {', '.join(unknown)}")
    return dataclasses.replace(obj, **changes)


class ConfigMixin:
    """`from_dict` / `to_dict` / `replace` for a frozen dataclass config. Tuple fields come back
    from JSON as lists; `to_dict` writes them as lists, and `__post_init__` of the config is the
    place to turn them back into tuples."""

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def replace(self: T, **changes: Any) -> T:
        return replace(self, **changes)


def check_max_paths(value: Any, name: str = "max_paths (alpha)") -> int:
    """alpha, the most columns one group (one systolic column) may combine: an integer >= 1.
    The one check every entry point uses (flags, configs, packed files, run records, kernels)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)
