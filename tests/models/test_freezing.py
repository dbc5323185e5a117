"""freeze_vision on the shipped tiny Qwen2.5-VL: the right parameters are frozen, a backward pass
leaves their gradients None, an optimizer step leaves them unchanged, and a model without a
vision encoder is refused."""

from pathlib import Path

import pytest
import torch

from spatialrl.models.freezing import freeze_vision

SHIPPED = str(Path(__file__).resolve().parents[2] / "spatialrl" / "assets" / "tiny-spatial-vlm")


@pytest.fixture()
def tiny():
    from spatialrl.models import load_model_and_processor

    return load_model_and_processor(SHIPPED)


def _names(model, requires_grad):
    return {n for n, p in model.named_parameters() if p.requires_grad == requires_grad}


@pytest.mark.parametrize("tower,merger", [(True, False), (False, True), (True, True)])
def test_freezes_exactly_the_chosen_parts(tiny, tower, merger):
    model, _ = tiny
    total = sum(p.numel() for p in model.parameters())
    counts = freeze_vision(model, tower=tower, merger=merger)
    frozen = _names(model, False)
    expected_prefixes = (("model.visual.patch_embed.", "model.visual.blocks.") if tower else ()) + \
                        (("model.visual.merger.",) if merger else ())
    assert frozen and all(n.startswith(expected_prefixes) for n in frozen)
    assert all(not n.startswith(expected_prefixes) for n in _names(model, True))
    assert counts["frozen"] + counts["trainable"] == total
    assert counts["frozen"] == tower * counts["tower"] + merger * counts["merger"]
    assert counts["tower"] > 0 and counts["merger"] > 0


def test_frozen_parameters_get_no_gradient_and_do_not_move(tiny):
    model, processor = tiny
    freeze_vision(model, tower=True, merger=False)
    from PIL import Image

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many chairs?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True) + "<answer>3</answer>"
    batch = processor(images=[Image.new("RGB", (112, 112), (120, 90, 60))], text=[text], return_tensors="pt")
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)  # what a Trainer builds: trainable parameters only
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    params = dict(model.named_parameters())
    assert all(params[n].grad is None for n in _names(model, False))
    merger_grads = [p.grad for n, p in params.items() if n.startswith("model.visual.merger.")]
    assert all(g is not None for g in merger_grads) and any(g.abs().sum() > 0 for g in merger_grads)
    optimizer.step()
    for n in _names(model, False):
        assert torch.equal(params[n], before[n])
    assert not torch.equal(params["model.visual.merger.mlp.0.weight"], before["model.visual.merger.mlp.0.weight"])


def test_a_model_without_a_vision_encoder_is_refused():
    with pytest.raises(ValueError, match="model.model.visual"):
        freeze_vision(torch.nn.Linear(2, 2))
