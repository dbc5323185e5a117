"""One prompt pass per GRPO group: the log-probability passes of GRPO without recomputing the
shared prompt G times.

TRL's GRPOTrainer (trl 1.16) scores completions by running the whole ``prompt + completion``
sequence of every one of the G completions of a prompt, in the training pass and in the
reference-model pass. For a vision-language model the prompt (system turn, image tokens,
question) is most of each sequence, so most of that work repeats what the group's other
completions already computed. Measured on the demo's tiny Qwen2.5-VL (docs/demo.md), the two
passes were 69 % of a GRPO step.

:class:`SharedPromptLogpsMixin` replaces ``_get_per_token_logps_and_entropies`` for
Qwen2.5-VL-style models: rows whose prompt (token ids, attention mask, image) is identical are
run once through the backbone with a key/value cache, the cache is repeated for each row of the
group (``Cache.reorder_cache`` with repeated indices, which autograd differentiates), and only
the completion tokens are run on top of it. The 3-D rotary positions come from the model's own
``get_rope_index`` on the full sequences, sliced for the two passes, so they are the ones the
unshared pass uses. Log-probabilities and entropies are those of ``softmax(logits /
temperature)``, as TRL's fused head computes them. ``tests/train/test_shared_prompt.py`` checks
values and gradients against TRL's own pass.

It is not a change of the method: the loss, advantages and KL are computed from the same numbers
(up to float rounding). Anything it does not handle falls back to TRL's pass: models without
``get_rope_index``, several images per row, MoE auxiliary losses, gradient checkpointing (the
checkpointed layers fill no cache), a model wrapped for several processes (DDP, FSDP, DeepSpeed:
calling the inner model would skip their gradient synchronisation), and batches whose rows do
not come in runs of identical prompts. So it is a single-process feature for now.
"""

from __future__ import annotations

from typing import Any

from spatialrl._extras import requires_extra

with requires_extra("train"):
    import torch

__all__ = ["SharedPromptLogpsMixin", "prompt_groups"]


def prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, pixel_rows: list[torch.Tensor]) -> list[int]:
    """Lengths of the runs of consecutive rows with the same prompt ids, mask and image pixels.

    TRL repeats each prompt G times in a row, so a generation batch of B rows gives B / G runs.
    """
    lengths: list[int] = []
    for row in range(prompt_ids.size(0)):
        if row > 0 and (torch.equal(prompt_ids[row], prompt_ids[row - 1])
                        and torch.equal(prompt_mask[row], prompt_mask[row - 1])
                        and torch.equal(pixel_rows[row], pixel_rows[row - 1])):
            lengths[-1] += 1
        else:
            lengths.append(1)
    return lengths


def _hf_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


