"""Training: job configs (``config``: TRL's GRPOConfig / SFTConfig beside spatialrl's fields),
the SFT cold start (``sft``), GRPO with SNRA, AP-GRPO and Spatial-GRPO (``trainer`` holds
:class:`SpatialGRPOTrainer`, ``grpo`` the job that runs it), the plan (``plan``) and the
``spatialrl train`` command (``cli``).

Importing this package is cheap (no torch, no transformers): the trainers import them inside
their functions.
"""

from spatialrl.train.config import (
    ConfigError,
    Job,
    SpatialGRPOArguments,
    SpatialSFTArguments,
    apply_overrides,
    load_config,
    make_job,
    save_config,
    to_dict,
)

__all__ = [
    "ConfigError",
    "Job",
    "SpatialGRPOArguments",
    "SpatialSFTArguments",
    "apply_overrides",
    "load_config",
    "make_job",
    "save_config",
    "to_dict",
]
