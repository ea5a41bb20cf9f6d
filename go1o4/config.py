"""Dataclass configs loaded from YAML, with validation.

``load_config(MyConfig, "file.yaml", overrides=["ppo.lr=3e-4"])`` builds a (nested) dataclass,
rejecting unknown keys and values of the wrong type with the key's full path in the message.
Python 3.8 syntax: used by the simulator and the runtime.
"""
import dataclasses
import math
import typing
from typing import Any, Dict, List, Optional, Sequence, Type, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp) if hasattr(typing, "get_origin") else getattr(tp, "__origin__", None)
    args = typing.get_args(tp) if hasattr(typing, "get_args") else getattr(tp, "__args__", ())
    if tp is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError("%s: expected a mapping for %s, got %r" % (path, tp.__name__, value))
        return from_dict(tp, value, path)
    if origin in (list, List, Sequence, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError("%s: expected a list, got %r" % (path, value))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError("%s: expected a mapping, got %r" % (path, value))
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    value = float(value)  # "1e-3" (YAML 1.1 reads it as a string)
                except ValueError:
                    raise ConfigError("%s: expected a number, got %r" % (path, value))
            else:
                raise ConfigError("%s: expected a number, got %r" % (path, value))
        if not math.isfinite(value):  # "nan", ".inf", 1e999: NaN passes every <= check, inf switches limits off
            raise ConfigError("%s: expected a finite number, got %r" % (path, value))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError("%s: expected an integer, got %r" % (path, value))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError("%s: expected true/false, got %r" % (path, value))
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError("%s: expected a string, got %r" % (path, value))
        return value
    return value


def from_dict(cls: Type[T], data: Dict[str, Any], path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    if data is None:
        data = {}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError("%s: unknown key(s) %s; valid keys: %s" % (path or cls.__name__, unknown, sorted(names)))
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(v, hints[k], ("%s.%s" % (path, k)) if path else k)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, AssertionError) as e:
            raise ConfigError("%s: %s" % (path or cls.__name__, e))
    return obj


def to_dict(obj: Any) -> Dict[str, Any]:
    return dataclasses.asdict(obj)


def _apply_override(data: Dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError("override %r must look like key.sub=value" % override)
    key, raw = override.split("=", 1)
    value = yaml.safe_load(raw)
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError("override %r: %s is not a mapping" % (override, p))
    node[parts[-1]] = value


def load_yaml(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError("config file %s not found" % path)
    except yaml.YAMLError as e:
        raise ConfigError("config file %s is not valid YAML: %s" % (path, e))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config file %s must hold a mapping at the top level" % path)
    return data


def load_config(cls: Type[T], path: Optional[str] = None, overrides: Sequence[str] = (),
                base: Optional[Dict[str, Any]] = None) -> T:
    """Load ``cls`` from defaults <- ``base`` <- YAML file <- ``key=value`` overrides."""
    data = _deep_merge(to_dict(cls()), base or {})
    if path:
        data = _deep_merge(data, load_yaml(path))
    for o in overrides:
        _apply_override(data, o)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError("%s%s" % ("%s: " % path if path else "", e))


def _deep_merge(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def save_config(obj: Any, path: str) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(to_dict(obj), f, sort_keys=False)


def require(obj: Any, prefix: str, positive: Sequence[str] = (), at_least_one: Sequence[str] = (),
            non_negative: Sequence[str] = ()) -> None:
    """ValueError naming ``prefix.field``, its value and the allowed range for the first field out of range:
    ``positive`` (> 0: learning rates), ``at_least_one`` (>= 1: batch sizes), ``non_negative`` (>= 0: steps)."""
    for names, ok, rng in ((positive, lambda v: v > 0, "> 0"), (at_least_one, lambda v: v >= 1, ">= 1"),
                           (non_negative, lambda v: v >= 0, ">= 0")):
        for name in names:
            v = getattr(obj, name)
            if not ok(v):
                raise ValueError("%s%s = %r: must be %s" % (prefix, name, v, rng))
