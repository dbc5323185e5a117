"""The model ``spatialrl pretrain`` trains: a fresh tiny Qwen2.5-VL (:func:`build_model`) with the
world's image normalisation, and the auxiliary heads that read the dense truth and the object
mentions from it during training (:class:`AuxHeads`; dropped from the saved checkpoint)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from spatialrl.train.pretrain.config import PretrainConfig

__all__ = ["AuxHeads", "WORLD_IMAGE_MEAN", "WORLD_IMAGE_STD", "build_model"]

#: The world's pixel statistics (mean and std per RGB channel of 100 renders at 112 px, world seed
#: 7, ``spatialrl.train.pretrain.data.make_views``): the grey room normalises to about 0.
WORLD_IMAGE_MEAN = (0.4172, 0.3774, 0.3730)
WORLD_IMAGE_STD = (0.1403, 0.1148, 0.1371)
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


#: Scene-table code after the patch code: counts per category (10), per-category (10 x 5) and
#: per-colour (8 x 5) standardised properties (0 where absent), log floor area, camera height.
TABLE_WIDTH = 10 + 50 + 40 + 2


def _spec(size: str, image_size: int) -> Any:
    from spatialrl.models.tiny import SIZES as TINY_SIZES
    from spatialrl.models.tiny import TinySpec

    if size in ("tiny", "small"):
        base = TINY_SIZES[size]
    else:  # base: wider and deeper language model and vision tower
        base = TinySpec(
            vocab_size=2048, hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
            num_attention_heads=6, num_key_value_heads=2, mrope_section=(8, 12, 12),
            vision_depth=6, vision_hidden_size=192, vision_intermediate_size=384, vision_num_heads=6,
            fullatt_block_indexes=(1, 3, 5), tie_word_embeddings=True,
        )  # fmt: skip
    return TinySpec(**{**base.__dict__, "image_size": int(image_size)})


def _tokenizer_corpus(cfg: PretrainConfig) -> Any:
    """The tiny model's tokenizer corpus plus the grounding texts of a few scenes."""
    import itertools

    from spatialrl.data.corpus import tokenizer_corpus
    from spatialrl.train.pretrain.data import make_views

    def grounding() -> Any:
        for i in range(max(1, cfg.tokenizer_scenes // 2)):
            for view in make_views(10_000_000 + i, cfg.world_seed, cfg.image_size, tuple(cfg.ground_extra)):
                for _, q, a in view.texts:
                    yield q
                    yield a

    return itertools.chain(tokenizer_corpus(cfg.tokenizer_scenes, cfg.seed, cfg.image_size), grounding())


def build_model(cfg: PretrainConfig) -> tuple[Any, Any]:
    """A fresh ``(model, processor)``: the tiny Qwen2.5-VL of ``cfg.size`` with random weights
    (``cfg.seed``), the world's normalisation and the configured rotary settings."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from spatialrl.models.tiny import (
        build_config,
        build_processor,
        build_tokenizer,
        register,
    )

    register()
    spec = _spec(cfg.size, cfg.image_size)
    if cfg.mrope_section is not None:
        spec = type(spec)(**{**spec.__dict__, "mrope_section": tuple(cfg.mrope_section)})
    tokenizer = build_tokenizer(spec, _tokenizer_corpus(cfg))
    processor = build_processor(tokenizer, spec.image_size)
    mean, std = (WORLD_IMAGE_MEAN, WORLD_IMAGE_STD) if cfg.normalize == "world" else (CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    processor.image_processor.image_mean = list(mean)
    processor.image_processor.image_std = list(std)
    config = build_config(spec, tokenizer)
    if cfg.rope_theta is not None:
        config.text_config.rope_parameters["rope_theta"] = float(cfg.rope_theta)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(cfg.seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(bos_token_id=eos[1], eos_token_id=eos, pad_token_id=eos[1],
                                               do_sample=False)
    return model, processor


class AuxHeads:
    """Factory of the auxiliary heads (a ``torch.nn.Module``; built lazily so that importing this
    module does not import torch)."""

    @staticmethod
    def build(hidden: int, llm_hidden: int | None, mode: str = "linear", table: bool = False,
              mention_hidden: int | None = None) -> Any:
        import torch
        from torch import nn

        from spatialrl.train.pretrain.data import CLASS_NAMES, COLOR_NAMES

        n_cls, n_col = len(CLASS_NAMES), len(COLOR_NAMES)

        class Heads(nn.Module):
            """Linear heads on merged vision tokens: per sub-patch (4 per token) class logits,
            colour logits, log depth, 8 object targets, 2 position targets; per image 3 scene
            targets from the token mean. Optionally position heads on a language-model layer."""

            def __init__(self) -> None:
                super().__init__()
                self.mode = mode
                self.sizes = (n_cls, n_col, 1, 8, 2)
                width = 4 * sum(self.sizes)
                if mode == "code" and width + (TABLE_WIDTH if table else 0) > hidden:
                    raise ValueError(f"dense_head 'code' needs {width} feature dimensions, the tokens have {hidden}")
                self.dense = nn.Linear(hidden, width) if mode == "linear" else None
                self.llm = nn.Linear(llm_hidden, 4 * 10) if llm_hidden else None
                # grounding of object mentions: 8 object properties + 1 count, from a language-model layer
                self.mention = nn.Linear(mention_hidden, 9) if mention_hidden else None
                # comparison of the two objects a question names: differences of their 8 properties
                self.compare = nn.Linear(mention_hidden, 8) if mention_hidden else None

            def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
                # tokens: (n_images * 16, hidden) -> per sub-patch predictions (n_images * 64, ...)
                width = 4 * sum(self.sizes)
                raw = self.dense(tokens) if self.dense is not None else tokens[:, :width]
                out = raw.reshape(tokens.shape[0] * 4, sum(self.sizes))
                cls, col, depth, obj, pos = out.split(self.sizes, dim=-1)
                pred = {"cls": cls, "col": col, "depth": depth.squeeze(-1), "obj": obj, "pos": pos, "mode": self.mode}
                if self.mode == "code" and table:
                    # the scene table, the same in every token of an image
                    pred["table"] = tokens[:, width:width + TABLE_WIDTH]
                return pred

        return Heads()
