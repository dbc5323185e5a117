"""Training: job configs (``config``), the SFT cold start (``sft``), GRPO with SNRA, AP-GRPO and
Spatial-GRPO (``grpo``), and the ``spatialrl train`` command (``cli``).

Importing this package is cheap (no torch, no transformers): the trainers import them inside
their functions.
"""

from spatialrl.train.config import (
    ConfigError,
    GRPOJobConfig,
    SFTJobConfig,
    apply_overrides,
    load_config,
    save_config,
    to_dict,
)

__all__ = [
    "ConfigError",
    "GRPOJobConfig",
    "SFTJobConfig",
    "apply_overrides",
    "load_config",
    "save_config",
    "to_dict",
]