class SharedPromptLogpsMixin:
    """Mixin for ``trl.GRPOTrainer``: set ``share_prompt`` to compute the per-token log-probs of
    each group with one prompt pass (see the module docstring)."""

    share_prompt: bool = False
    #: How many calls took the shared path and how many fell back (for logs and tests).
    shared_prompt_calls: dict[str, int]

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, pixel_values=None,
                                           image_grid_thw=None, num_images=None, mm_token_type_ids=None,
                                           **others):
        plan = None
        if self.share_prompt and not compute_aux_loss and not any(v is not None for v in others.values()):
            plan = self._shared_prompt_plan(model, input_ids, attention_mask, logits_to_keep, pixel_values,
                                            image_grid_thw, num_images, mm_token_type_ids)
        counts = self.__dict__.setdefault("shared_prompt_calls", {"shared": 0, "fallback": 0})
        if plan is None:
            counts["fallback"] += 1
            return super()._get_per_token_logps_and_entropies(  # type: ignore[misc]
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, pixel_values=pixel_values,
                image_grid_thw=image_grid_thw, num_images=num_images, mm_token_type_ids=mm_token_type_ids, **others)
        counts["shared"] += 1
        hf, lengths, pixel_rows = plan
        rows = input_ids.size(0)
        batch_size = batch_size or rows
        logps, entropies = [], []
        start_group, start_row = 0, 0
        while start_group < len(lengths):
            # whole groups, up to batch_size rows (at least one group)
            end_group, end_row = start_group + 1, start_row + lengths[start_group]
            while end_group < len(lengths) and end_row + lengths[end_group] - start_row <= batch_size:
                end_row += lengths[end_group]
                end_group += 1
            chunk_logps, chunk_entropies = self._shared_prompt_chunk(
                hf, input_ids[start_row:end_row], attention_mask[start_row:end_row], logits_to_keep,
                torch.cat([pixel_rows[r] for r in _leaders(lengths, start_group, end_group, start_row)]),
                image_grid_thw[start_row:end_row], None if mm_token_type_ids is None else mm_token_type_ids[start_row:end_row],
                lengths[start_group:end_group], compute_entropy)
            logps.append(chunk_logps)
            entropies.append(chunk_entropies)
            start_group, start_row = end_group, end_row
        return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None

    # -- internals -------------------------------------------------------------------------
    def _shared_prompt_plan(self, model, input_ids, attention_mask, logits_to_keep, pixel_values, image_grid_thw,
                            num_images, mm_token_type_ids):
        """``(hf_model, group lengths, per-row pixel rows)`` when the shared pass applies, else None."""
        if pixel_values is None or image_grid_thw is None or mm_token_type_ids is None:
            return None
        rows = input_ids.size(0)
        if image_grid_thw.size(0) != rows or (num_images is not None and any(int(n) != 1 for n in num_images)):
            return None  # several (or no) images per row
        if hasattr(model, "module"):
            return None  # DDP / FSDP / DeepSpeed: calling the inner model would skip their gradient synchronisation
        hf = _hf_model(model)
        if hf.training and getattr(hf, "is_gradient_checkpointing", False):
            return None  # checkpointed layers do not fill a key/value cache
        backbone = getattr(hf, "model", None)
        if backbone is None or not hasattr(backbone, "get_rope_index") or not hasattr(hf, "lm_head"):
            return None
        if getattr(hf.config.get_text_config(), "final_logit_softcapping", None):
            return None
        per_image = image_grid_thw.prod(dim=-1).tolist()
        if sum(per_image) != pixel_values.size(0):
            return None
        pixel_rows = list(torch.split(pixel_values, per_image))
        prompt_length = input_ids.size(1) - logits_to_keep
        lengths = prompt_groups(input_ids[:, :prompt_length], attention_mask[:, :prompt_length], pixel_rows)
        if len(lengths) == rows:
            return None  # nothing shared: the plain pass is as cheap
        return hf, lengths, pixel_rows

    def _shared_prompt_chunk(self, hf, input_ids, attention_mask, logits_to_keep, leader_pixels, image_grid_thw,
                             mm_token_type_ids, lengths, compute_entropy):
        device = input_ids.device
        prompt_length = input_ids.size(1) - logits_to_keep
        leaders = torch.tensor(_leader_offsets(lengths), device=device)
        expand = torch.repeat_interleave(torch.arange(len(lengths), device=device), torch.tensor(lengths, device=device))
        # the positions the unshared pass would use: rope index of the full sequences
        position_ids, _ = hf.model.get_rope_index(input_ids, image_grid_thw=image_grid_thw, attention_mask=attention_mask,
                                                  mm_token_type_ids=mm_token_type_ids)
        with self.accelerator.autocast():  # type: ignore[attr-defined]
            prefix = hf.model(
                input_ids=input_ids[leaders, :prompt_length], attention_mask=attention_mask[leaders, :prompt_length],
                position_ids=position_ids[:, leaders, :prompt_length], pixel_values=leader_pixels,
                image_grid_thw=image_grid_thw[leaders], mm_token_type_ids=mm_token_type_ids[leaders, :prompt_length],
                use_cache=True)
            cache = prefix.past_key_values
            cache.reorder_cache(expand)
            completion = hf.model(
                input_ids=input_ids[:, prompt_length:], attention_mask=attention_mask,
                position_ids=position_ids[:, :, prompt_length:], past_key_values=cache, use_cache=True)
            # the hidden state before each completion token: the last prompt position, then the completion's
            hidden = torch.cat([prefix.last_hidden_state[expand, -1:], completion.last_hidden_state[:, :-1]], dim=1)
            logits = hf.lm_head(hidden)
        logits = logits.float() / float(getattr(self, "temperature", 1.0))
        log_probs = torch.log_softmax(logits, dim=-1)
        targets = input_ids[:, prompt_length:]
        token_logps = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        entropy = None
        if compute_entropy:
            entropy = -(log_probs.exp() * log_probs).sum(-1)
        return token_logps, entropy


def _leader_offsets(lengths: list[int]) -> list[int]:
    offsets, row = [], 0
    for n in lengths:
        offsets.append(row)
        row += n
    return offsets


def _leaders(lengths: list[int], start_group: int, end_group: int, start_row: int) -> list[int]:
    return [start_row + o for o in _leader_offsets(lengths[start_group:end_group])]
