"""EasyR1 reward function file: EasyR1 loads it by path
(``worker.reward.reward_function=./examples/easyr1/reward_function.py:compute_score``) and reads
``REWARD_TYPE`` and ``compute_score`` from it. The scoring is spatialrl's
(:mod:`spatialrl.integrations.easyr1`), so ``spatialrl`` must be installed in EasyR1's environment
(``pip install 'spatialrl[verl]'``: the core only, no conflict with EasyR1's pins).
"""

from spatialrl.integrations.easyr1 import REWARD_NAME, REWARD_TYPE, compute_score

__all__ = ["REWARD_NAME", "REWARD_TYPE", "compute_score"]
