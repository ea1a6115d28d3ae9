"""The settings records' common base, below every package: a frozen dataclass whose fields
are declared with ``setting(default, help)`` and round-trip through JSON with their types
checked (``DatasetSpec``, ``TrainConfig``, a method's ``Settings``)."""

from __future__ import annotations

from dataclasses import asdict, field, fields
from typing import Any

from comm_diag.errors import InputError

_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def setting(default: Any, help: str) -> Any:
    """A config field and its one-line help: the dataclass names, types, sets the default of
    and documents each setting, and the command line builds its options from it."""
    return field(default=default, metadata={"help": help})


class DictConfig:
    """JSON round trip for the frozen config dataclasses (DatasetSpec, comm's TrainConfig)."""

    _what = "settings"  # named in the error on unknown keys

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        unknown = set(d) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise InputError(f"unknown {cls._what}: {', '.join(sorted(unknown))}")
        cls.check_types(d)
        return cls(**d)

    @classmethod
    def check_types(cls, d: dict[str, Any]) -> None:
        """ValueError naming the first value whose JSON type is not its field's (a config file
        written by hand or damaged: ``"epochs": "one"``); names that are not fields are skipped."""
        kinds = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
        for key, value in d.items():
            kind = kinds.get(key)
            if kind is None:
                continue
            optional = kind.startswith("Optional[")
            base = kind[len("Optional["):-1] if optional else kind
            if value is None and optional:
                continue
            if base.startswith("Mapping"):
                ok = isinstance(value, dict)
            else:
                ok = base not in _TYPES or (isinstance(value, _TYPES[base]) and
                                            (base == "bool" or not isinstance(value, bool)))
            if not ok:
                raise InputError(f"{key} must be {'an' if base[0] in 'aeiou' else 'a'} {base}"
                                 f"{' or null' if optional else ''}, got {value!r}")

    @classmethod
    def parse_value(cls, key: str, text: str) -> Any:
        """A setting given as text on the command line (``--set key=text``), typed by the
        field's annotation: 'None' for an Optional, true/false for a bool, numbers."""
        kind = {f.name: str(f.type) for f in fields(cls)}[key]  # type: ignore[arg-type]
        try:
            if text == "None" and kind.startswith("Optional"):
                return None
            if kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise InputError(text)
                return text.lower() == "true"
            if "float" in kind:
                return float(text)
            if "int" in kind:
                return int(text)
            return text
        except ValueError:
            raise InputError(f"--set {key}: expected {kind.replace('Optional[', '').rstrip(']')}, got {text!r}") from None
