"""The training loop of ``spatialrl pretrain``: stage 1 (the vision tower alone on the dense truth),
then stages 2-3 (the whole model on grounding texts, then on every QA family mixed), with
learning rates per part, held-out diagnostics and the image-ignored stop."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from spatialrl.train.pretrain.batches import Sampler, _collate, _held_batch, make_bank
from spatialrl.train.pretrain.checkpoint import save_checkpoint, staged_dir
from spatialrl.train.pretrain.config import PretrainConfig
from spatialrl.train.pretrain.losses import (
    ATTEND_HEAD,
    NON_DENSE_LOSSES,
    _forward,
    _heldout_losses,
    _target_scales,
)
from spatialrl.train.pretrain.model import AuxHeads, build_model

__all__ = ["ImageIgnoredError", "pretrain"]


class ImageIgnoredError(RuntimeError):
    """The model's held-out answers do not depend on the image (see ``min_image_gap``)."""


class _Clock:
    """Progress of the budget (steps or wall clock) as a fraction in [0, 1]."""

    def __init__(self, cfg: PretrainConfig):
        self.steps, self.seconds = cfg.steps, None if cfg.minutes is None else cfg.minutes * 60.0
        self.start = time.perf_counter()
        self.step = 0

    def progress(self) -> float:
        if self.steps is not None:
            return min(1.0, self.step / self.steps)
        return min(1.0, (time.perf_counter() - self.start) / self.seconds)

    def done(self) -> bool:
        return self.progress() >= 1.0


