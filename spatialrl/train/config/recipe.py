"""Job configs as YAML recipes and ``key=value`` overrides.

YAML layout: one flat mapping of field names, plus an optional top-level ``job: grpo | sft``
(default ``grpo``). Unknown keys are an error that names the key, suggests the closest valid
one and lists them all. A key given twice in one mapping is an error (PyYAML would keep the
last one silently).

Overrides (``spatialrl train --config C key=value ...``): the value is parsed as a YAML scalar
or flow collection (``lr=2e-6``, ``lora=true``, ``question_types=[object_count, rel_direction]``,
``adv_clip=null``). Mapping fields take one entry at a time with a dot:
``rewards.accuracy=0.8``, ``extra_trl_args.warmup_steps=0.05``. All other keys are flat
(``k_max=50``, not ``sharpness.k_max``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spatialrl.train.config.jobs import JOBS, ConfigError, _did_you_mean, _type_name

__all__ = ["apply_overrides", "describe", "dump_yaml", "load_config", "parse_override", "save_config", "to_dict"]


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown_key(key: str, cls: type, where: str) -> ConfigError:
    valid = _field_names(cls)
    return ConfigError(f"unknown key {key!r}{where} for a {cls.JOB} job{_did_you_mean(key, valid + ['job'])}; "
                       f"valid keys: job, {', '.join(valid)}")


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """``cls(**data)`` with unknown and missing keys reported by name."""
    for key in data:
        if key not in _field_names(cls):
            raise _unknown_key(key, cls, where)
    missing = [f.name for f in dataclasses.fields(cls) if f.metadata.get("required") and f.name not in data]
    if missing:
        helps = "; ".join(f"{f.name}: {f.metadata['help']}" for f in dataclasses.fields(cls) if f.name in missing)
        raise ConfigError(f"{cls.__name__}.{missing[0]} is required{where}: add `{missing[0]}: ...` "
                          f"(missing: {', '.join(missing)}; {helps})")
    return cls(**data)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a plain dict: ``job`` first, then every field in declaration order."""
    out: dict[str, Any] = {"job": cfg.JOB}
    for f in dataclasses.fields(cfg):
        out[f.name] = copy.deepcopy(getattr(cfg, f.name))
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"key=value"`` -> (key path, value); the value is parsed as YAML (scalar or flow collection)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. learning_rate=2e-6)")
    key, raw = text.split("=", 1)
    key = key.strip()
    path = key.split(".")
    if not key or any(not p for p in path):
        raise ConfigError(f"override {text!r} has an empty key; write key=value (e.g. max_steps=200)")
    try:
        value = _yaml_load_unique(raw) if raw.strip() else None
    except yaml.constructor.ConstructorError as exc:
        if "duplicate key" not in str(exc.problem):
            value = raw
        else:  # "rewards={accuracy: 0.9, accuracy: 0.5}": refused as in a recipe file
            raise ConfigError(f"override {text!r}: {exc.problem}") from None
    except yaml.YAMLError:
        value = raw
    return path, value


