"""spatialrl: RL from verifiable rewards for spatial reasoning in vision-language models."""

__version__ = "0.1.0"
