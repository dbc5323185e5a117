"""spatialrl: RL from verifiable rewards for spatial reasoning in vision-language models."""

__version__ = "0.1.0"

# Registers the image-only Qwen2.5-VL processor with transformers' AutoProcessor, lazily: this
# imports neither torch nor transformers (see spatialrl.models).
import spatialrl.models  # noqa: E402,F401
