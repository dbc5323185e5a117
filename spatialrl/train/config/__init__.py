"""Training job configuration, in two parts:

- :mod:`.jobs`: the documented job dataclasses, :class:`GRPOJobConfig` (``job: grpo``, ``spatialrl
  train``) and :class:`SFTJobConfig` (``job: sft``, ``spatialrl sft``), each validated in
  ``__post_init__`` with a :class:`ConfigError` that names the field and says how to fix it;
- :mod:`.recipe`: reading and writing them as YAML recipes, with ``key=value`` overrides
  (``spatialrl train --config C key=value ...``), and :func:`describe` (every field's help).

Every name is importable from here. Nothing here imports torch.
"""

from spatialrl.train.config import jobs, recipe
from spatialrl.train.config.jobs import (
    GRPO_LOSS_TYPES,
    JOBS,
    REWARD_COMPONENTS,
    THINK_MODES,
    ConfigError,
    GRPOJobConfig,
    SFTJobConfig,
    _checkpointing_arg,
    _did_you_mean,
    _JobConfig,
    _opt,
)
from spatialrl.train.config.recipe import (
    _yaml_load_unique,
    apply_overrides,
    describe,
    dump_yaml,
    load_config,
    parse_override,
    save_config,
    to_dict,
)

# The private names are read by spatialrl.demo (_JobConfig, _opt, _did_you_mean: its own config
# class) and by tests (_checkpointing_arg, _yaml_load_unique).
__all__ = [*jobs.__all__, *recipe.__all__]
