"""Adapters for training engines other than TRL.

- :mod:`spatialrl.integrations.verl`: verl 0.9.1 (``compute_score``, the ``"spatialrl"`` reward
  manager with the sharpness schedule k(t) and the Spatial-GRPO penalty, the ``"ap_grpo"`` and
  ``"absolute"`` advantage estimators, ``MirrorPairSampler`` and the launcher that wires them in).

Importing this package imports nothing heavy; each adapter imports its engine lazily.
"""
