"""Recipes: YAML plus command-line flags, parsed by TRL's own parser into a :class:`Job`.

A recipe is one flat YAML mapping. Its keys are the fields of TRL's config (``GRPOConfig`` for
``job: grpo``, ``SFTConfig`` for ``job: sft``), each by its own name, and spatialrl's fields
(:mod:`.arguments`), plus an optional top-level ``job`` (default ``grpo``) and TRL's ``env``
mapping (environment variables set before anything runs). Unknown keys are an error that names
the key, suggests the closest valid one and says where the valid keys are listed; a key given
twice is an error (PyYAML would keep the last one silently).

On the command line, after ``--config C``:

- any field as a flag, exactly as TRL's scripts take it (``--learning_rate 1e-6
  --num_generations 8 --use_vllm true --question_types object_count rel_direction``), parsed by
  :class:`trl.TrlParser` (an ``HfArgumentParser``) with each field's type and help;
- or ``key=value`` with a YAML value, applied like a line of the recipe (``rewards.accuracy=0.8``
  sets one entry of a mapping; ``question_types=[object_count]``; ``adv_clip=null``).

Flags win over ``key=value``, which wins over the file. On a machine without CUDA the job is
made runnable here: ``bf16`` off and ``use_cpu`` on (the change is listed in ``Job.adjusted``;
the plan still sizes the recipe as written).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialrl.train.config.arguments import SPATIAL_ARGUMENTS, ConfigError, _did_you_mean, _type_name

__all__ = [
    "JOBS",
    "Job",
    "apply_overrides",
    "check_job",
    "describe",
    "dump_yaml",
    "job_parser",
    "load_config",
    "make_job",
    "parse_job",
    "parse_override",
    "replace_job",
    "save_config",
    "to_dict",
    "trl_config_class",
]

#: Job kinds and TRL's config class for each.
JOBS: dict[str, str] = {"grpo": "GRPOConfig", "sft": "SFTConfig"}
#: The command that runs each kind.
COMMANDS = {"grpo": "spatialrl train", "sft": "spatialrl sft"}
#: TRL fields spatialrl derives itself; a recipe may not set them.
DERIVED_TRL_FIELDS = {"grpo": {"reward_weights": "set the weights in `rewards: {accuracy: 0.9, format: 0.1}`"},
                      "sft": {"completion_only_loss": "spatialrl's SFT always trains on the answer only"}}
#: ``GRPOConfig.loss_type`` values of trl 1.16 (TRL checks them only when training starts).
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
#: TRL fields shown in a dry run even when a recipe leaves them at TRL's default.
ALWAYS_SHOWN = {
    "grpo": ("output_dir", "learning_rate", "num_generations", "per_device_train_batch_size",
             "gradient_accumulation_steps", "max_steps", "beta", "loss_type", "max_completion_length", "use_vllm",
             "vllm_mode", "bf16", "gradient_checkpointing"),
    "sft": ("output_dir", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
            "max_length", "bf16", "gradient_checkpointing"),
}  # fmt: skip


def trl_config_class(kind: str) -> type:
    """``trl.GRPOConfig`` or ``trl.SFTConfig`` (imports trl)."""
    if kind not in JOBS:
        raise ValueError(f"job must be one of {sorted(JOBS)}, got {kind!r}")
    import trl

    return getattr(trl, JOBS[kind])


@dataclass
class Job:
    """A parsed recipe.

    Attributes:
        kind: ``grpo`` or ``sft``.
        spatial: spatialrl's fields (:class:`~.arguments.SpatialGRPOArguments` or
            :class:`~.arguments.SpatialSFTArguments`).
        trl: TRL's config (``trl.GRPOConfig`` / ``trl.SFTConfig``), passed to the trainer as is.
        trl_values: the TRL fields the recipe, its overrides or its flags set, as given; the
            rest are TRL's defaults. Saving a job writes these, so that it reloads to the same.
        source: the recipe file, if any.
        adjusted: what was changed to run on this machine (e.g. ``bf16`` off without CUDA).
        requested_bf16: whether the recipe trains in bf16 where it can (before that change;
            TRL's default when unset), which is what the plan sizes.
    """

    kind: str
    spatial: Any
    trl: Any
    trl_values: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    adjusted: list[str] = field(default_factory=list)
    requested_bf16: bool = True


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _unknown_key(key: str, kind: str, where: str) -> ConfigError:
    if key == "extra_trl_args":
        return ConfigError(f"`extra_trl_args`{where} is gone: every {JOBS[kind]} field is now a top-level key by its "
                           f"own name (e.g. `warmup_steps: 0.05`); move its entries up one level")
    valid = _field_names(SPATIAL_ARGUMENTS[kind]) + _field_names(trl_config_class(kind))
    return ConfigError(f"unknown key {key!r}{where} for a {kind} job{_did_you_mean(key, valid + ['job', 'env'])}; "
                       f"the keys are spatialrl's (`{COMMANDS[kind]} --list-keys`) and trl.{JOBS[kind]}'s "
                       f"(`{COMMANDS[kind]} --help`)")


# ------------------------------------------------------------------------------------------
# key=value overrides
# ------------------------------------------------------------------------------------------


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


def _is_override(token: str, names: set[str]) -> bool:
    """Whether a command-line token is a ``key=value`` override (not a flag or a flag's value)."""
    if token.startswith("-") or "=" not in token:
        return False
    return token.split("=", 1)[0].split(".")[0].strip() in names


def _merge_overrides(kind: str, data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    spatial = SPATIAL_ARGUMENTS[kind]
    hints = {**typing.get_type_hints(spatial), **spatial.VALUE_TYPES}
    names = set(_field_names(spatial)) | set(_field_names(trl_config_class(kind)))
    trl_names = set(_field_names(trl_config_class(kind))) - set(_field_names(spatial))
    for text in overrides:
        path, value = parse_override(text)
        head = path[0]
        raw = text.split("=", 1)[1].strip()
        if head in trl_names and len(path) == 1 and not raw.startswith(("[", "{")) and raw not in ("null", "~", ""):
            # TRL's parser converts text with the field's own type; YAML would read `save_strategy=no` as false
            value = raw
        if head == "job":
            raise ConfigError(f"override {text!r}: the job type cannot be overridden; use a config with job: ...")
        if head not in names:
            raise _unknown_key(head, kind, f" in override {text!r}")
        if len(path) == 1:
            data[head] = value
            continue
        if typing.get_origin(hints.get(head)) is not dict:
            raise ConfigError(f"override {text!r}: {head} is not a mapping of spatialrl's; write {head}=VALUE")
        if len(path) != 2:
            raise ConfigError(f"override {text!r}: use one dot, {head}.KEY=VALUE")
        current = data.get(head)
        if current is None:
            current = copy.deepcopy(next(f for f in dataclasses.fields(spatial) if f.name == head).default_factory())  # type: ignore[misc]
        if not isinstance(current, dict):
            raise ConfigError(f"override {text!r}: {head} is not a mapping in the config")
        data[head] = {**current, path[1]: value}
    return data


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------


def job_parser(kind: str) -> Any:
    """TRL's parser (``TrlParser``) over spatialrl's dataclass and TRL's config of ``kind``."""
    from trl import TrlParser

    return TrlParser((SPATIAL_ARGUMENTS[kind], trl_config_class(kind)))


def _flag_names(argv: Sequence[str]) -> set[str]:
    """The field names a command line's ``--flags`` set (``--x``, ``--x=v``, ``--no_x``, ``--x-y``)."""
    out = set()
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name = token[2:].split("=", 1)[0].replace("-", "_")
            out.add(name[3:] if name.startswith("no_") else name)
    return out


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _adjust_for_machine(kind: str, values: dict[str, Any]) -> list[str]:
    """Make a GPU recipe run on a machine without CUDA (use_cpu on, bf16 off: TRL's default bf16
    is refused on a CPU); what changed."""
    if _cuda_available():
        return []
    notes = []
    if not values.get("use_cpu"):
        values["use_cpu"] = True
        notes.append("use_cpu: true (no CUDA device here)")
    if values.get("bf16") is not False:
        values["bf16"] = False
        notes.append("bf16: false (no CUDA device here; the recipe trains in bf16 on GPUs)")
    return notes


def parse_job(kind: str, data: dict[str, Any] | None = None, argv: Sequence[str] = (),
              source: str | None = None) -> Job:
    """A validated :class:`Job` from recipe values ``data`` (YAML keys) and a command line ``argv``
    (``--field value`` flags and ``key=value`` overrides), through TRL's parser."""
    if kind not in JOBS:
        raise ValueError(f"job must be one of {sorted(JOBS)}, got {kind!r}")
    where = f" in {source}" if source else ""
    data = dict(data or {})
    spatial_cls, trl_cls = SPATIAL_ARGUMENTS[kind], trl_config_class(kind)
    names = set(_field_names(spatial_cls)) | set(_field_names(trl_cls))
    overrides = [t for t in argv if _is_override(t, names)]
    flags = [t for t in argv if not _is_override(t, names)]
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"keys must be strings{where}, got {key!r}")
        if key not in names:
            raise _unknown_key(key, kind, where)
    data = _merge_overrides(kind, data, overrides)
    for key, why in DERIVED_TRL_FIELDS[kind].items():
        if key in data or key in _flag_names(flags):
            raise ConfigError(f"{key}{where} is set by spatialrl, not by the recipe: {why}")
    if data.get("use_cpu", False) is None:  # older recipes: `use_cpu: null` meant "when there is no GPU"
        data.pop("use_cpu")
    parser = job_parser(kind)
    unused = parser.set_defaults_with_config(**data)
    if unused:  # every key was checked above; this is TRL's parser disagreeing
        raise ConfigError(f"TRL's parser did not take {unused[::2]}{where}")

    def refuse(message: str) -> typing.NoReturn:  # argparse would print its usage and exit
        raise ConfigError(f"{message}{where} (set it in the recipe or as --field value; see `{COMMANDS[kind]} --help`)")

    parser.error = refuse  # type: ignore[method-assign]
    parser.allow_abbrev = False  # `--max_step 3` is a typo, not max_steps
    namespace, rest = parser.parse_known_args(list(flags))
    if rest:
        first = rest[0].lstrip("-").split("=", 1)[0].replace("-", "_")
        raise _unknown_key(first, kind, f" on the command line ({' '.join(rest)})")
    values = vars(namespace)
    requested_bf16 = values.get("bf16") is not False and not values.get("fp16")
    explicit = (set(data) | _flag_names(flags)) & set(_field_names(trl_cls))
    adjusted = _adjust_for_machine(kind, values)
    explicit |= {"bf16", "use_cpu"} if adjusted else set()
    try:
        spatial = spatial_cls(**{k: values[k] for k in _field_names(spatial_cls)})
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None
    trl_kwargs = {k: values[k] for k in _field_names(trl_cls)}
    try:
        with warnings.catch_warnings():  # TRL's own default sets transformers' renamed gradient_checkpointing
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)
            trl_args = trl_cls(**trl_kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"trl.{trl_cls.__name__}{where}: {exc}") from None
    job = Job(kind, spatial, trl_args, {k: trl_kwargs[k] for k in sorted(explicit)}, source, adjusted, requested_bf16)
    try:
        check_job(job)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None
    return job


def check_job(job: Job) -> None:
    """Checks that need both halves of a job; :class:`ConfigError` naming the field."""
    if job.kind != "grpo":
        return
    s, t = job.spatial, job.trl
    if t.loss_type not in GRPO_LOSS_TYPES:
        raise ConfigError(f"GRPOConfig.loss_type must be one of {list(GRPO_LOSS_TYPES)} (trl 1.16); got {t.loss_type!r}")
    if s.stratify_pairs_by is not None and not s.mirror_pairs:
        raise ConfigError(f"SpatialGRPOArguments.stratify_pairs_by is {s.stratify_pairs_by!r} but mirror_pairs is "
                          "false: the stratified order is an order of mirror pairs; set mirror_pairs: true (or "
                          "stratify_pairs_by: null)")
    if s.mirror_pairs:
        local = t.per_device_train_batch_size * t.steps_per_generation
        if local % t.num_generations:
            raise ConfigError(f"GRPOConfig.per_device_train_batch_size ({t.per_device_train_batch_size}) x "
                              f"steps_per_generation ({t.steps_per_generation}) = {local} completions per process must "
                              f"be a multiple of num_generations ({t.num_generations}) with mirror_pairs, so that each "
                              "process holds whole groups")
        prompts = local // t.num_generations
        if prompts % 2:
            raise ConfigError(f"GRPOConfig.gradient_accumulation_steps: {prompts} prompt(s) per process per generation "
                              f"(per_device_train_batch_size {t.per_device_train_batch_size} x steps_per_generation "
                              f"{t.steps_per_generation} / num_generations {t.num_generations}); with mirror_pairs this "
                              "must be even, because an original and its mirror are generated in the same batch on the "
                              "same process and pairs are never split; e.g. double gradient_accumulation_steps or "
                              "per_device_train_batch_size")


def make_job(kind: str, /, **fields: Any) -> Job:
    """A :class:`Job` from field values given by name, spatialrl's and TRL's alike (Python use:
    ``make_job("grpo", model=..., dataset=..., output_dir=..., learning_rate=1e-6)``)."""
    return parse_job(kind, fields)


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


def _read_recipe(path: str | os.PathLike) -> dict[str, Any]:
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
    return data


def load_config(path: str | os.PathLike, overrides: Iterable[str] = (), job: str | None = None) -> Job:
    """Read a YAML recipe, apply the command line ``overrides`` (``--field value`` flags and
    ``key=value``), validate (see the module doc).

    The file's top-level ``job`` (``grpo`` or ``sft``; default ``grpo``, or ``job`` when given)
    picks the kind. ``job``: the kind the caller runs; a file for another kind is an error.
    """
    data = _read_recipe(path)
    file_job = data.pop("job", None)
    if job is not None and job not in JOBS:
        raise ValueError(f"job must be one of {sorted(JOBS)}, got {job!r}")
    kind = file_job if file_job is not None else (job or "grpo")
    if kind not in JOBS:
        raise ConfigError(f"{path}: job must be one of {', '.join(JOBS)}{_did_you_mean(str(kind), JOBS)}; got {kind!r}")
    if job is not None and kind != job:
        raise ConfigError(f"{path} is a {kind} job config (job: {kind}); run it with `{COMMANDS[kind]}`, or give a "
                          f"config with job: {job}")
    env = data.pop("env", None)
    if env is not None:  # TRL's recipes set environment variables this way
        if not isinstance(env, dict):
            raise ConfigError(f"{path}: `env` must be a mapping of VARIABLE: value")
        for key, value in env.items():
            os.environ[str(key)] = str(value)
    return parse_job(kind, data, list(overrides), source=str(path))


def replace_job(job: Job, **changes: Any) -> Job:
    """A new, validated job: ``job`` with fields (spatialrl's or TRL's) set to new values."""
    data = to_dict(job)
    data.pop("job")
    data.update(changes)
    return parse_job(job.kind, data, source=job.source)


def apply_overrides(job: Job, overrides: Iterable[str]) -> Job:
    """A new, validated job: ``job`` with command-line overrides (``key=value`` or flags) applied."""
    overrides = list(overrides)
    if not overrides:
        return job
    data = to_dict(job)
    data.pop("job")
    return parse_job(job.kind, data, overrides, source=job.source)


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A YAML-safe copy (enums as their value)."""
    import enum

    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def to_dict(job: Job) -> dict[str, Any]:
    """``job`` first, then spatialrl's fields, then the TRL fields the recipe set."""
    out: dict[str, Any] = {"job": job.kind}
    for f in dataclasses.fields(job.spatial):
        out[f.name] = _plain(getattr(job.spatial, f.name))
    out.update({k: _plain(v) for k, v in job.trl_values.items()})
    return out


def _resolved_trl(job: Job) -> dict[str, Any]:
    """The TRL fields a dry run shows: those the recipe set, and the ones every reader asks about."""
    names = [*ALWAYS_SHOWN[job.kind], *job.trl_values]
    return {name: _plain(getattr(job.trl, name)) for name in dict.fromkeys(names) if hasattr(job.trl, name)}


def dump_yaml(job: Job, comments: bool = True, resolved: bool = False) -> str:
    """The job as YAML (``job`` first); with ``comments``, each spatialrl key is preceded by its
    help text; with ``resolved``, TRL's fields as TRL resolved them (its defaults filled in)."""
    import textwrap

    import yaml

    def line(key: str, value: Any) -> str:
        # one line per key, collections in flow style: dump [value] and drop the outer brackets
        flow = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=10_000).strip()
        return f"{key}: {flow[1:-1]}"

    helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(job.spatial)}
    data = to_dict(job)
    lines = [line("job", data.pop("job"))]
    if comments:
        lines.append(f"# -- spatialrl ({type(job.spatial).__name__})")
    for f in dataclasses.fields(job.spatial):
        if comments and helps.get(f.name):
            lines.extend("# " + text for text in textwrap.wrap(helps[f.name], 98))
        lines.append(line(f.name, data.pop(f.name)))
    trl_values = _resolved_trl(job) if resolved else data
    if comments or resolved:
        what = "as resolved by TRL" if resolved else "set by the recipe; the rest are TRL's defaults"
        lines.append(f"# -- trl.{JOBS[job.kind]} ({what})")
    lines.extend(line(key, value) for key, value in trl_values.items())
    return "\n".join(lines) + "\n"


def save_config(job: Job, path: str | os.PathLike) -> Path:
    """Write ``job`` as commented YAML that :func:`load_config` reads back to an equal job."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_yaml(job), encoding="utf-8")
    os.replace(tmp, p)
    return p


def describe(kind_or_cls: Any) -> str:
    """One line per spatialrl field: name, type, default, help (``spatialrl train --list-keys``)."""
    cls = SPATIAL_ARGUMENTS[kind_or_cls] if isinstance(kind_or_cls, str) else kind_or_cls
    hints = {**typing.get_type_hints(cls), **cls.VALUE_TYPES}
    trl_note = (f"; every trl.{JOBS[cls.JOB]} field is a key too: `{COMMANDS[cls.JOB]} --help` lists them"
                if cls.JOB in JOBS else "")
    rows = [f"job: {cls.JOB}  ({cls.__name__}{trl_note})"]
    for f in dataclasses.fields(cls):
        if f.metadata.get("required"):
            default = "(required)"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f"default {f.default_factory()!r}"  # type: ignore[misc]
        else:
            default = f"default {f.default!r}"
        rows.append(f"  {f.name} ({_type_name(hints[f.name])}, {default}): {f.metadata.get('help', '')}")
    return "\n".join(rows)