def _lr_factor(q: float, warmup: float, min_ratio: float) -> float:
    """Linear warm-up over the first ``warmup`` of a stage, then cosine decay to ``min_ratio``
    (``q``: progress through the stage, in [0, 1])."""
    if q < warmup:
        return (q + 1e-3) / warmup
    t = (q - warmup) / max(1e-9, 1.0 - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _grad_norm(params: list[Any]) -> float:
    import torch

    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0


def pretrain(cfg: PretrainConfig, progress: bool = True, log: Any = print) -> dict[str, Any]:
    """Run the recipe and save the checkpoint to ``cfg.out`` (atomically). Returns a summary.

    The same config (seed and ``threads`` included) gives the same checkpoint bit for bit: the
    run uses torch's deterministic algorithms, since with more than one thread the backward pass
    of an indexing with repeated rows (``k[rows]`` in the attention supervision, the image
    features shared by a step's questions) otherwise sums its gradients in a varying order."""
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _pretrain(cfg, progress, log)
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _pretrain(cfg: PretrainConfig, progress: bool, log: Any) -> dict[str, Any]:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out).absolute()
    t_start = time.perf_counter()
    if cfg.init:  # continue from a checkpoint, in float32 as training needs
        from spatialrl.models import load_model_and_processor

        model, processor = load_model_and_processor(cfg.init, dtype=torch.float32)
    else:
        model, processor = build_model(cfg)
    ip = processor.image_processor
    mean, std = ip.image_mean, ip.image_std
    n_params = sum(p.numel() for p in model.parameters())
    start = f"model from {cfg.init}" if cfg.init else f"{cfg.size} model"
    log(f"pretrain: {start}, {n_params:,} parameters; building {cfg.scenes} training scenes "
        f"(world seed {cfg.world_seed}) ...")
    bank = make_bank(cfg, processor, range(cfg.scenes), progress, "scenes")
    held = make_bank(cfg, processor, range(cfg.scenes, cfg.scenes + cfg.heldout_scenes), False, "held-out")
    held_batch = _held_batch(cfg, held, model, mean, std)
    t_data = time.perf_counter() - t_start

    scales = _target_scales(bank)
    torch.manual_seed(cfg.seed)  # the heads' first weights follow the seed (not the process's unseeded generator)
    heads = AuxHeads.build(model.config.text_config.hidden_size,
                           model.config.text_config.hidden_size if cfg.llm_aux_layer >= 0 else None,
                           cfg.dense_head, cfg.scene_table,
                           model.config.text_config.hidden_size if cfg.mention_layer > 0 else None)
    n_layers = model.config.text_config.num_hidden_layers
    heads_needed = ({"union": 1, "ordered": 2}[cfg.answer_attend_mode]
                    + {"": 0, "correct": 1, "both": 2}[cfg.answer_attend_options])
    if cfg.answer_attend_weight > 0 and model.config.text_config.num_attention_heads < ATTEND_HEAD + heads_needed:
        raise ValueError(f"PretrainConfig.answer_attend_mode / answer_attend_options supervise {heads_needed} "
                         f"attention heads; the language model has {model.config.text_config.num_attention_heads}")
    if cfg.mention_layer > n_layers:
        raise ValueError(f"PretrainConfig.mention_layer must be <= the language model's "
                         f"{model.config.text_config.num_hidden_layers} layers; got {cfg.mention_layer}")
    torch.manual_seed(cfg.seed)
    vision_params = list(model.model.visual.parameters())
    vision_ids = {id(p) for p in vision_params}
    llm_params = [p for p in model.parameters() if id(p) not in vision_ids]
    head_params = list(heads.parameters())
    opt = torch.optim.AdamW([{"params": vision_params, "lr": 0.0}, {"params": llm_params, "lr": 0.0},
                             {"params": head_params, "lr": 0.0}], weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sampler = Sampler(bank, cfg, cfg.seed)
    model.train()
    heads.train()

    history: list[dict[str, Any]] = []
    ema: dict[str, float] = {}
    with staged_dir(out) as tmp:
        with open(tmp / "pretrain_log.jsonl", "w", encoding="utf-8") as logf:

            def write(rec: dict[str, Any]) -> None:
                logf.write(json.dumps(rec) + "\n")
                logf.flush()

            def track(values: dict[str, Any]) -> None:
                for k, v in values.items():
                    x = float(v.detach()) if hasattr(v, "detach") else float(v)
                    ema[k] = 0.9 * ema.get(k, x) + 0.1 * x

            # Stage 1: the vision tower alone on the dense truth (cheap: no language model).
            t1 = time.perf_counter()
            bar = tqdm(total=cfg.dense_steps, desc="stage 1: dense", unit="step", disable=not progress,
                       dynamic_ncols=True, file=sys.stderr)
            for step in range(cfg.dense_steps):
                f = _lr_factor(step / max(1, cfg.dense_steps), cfg.warmup_frac, cfg.min_lr_ratio)
                opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = cfg.lr_vision * f, 0.0
                opt.param_groups[2]["lr"] = cfg.lr_heads * f
                views = sampler.draw_views(cfg.dense_images)
                losses = _forward(model, heads, _collate(bank, model, mean, std, views, None), scales)
                loss = sum(losses.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                vnorm = _grad_norm(vision_params)
                torch.nn.utils.clip_grad_norm_(vision_params + head_params, cfg.grad_clip)
                opt.step()
                track(losses)
                bar.update(1)
                if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.dense_steps:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in ema.items()})
                    write({"stage": "dense", "step": step + 1, "seconds": round(time.perf_counter() - t1, 1),
                           "lr_vision": opt.param_groups[0]["lr"], "grad/vision_norm": vnorm,
                           **{f"loss/{k}": round(v, 5) for k, v in ema.items()}})
            bar.close()
            dense_seconds = time.perf_counter() - t1
            if cfg.dense_steps:
                log(f"stage 1 (dense truth, vision tower only): {cfg.dense_steps} steps in {dense_seconds:.0f} s; "
                    + ", ".join(f"{k} {v:.3f}" for k, v in ema.items()))

            # Stages 2 and 3: the whole model on grounding texts, then on all QA families mixed.
            clock = _Clock(cfg)
            total = cfg.steps if cfg.steps is not None else int(cfg.minutes * 60)
            bar = tqdm(total=total, desc="stages 2-3: language", unit="step" if cfg.steps else "s",
                       disable=not progress, dynamic_ncols=True, file=sys.stderr)
            checked, last_bar = False, 0
            while not clock.done():
                p = clock.progress()
                stage = "ground" if p < cfg.ground_frac else "mix"
                f = _lr_factor(p, cfg.warmup_frac, cfg.min_lr_ratio)
                opt.param_groups[0]["lr"] = cfg.lr_vision_late * f
                opt.param_groups[1]["lr"] = cfg.lr_llm * f
                opt.param_groups[2]["lr"] = cfg.lr_heads * f
                views, questions = sampler.draw(stage)
                batch = _collate(bank, model, mean, std, views, questions)
                extras: dict[str, Any] = {}
                losses = _forward(model, heads, batch, scales, llm_aux_layer=cfg.llm_aux_layer, extras=extras,
                                  mention_layer=cfg.mention_layer, attn_weight=cfg.attend_weight,
                                  answer_attn_weight=cfg.answer_attend_weight, count_sink=cfg.count_sink,
                                  answer_attn_mode=cfg.answer_attend_mode,
                                  answer_attn_options=cfg.answer_attend_options,
                                  compare=cfg.compare_weight > 0 and 0 < cfg.mention_layer < n_layers)
                dense = sum(v for k, v in losses.items() if k not in NON_DENSE_LOSSES)
                loss = (losses["answer"] + cfg.dense_weight_late * (dense + losses.get("llm_aux", 0.0))
                        + cfg.mention_weight * losses.get("mention", 0.0)
                        + cfg.attend_weight * losses.get("attend", 0.0)
                        + cfg.answer_attend_weight * losses.get("answer_attend", 0.0)
                        + cfg.compare_weight * losses.get("compare", 0.0))
                opt.zero_grad(set_to_none=True)
                if (clock.step + 1) % cfg.log_every == 0:  # how much the answers pull on the image tokens
                    (g_img,) = torch.autograd.grad(losses["answer"], extras["tokens"], retain_graph=True)
                    extras["image_grad_norm"] = float(g_img.norm())
                loss.backward()
                vnorm = _grad_norm(vision_params)
                torch.nn.utils.clip_grad_norm_(vision_params + llm_params + head_params, cfg.grad_clip)
                opt.step()
                clock.step += 1
                track({**losses, **{k: v for k, v in extras.items() if k.startswith("answer_")}})
                if clock.step % cfg.log_every == 0:
                    write({"stage": stage, "step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1),
                           "lr_vision": opt.param_groups[0]["lr"], "lr_llm": opt.param_groups[1]["lr"],
                           "grad/vision_norm": vnorm, "grad/image_from_answers": extras.get("image_grad_norm"),
                           **{f"loss/{k}": round(v, 5) for k, v in ema.items()}})
                if clock.step % cfg.eval_every == 0 or clock.done():
                    model.eval()
                    h = _heldout_losses(model, heads, held_batch, scales, cfg.mention_layer)
                    model.train()
                    rec = {"stage": stage, "step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1),
                           "grad/vision_norm": vnorm, **{f"heldout/{k}": round(v, 5) for k, v in h.items()}}
                    history.append(rec)
                    write(rec)
                    fams = "".join(f"; {f} gap {h[f + '_gap']:+.3f}" for f in ("qa", "ground") if f + "_gap" in h)
                    if "mention_true" in h:
                        fams += f"; mention loss {h['mention_true']:.3f} vs {h['mention_shuffled']:.3f} shuffled"
                    log(f"step {clock.step} ({rec['seconds']:.0f} s, {stage}): held-out answer loss "
                        f"{h['true']:.3f} true vs {h['shuffled']:.3f} shuffled images (gap {h['gap']:+.3f}{fams}); "
                        f"vision grad norm {vnorm:.3g}")
                    if not checked and clock.progress() >= cfg.ignore_check:
                        checked = True
                        if h["gap"] < cfg.min_image_gap:
                            raise ImageIgnoredError(
                                f"the model ignores the image: after {clock.step} steps its held-out answer loss is "
                                f"{h['true']:.3f} with the true images and {h['shuffled']:.3f} with shuffled ones "
                                f"(gap {h['gap']:+.3f} < min_image_gap {cfg.min_image_gap}); vision-tower gradient "
                                f"norm {vnorm:.3g}. Check the image normalisation (normalize='world'), raise "
                                "dense_steps or lower lr_llm; see docs/experiments/pretraining.md")
                now = clock.step if cfg.steps is not None else int(time.perf_counter() - clock.start)
                bar.update(now - last_bar)
                last_bar = now
                bar.set_postfix(stage=stage, answer=f"{ema.get('answer', 0):.3f}")
            bar.close()
        train_seconds = time.perf_counter() - clock.start
        save_checkpoint(model, processor, tmp, cfg)
        final = history[-1] if history else {}
        summary = {
            "out": str(out), "size": cfg.size, "parameters": n_params, "dense_steps": cfg.dense_steps,
            "steps": clock.step, "data_seconds": round(t_data, 1), "dense_seconds": round(dense_seconds, 1),
            "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - t_start, 1),
            "heldout_loss_true": final.get("heldout/true"), "heldout_loss_shuffled": final.get("heldout/shuffled"),
            "heldout_gap": final.get("heldout/gap"), "config": cfg.to_dict(),
        }
        (tmp / "pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
