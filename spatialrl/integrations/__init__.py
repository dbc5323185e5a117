"""Adapters for training engines other than TRL.

- :mod:`spatialrl.integrations.verl`: verl 0.9.1 (``compute_score``, the ``"spatialrl"`` reward
  manager with the sharpness schedule k(t) and the Spatial-GRPO penalty, the ``"ap_grpo"`` and
  ``"absolute"`` advantage estimators, ``MirrorPairSampler`` and the launcher that wires them in).
- :mod:`spatialrl.integrations.easyr1`: EasyR1's batch reward function (SNRA at a fixed k, the
  format reward, the Spatial-GRPO penalty across the pairs in the batch), on the verl adapter's
  batch scorer.

``docs/verl.md`` compares the three paths (TRL, verl, EasyR1).

Importing this package imports nothing heavy; each adapter imports its engine lazily.
"""
