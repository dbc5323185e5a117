"""Training job configuration, TRL-native.

- :mod:`.arguments`: spatialrl's documented dataclasses, :class:`SpatialGRPOArguments`
  (``spatialrl train``) and :class:`SpatialSFTArguments` (``spatialrl sft``): the fields TRL does
  not have, each validated in ``__post_init__`` with a :class:`ConfigError` that names the field
  and says how to fix it;
- :mod:`.recipe`: YAML recipes and command lines parsed by TRL's own parser (``TrlParser``) into
  a :class:`Job`: those fields beside ``trl.GRPOConfig`` / ``trl.SFTConfig``, where every TRL
  field is set by its own name (``--learning_rate 1e-6 --num_generations 8``).

Every name is importable from here. Importing this package does not import torch or trl.
"""

from spatialrl.train.config import arguments, recipe
from spatialrl.train.config.arguments import (
    ATTENTION_IMPLEMENTATIONS,
    DISTRIBUTED,
    REWARD_COMPONENTS,
    SPATIAL_ARGUMENTS,
    THINK_MODES,
    ConfigError,
    SpatialGRPOArguments,
    SpatialSFTArguments,
    _did_you_mean,
    _JobConfig,
    _opt,
)
from spatialrl.train.config.recipe import (
    JOBS,
    Job,
    _yaml_load_unique,
    apply_overrides,
    check_job,
    describe,
    dump_yaml,
    load_config,
    make_job,
    parse_job,
    parse_override,
    replace_job,
    save_config,
    to_dict,
    trl_config_class,
)

# The private names are read by spatialrl.demo (_JobConfig, _opt, _did_you_mean: its own config
# class) and by tests (_yaml_load_unique).
__all__ = [*arguments.__all__, *recipe.__all__]
