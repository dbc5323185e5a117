"""spatialrl.train.shared_prompt: one pass over each group's shared prompt gives TRL's per-token
log-probs, entropies and gradients."""

import pytest
import torch

from spatialrl.train.shared_prompt import prompt_groups


def test_prompt_groups_are_runs_of_identical_prompts():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [0, 5, 7], [0, 5, 7], [0, 5, 7], [0, 5, 6]])
    mask = torch.ones_like(ids)
    pixels = [torch.zeros(2, 3)] * 6
    assert prompt_groups(ids, mask, pixels) == [2, 3, 1]
    pixels = [torch.zeros(2, 3), torch.ones(2, 3)] + [torch.zeros(2, 3)] * 4  # same text, other image
    assert prompt_groups(ids, mask, pixels) == [1, 1, 3, 1]


def _trainer(model_dir, dataset_dir, tmp_path, share):
    from spatialrl.models import load_model_and_processor
    from spatialrl.train.config import make_job
    from spatialrl.train.grpo import SpatialGRPOTrainer, prepare_dataset

    job = make_job("grpo", model=model_dir, dataset=dataset_dir, output_dir=str(tmp_path), num_generations=3,
                   per_device_train_batch_size=6, max_steps=1, max_completion_length=6, use_cpu=True, bf16=False,
                   report_to="none", save_strategy="no", temperature=0.7, gradient_checkpointing=False,
                   share_prompt_pass=share)
    args = job.trl  # TRL's GRPOConfig, as the job gives it to the trainer
    assert not args.gradient_checkpointing, "the shared pass needs the model without checkpointing"
    dataset, _ = prepare_dataset(job.spatial, log=lambda *_: None, seed=args.seed)
    model, processor = load_model_and_processor(model_dir)
    torch.manual_seed(0)
    with torch.no_grad():  # spread-out weights, so that wrong positions or masks change the numbers
        for p in model.parameters():
            p.normal_(0, 0.3)
    trainer = SpatialGRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                                 args=args, train_dataset=dataset, processing_class=processor,
                                 share_prompt=job.spatial.share_prompt_pass)
    return trainer, processor, dataset


def _batch(processor, dataset, group=3, completion_length=5):
    """Two prompts (different lengths, left-padded), each repeated ``group`` times, with random
    completions of which some end early (right padding)."""
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    rows = [dataset[0], dataset[3]]
    texts = [apply_chat_template({"prompt": prepare_multimodal_messages(r["prompt"], images=r["images"])},
                                 processor)["prompt"] for r in rows]
    enc = processor(text=texts, images=[r["images"] for r in rows], padding=True, padding_side="left",
                    return_tensors="pt")
    assert enc["attention_mask"][:, 0].min() == 0, "the two prompts should differ in length (left padding)"
    repeat = torch.arange(2).repeat_interleave(group)
    per_image = enc["image_grid_thw"].prod(-1).tolist()
    pixel_rows = torch.split(enc["pixel_values"], per_image)
    g = torch.Generator().manual_seed(1)
    completions = torch.randint(10, processor.tokenizer.vocab_size - 10, (2 * group, completion_length), generator=g)
    completion_mask = torch.ones_like(completions)
    completion_mask[1 % (2 * group), 3:] = 0
    completion_mask[-2, 1:] = 0
    completions[completion_mask == 0] = processor.tokenizer.pad_token_id
    input_ids = torch.cat([enc["input_ids"][repeat], completions], 1)
    attention_mask = torch.cat([enc["attention_mask"][repeat], completion_mask], 1)
    mm = torch.cat([enc["mm_token_type_ids"][repeat], torch.zeros_like(completions)], 1)
    return dict(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=completion_length,
                pixel_values=torch.cat([pixel_rows[i] for i in repeat.tolist()]),
                image_grid_thw=enc["image_grid_thw"][repeat], num_images=[1] * (2 * group),
                mm_token_type_ids=mm), completion_mask


@pytest.mark.parametrize("batch_size", [None, 4])
def test_shared_prompt_pass_matches_trls_pass(tiny_model_dir, world_dataset_dir, tmp_path, batch_size):
    shared, processor, dataset = _trainer(tiny_model_dir, world_dataset_dir, tmp_path / "a", share=True)
    plain, _, _ = _trainer(tiny_model_dir, world_dataset_dir, tmp_path / "b", share=False)
    inputs, mask = _batch(processor, dataset)
    results = {}
    for name, trainer in (("shared", shared), ("plain", plain)):
        trainer.model.zero_grad()
        logps, entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, batch_size=batch_size,
                                                                       compute_entropy=True, **inputs)
        ((logps * mask).sum() + (entropy * mask).sum()).backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results[name] = (logps, entropy, grads)
    assert shared.shared_prompt_calls == {"shared": 1, "fallback": 0}
    assert plain.shared_prompt_calls == {"shared": 0, "fallback": 1}
    (lp_s, ent_s, g_s), (lp_p, ent_p, g_p) = results["shared"], results["plain"]
    on = mask.bool()
    assert lp_p[on].abs().mean() > 0.5, "non-trivial log-probs"
    torch.testing.assert_close(lp_s[on], lp_p[on], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent_s[on], ent_p[on], atol=1e-5, rtol=1e-5)
    assert g_s.keys() == g_p.keys() and any("visual" in n for n in g_s)  # the image tower gets gradients too
    for name in g_p:
        torch.testing.assert_close(g_s[name], g_p[name], atol=1e-5, rtol=1e-4, msg=name)


def test_falls_back_when_prompts_are_not_shared(tiny_model_dir, world_dataset_dir, tmp_path):
    trainer, processor, dataset = _trainer(tiny_model_dir, world_dataset_dir, tmp_path, share=True)
    inputs, _ = _batch(processor, dataset, group=1)
    trainer._get_per_token_logps_and_entropies(trainer.model, **inputs)
    assert trainer.shared_prompt_calls == {"shared": 0, "fallback": 1}


def test_falls_back_under_a_multi_process_wrapper(tiny_model_dir, world_dataset_dir, tmp_path):
    trainer, processor, dataset = _trainer(tiny_model_dir, world_dataset_dir, tmp_path, share=True)
    inputs, _ = _batch(processor, dataset)

    class Wrapped(torch.nn.Module):  # what DDP looks like from outside: the model under .module
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args, **kwargs):
            return self.module(*args, **kwargs)

    trainer._get_per_token_logps_and_entropies(Wrapped(trainer.model), **inputs)
    assert trainer.shared_prompt_calls == {"shared": 0, "fallback": 1}


def test_falls_back_under_gradient_checkpointing(tiny_model_dir, world_dataset_dir, tmp_path):
    trainer, processor, dataset = _trainer(tiny_model_dir, world_dataset_dir, tmp_path, share=True)
    inputs, _ = _batch(processor, dataset)
    trainer.model.gradient_checkpointing_enable()
    trainer.model.train()
    trainer._get_per_token_logps_and_entropies(trainer.model, **inputs)
    assert trainer.shared_prompt_calls == {"shared": 0, "fallback": 1}