def _merge_overrides(cls: type, data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    hints = typing.get_type_hints(cls)
    for text in overrides:
        path, value = parse_override(text)
        head = path[0]
        if head == "job":
            raise ConfigError(f"override {text!r}: the job type cannot be overridden; use a config with job: ...")
        if head not in _field_names(cls):
            raise _unknown_key(head, cls, f" in override {text!r}")
        if len(path) == 1:
            data[head] = value
            continue
        if typing.get_origin(hints[head]) is not dict or len(path) != 2:
            raise ConfigError(f"override {text!r}: {head} is not a mapping; write {head}=VALUE" if
                              typing.get_origin(hints[head]) is not dict else
                              f"override {text!r}: use one dot, {head}.KEY=VALUE")
        current = data.get(head)
        if current is None:
            current = copy.deepcopy(next(f for f in dataclasses.fields(cls) if f.name == head).default_factory())  # type: ignore[misc]
        if not isinstance(current, dict):
            raise ConfigError(f"override {text!r}: {head} is not a mapping in the config")
        current = dict(current)
        current[path[1]] = value
        data[head] = current
    return data


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """A new, validated config: ``cfg`` with ``key=value`` overrides applied (see the module doc)."""
    overrides = list(overrides)
    if not overrides:
        return cfg
    data = to_dict(cfg)
    data.pop("job")
    return _build(type(cfg), _merge_overrides(type(cfg), data, overrides))


def _yaml_load_unique(stream: Any) -> Any:
    """``yaml.safe_load`` that refuses a mapping holding one key twice (PyYAML keeps the last one
    silently, so a recipe's second ``max_steps:`` would win without a word)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # an unhashable key; SafeLoader reports it
                    continue
                if seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first on line {first[key]}); keep one of them",
                        key_node.start_mark)
                first[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return yaml.load(stream, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def load_config(path: str | os.PathLike, overrides: Iterable[str] = (), job: str | None = None) -> Any:
    """Read a YAML job config, apply ``key=value`` overrides, validate.

    The file's top-level ``job`` (``grpo`` or ``sft``; default ``grpo``, or ``job`` when given)
    picks the class. ``job``: the job the caller runs; a file for another job is an error.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found")
    try:
        with p.open(encoding="utf-8") as stream:  # a stream: YAML's error marks name the file
            data = _yaml_load_unique(stream)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a YAML mapping of key: value, got {type(data).__name__}")
    file_job = data.pop("job", None)
    if job is not None and job not in JOBS:
        raise ValueError(f"job must be one of {sorted(JOBS)}, got {job!r}")
    kind = file_job if file_job is not None else (job or "grpo")
    if kind not in JOBS:
        raise ConfigError(f"{p}: job must be one of {', '.join(JOBS)}{_did_you_mean(str(kind), JOBS)}; got {kind!r}")
    if job is not None and kind != job:
        command = {"grpo": "spatialrl train", "sft": "spatialrl sft"}
        raise ConfigError(f"{p} is a {kind} job config (job: {kind}); run it with `{command[kind]}`, or give a "
                          f"config with job: {job}")
    cls = JOBS[kind]
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{p}: keys must be strings, got {key!r}")
        if key not in _field_names(cls):
            raise _unknown_key(key, cls, f" in {p}")
    data = _merge_overrides(cls, data, overrides)
    try:
        return _build(cls, data, f" in {p}")
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if str(p) in msg else f"{msg} [config: {p}]") from None


def dump_yaml(cfg: Any, comments: bool = True) -> str:
    """The config as YAML (``job`` first); with ``comments``, each key is preceded by its help text."""
    import textwrap

    import yaml

    lines: list[str] = []
    helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cfg)}
    for key, value in to_dict(cfg).items():
        if comments and helps.get(key):
            lines.extend("# " + line for line in textwrap.wrap(helps[key], 98))
        # one line per key, collections in flow style: dump [value] and drop the outer brackets
        flow = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=10_000).strip()
        lines.append(f"{key}: {flow[1:-1]}")
    return "\n".join(lines) + "\n"


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as commented YAML that :func:`load_config` reads back to an equal config."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(dump_yaml(cfg), encoding="utf-8")
    return p


def describe(cls: type) -> str:
    """One line per field: name, type, default, help (``spatialrl train --list-keys``)."""
    hints = typing.get_type_hints(cls)
    rows = [f"job: {cls.JOB}  ({cls.__name__})"]
    for f in dataclasses.fields(cls):
        if f.metadata.get("required"):
            default = "(required)"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f"default {f.default_factory()!r}"  # type: ignore[misc]
        else:
            default = f"default {f.default!r}"
        rows.append(f"  {f.name} ({_type_name(hints[f.name])}, {default}): {f.metadata.get('help', '')}")
    return "\n".join(rows)
