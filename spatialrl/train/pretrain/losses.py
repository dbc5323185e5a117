"""The losses of ``spatialrl pretrain``: dense truth read from the vision tokens (linear heads or
the fixed feature code), the answer tokens' cross-entropy, and the auxiliary losses of stages 2-3
that tell the language model where to look (mention grounding, attention from object names to
their image tokens, attention from the answer to the object names or options, comparison).
:func:`_forward` computes them all for one batch; :func:`_heldout_losses` is the true-vs-shuffled
image diagnostic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from spatialrl.train.pretrain.batches import Bank, Batch

__all__ = ["ATTEND_HEAD", "CODE_SCALE", "NON_DENSE_LOSSES", "count_sink_share"]


def _dense_losses(pred: dict[str, Any], target: dict[str, Any], obj_scale: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    if pred.get("mode") == "code":
        return _code_losses(pred, target, obj_scale)
    cls_t = target["cls"].reshape(-1, target["cls"].shape[-1])
    col_t = target["col"].reshape(-1, target["col"].shape[-1])
    out = {
        "cls": -(cls_t * F.log_softmax(pred["cls"], -1)).sum(-1).mean(),
        "col": -(col_t * F.log_softmax(pred["col"], -1)).sum(-1).mean(),
        "depth": F.smooth_l1_loss(pred["depth"], target["depth"].reshape(-1), beta=0.5),
        "pos": F.smooth_l1_loss(pred["pos"], target["pos"].reshape(-1, 2) * 4.0, beta=0.5),
    }
    mask = target["obj_mask"].reshape(-1)
    mean, std = obj_scale
    obj_t = (target["obj"].reshape(-1, 8) - mean[:8]) / std[:8]
    err = F.smooth_l1_loss(pred["obj"], obj_t, beta=0.5, reduction="none").mean(-1)
    out["obj"] = (err * mask).sum() / mask.sum().clamp(min=1.0)
    return out


#: Counts are regressed as ``count - COUNT_CENTER`` by the mention head.
COUNT_CENTER = 1.5
#: Scale of the class / colour fractions and of the centred patch position in the feature code.
CODE_SCALE = 2.0

def _code_losses(pred: dict[str, Any], target: dict[str, Any], scales: Any) -> dict[str, Any]:
    """``dense_head='code'``: the first 128 dimensions of each merged token *are* the truth of its
    4 patches (fixed identity head), scaled to unit-order values: class and colour fractions x 2,
    standardised log depth, standardised object targets (0 off objects), centred position x 4; with
    the scene table, the next :data:`TABLE_WIDTH` dimensions of every token are the image's table."""
    import torch
    import torch.nn.functional as F

    mean, std = scales
    obj_t = (target["obj"].reshape(-1, 8) - mean[:8]) / std[:8] * target["obj_mask"].reshape(-1, 1)
    out = {
        "cls": F.mse_loss(pred["cls"], CODE_SCALE * target["cls"].reshape(pred["cls"].shape)),
        "col": F.mse_loss(pred["col"], CODE_SCALE * target["col"].reshape(pred["col"].shape)),
        "depth": F.mse_loss(pred["depth"], (target["depth"].reshape(-1) - mean[8]) / std[8]),
        "obj": F.mse_loss(pred["obj"], obj_t),
        "pos": F.mse_loss(pred["pos"], (target["pos"].reshape(-1, 2) - 0.5) * 2 * CODE_SCALE),
    }
    if "table" in pred:
        n_img = target["counts"].shape[0]
        tm, ts = mean[9:14], std[9:14]
        cat = (target["table_cat"] - tm) / ts * target["table_cat_mask"][..., None]
        col = (target["table_col"] - tm) / ts * target["table_col_mask"][..., None]
        scene = (target["scene"][:, :2] - mean[14:16]) / std[14:16]
        t = torch.cat([CODE_SCALE * target["counts"], cat.reshape(n_img, -1), col.reshape(n_img, -1), scene], dim=1)
        t = t.repeat_interleave(pred["table"].shape[0] // n_img, dim=0)
        out["table"] = F.mse_loss(pred["table"], t)
    return out


def _answer_loss(logits_fn: Any, hidden: Any, labels: Any, reduce: bool = True) -> Any:
    """Cross-entropy of the answer tokens (labels != -100), computing logits only there."""
    import torch.nn.functional as F

    sel = labels != -100
    logits = logits_fn(hidden[sel])
    loss = F.cross_entropy(logits.float(), labels[sel], reduction="none")
    if reduce:
        return loss.mean()
    return loss


def _forward(model: Any, heads: Any, batch: Batch, obj_scale: Any, image_perm: Any = None,
             llm_aux_layer: int = -1, n_chunks: int = 2, extras: dict[str, Any] | None = None,
             keep_per_seq: bool = False, mention_layer: int = 0, attn_weight: float = 0.0,
             answer_attn_weight: float = 0.0, answer_attn_mode: str = "union", count_sink: bool = False,
             answer_attn_options: str = "", compare: bool = False) -> dict[str, Any]:
    """Losses of one batch. ``image_perm`` permutes which image each question sees (diagnostics);
    ``extras`` (a dict, filled in place) receives the image tokens and per-family answer losses."""
    extras = {} if extras is None else extras
    import torch

    vis = model.model.visual(batch.pixel_values, grid_thw=batch.grid_thw)
    tokens = vis.pooler_output  # (n_images * 16, hidden), raster order per image
    extras["tokens"] = tokens
    losses = _dense_losses(heads(tokens), batch.dense, obj_scale)
    if batch.input_ids is None:
        return losses
    n_tok = tokens.shape[0] // batch.grid_thw.shape[0]
    per_image = tokens.reshape(batch.grid_thw.shape[0], n_tok, -1)
    which = batch.image_of_seq if image_perm is None else image_perm[batch.image_of_seq]
    # The language model runs on length-sorted chunks (less padding); one loss over all answer tokens.
    lengths = batch.attention_mask.sum(1)
    order = torch.argsort(lengths)
    chunks = [c for c in order.chunk(max(1, min(n_chunks, len(order)))) if len(c)]
    nll_sum, n_tokens, aux_terms, mention_terms, attn_terms, answer_terms = 0.0, 0, [], [], [], []
    compare_terms = []
    layers = model.model.language_model.layers
    fam_sum: dict[str, float] = {}
    fam_n: dict[str, int] = {}
    per_seq_all = torch.zeros(len(order)) if keep_per_seq else None
    for idx_c in chunks:
        L = int(lengths[idx_c].max())
        ids = batch.input_ids[idx_c, :L]
        embeds = model.model.get_input_embeddings()(ids)
        mask = ids == model.config.image_token_id
        feats = per_image[which[idx_c]].reshape(-1, per_image.shape[-1]).to(embeds.dtype)
        embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats)
        local = torch.full((len(order),), -1, dtype=torch.long)  # batch row -> row within this chunk
        local[idx_c] = torch.arange(len(idx_c))
        captured: dict[str, Any] = {}
        answer_captured: dict[str, Any] = {}
        hooks = []
        if attn_weight > 0 and mention_layer > 0 and batch.mention_seq is not None:
            hooks.append(layers[mention_layer - 1].self_attn.register_forward_pre_hook(
                _capture_into(captured), with_kwargs=True))
        if answer_attn_weight > 0 and 0 < mention_layer < len(layers) and batch.answer_seq is not None:
            hooks.append(layers[mention_layer].self_attn.register_forward_pre_hook(
                _capture_into(answer_captured), with_kwargs=True))
        try:
            out = model.model.language_model(inputs_embeds=embeds, attention_mask=batch.attention_mask[idx_c, :L],
                                             position_ids=batch.position_ids[:, idx_c, :L], use_cache=False,
                                             output_hidden_states=llm_aux_layer >= 0 or mention_layer > 0 or compare)
        finally:
            for hook in hooks:
                hook.remove()
        if "x" in answer_captured:
            rows = local[batch.answer_seq]
            keep = rows >= 0
            if keep.any() and answer_attn_mode == "union":
                logp = _attention_logprobs(layers[mention_layer].self_attn, answer_captured, rows[keep],
                                           batch.answer_pos[keep])
                target = batch.answer_targets[keep][:, : logp.shape[1]]
                answer_terms.append(-torch.logsumexp(logp.masked_fill(~target, float("-inf")), dim=-1))
            elif keep.any():  # ordered: head k looks at the k-th distinct object named (k + 2: option k)
                targets = [(ATTEND_HEAD + k, batch.answer_named[:, k]) for k in range(2)]
                if answer_attn_options == "both":
                    targets += [(ATTEND_HEAD + 2 + k, batch.answer_options[:, k]) for k in range(2)]
                elif answer_attn_options == "correct":
                    targets.append((ATTEND_HEAD + 2, batch.answer_correct))
                for head, where in targets:
                    sel = keep & (where >= 0)
                    if sel.any():
                        logp = _attention_logprobs(layers[mention_layer].self_attn, answer_captured, rows[sel],
                                                   batch.answer_pos[sel], head=head)
                        answer_terms.append(-logp.gather(1, where[sel, None]).squeeze(1))
        if compare and batch.answer_seq is not None and heads.compare is not None:
            rows = local[batch.answer_seq]
            sel = (rows >= 0) & batch.compare_mask
            if sel.any():
                h = out.hidden_states[mention_layer + 1][rows[sel], batch.answer_pos[sel]]
                compare_terms.append((heads.compare(h), batch.compare_target[sel]))
        if mention_layer > 0 and heads.mention is not None and batch.mention_seq is not None:
            rows = local[batch.mention_seq]
            keep = rows >= 0
            if keep.any():
                h = out.hidden_states[mention_layer][rows[keep], batch.mention_pos[keep]]
                mention_terms.append((heads.mention(h), batch.mention_kind[keep], batch.mention_target[keep]))
                if "x" in captured:
                    sink = (count_sink_share(batch.mention_kind[keep], batch.mention_target[keep][:, 0])
                            if count_sink else None)
                    attn_terms.append(_attention_supervision(
                        model.model.language_model.layers[mention_layer - 1].self_attn, captured, rows[keep],
                        batch.mention_pos[keep], batch.mention_where[keep], batch.image_start, sink))
        labels = batch.labels[idx_c, :L]
        nll = _answer_loss(model.lm_head, out.last_hidden_state, labels, reduce=False)
        nll_sum = nll_sum + nll.sum()
        n_tokens += int((labels != -100).sum())
        if batch.kinds is not None:  # per-family answer loss (a detached metric)
            seq_of_tok = (labels != -100).nonzero()[:, 0]
            per_seq = torch.zeros(len(idx_c)).index_add_(0, seq_of_tok, nll.detach())
            cnt = torch.zeros(len(idx_c)).index_add_(0, seq_of_tok, torch.ones_like(nll))
            if per_seq_all is not None:
                per_seq_all[idx_c] = per_seq / cnt.clamp(min=1)
            for j, i in enumerate(idx_c.tolist()):
                fam = batch.kinds[i].split(":")[0]
                fam_sum[fam] = fam_sum.get(fam, 0.0) + float(per_seq[j])
                fam_n[fam] = fam_n.get(fam, 0) + int(cnt[j])
        if llm_aux_layer >= 0 and heads.llm is not None:
            aux_terms.append(_llm_aux_loss(heads, out.hidden_states[llm_aux_layer + 1][mask], batch,
                                           batch.image_of_seq[idx_c], n_tok, obj_scale))
    losses["answer"] = nll_sum / max(1, n_tokens)
    if mention_terms:
        pred = torch.cat([t[0] for t in mention_terms])
        kind = torch.cat([t[1] for t in mention_terms])
        target = torch.cat([t[2] for t in mention_terms])
        mean, std = obj_scale
        obj_t = (target - mean[:8]) / std[:8]
        err_obj = (pred[:, :8] - obj_t).pow(2).mean(-1)
        err_cnt = (pred[:, 8] - (target[:, 0] - COUNT_CENTER)).pow(2)
        losses["mention"] = torch.where(kind == 0, err_obj, err_cnt).mean()
    if attn_terms:
        losses["attend"] = torch.cat(attn_terms).mean()
    if answer_terms:
        losses["answer_attend"] = torch.cat(answer_terms).mean()
    if compare_terms:
        pred = torch.cat([t[0] for t in compare_terms])
        target = torch.cat([t[1] for t in compare_terms]) / obj_scale[1][:8]  # differences of standardised values
        losses["compare"] = (pred - target).pow(2).mean()
    if per_seq_all is not None:
        extras["per_seq"] = per_seq_all.tolist()
    extras.update({f"answer_{f}": fam_sum[f] / max(1, fam_n[f]) for f in fam_sum})
    if aux_terms:
        losses["llm_aux"] = sum(aux_terms) / len(aux_terms)
    return losses


#: The head of the mention layer whose attention is supervised (``attend_weight``).
ATTEND_HEAD = 0
#: Losses of :func:`_forward` that are not dense-truth losses of the vision tower.
NON_DENSE_LOSSES = ("answer", "llm_aux", "mention", "attend", "answer_attend", "compare")


def _capture_into(store: dict[str, Any]) -> Any:
    """A forward pre-hook (``with_kwargs``) that keeps an attention module's input and rotary
    embeddings in ``store``."""

    def grab(module: Any, args: Any, kwargs: Any) -> None:
        store["x"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        store["pe"] = kwargs["position_embeddings"]

    return grab


def count_sink_share(kind: Any, count: Any) -> Any:
    """Share of a mention's supervised attention on the sink (the sequence's first token):
    ``1 / (n + 1)`` for a counted category's word (``kind`` 1, ``count`` n), 0 for an object name.
    What stays on the image tokens, ``n / (n + 1)``, then differs with n (recipe field
    ``count_sink``)."""
    import torch

    return torch.where(kind == 1, 1.0 / (count.clamp(min=0) + 1.0), torch.zeros_like(count))


def _attention_supervision(attn: Any, captured: dict[str, Any], rows: Any, pos: Any, where: Any,
                           image_start: int, sink: Any = None) -> Any:
    """Cross-entropy between where a mention's query (head :data:`ATTEND_HEAD` of ``attn``) looks
    and where the mentioned object shows: ``-sum_j where_j log p_j`` over the image tokens ``j``,
    ``p`` the head's causal softmax over every earlier position (so the head learns both to look at
    the image and where). With ``sink`` (a share per mention, :func:`count_sink_share`) the target
    puts that share on position 0 and scales the image shares by the rest."""
    logp = _attention_logprobs(attn, captured, rows, pos)
    n_img = where.shape[1]
    image_term = (where * logp[:, image_start:image_start + n_img]).sum(-1)
    if sink is None:
        return -image_term
    return -((1.0 - sink) * image_term + sink * logp[:, 0])


def _attention_logprobs(attn: Any, captured: dict[str, Any], rows: Any, pos: Any, head: int = ATTEND_HEAD) -> Any:
    """Log attention probabilities (n, L) of ``head`` of ``attn`` from position
    ``pos[i]`` of sequence ``rows[i]`` to every position (causal: later ones get -inf), recomputed
    from the captured layer input exactly as the layer computes them (a test checks it against
    eager attention)."""
    import torch

    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import rotate_half

    x = captured["x"]  # (b, L, hidden): the layer's attention input (after its norm)
    cos, sin = captured["pe"]  # (b, L, head_dim)
    hd = attn.head_dim
    group = attn.num_heads // attn.num_key_value_heads
    kv = head // group
    q = attn.q_proj(x[rows, pos])[:, head * hd:(head + 1) * hd]  # (n, hd)
    q = q * cos[rows, pos] + rotate_half(q) * sin[rows, pos]
    k = attn.k_proj(x)[..., kv * hd:(kv + 1) * hd]  # (b, L, hd)
    k = k * cos + rotate_half(k) * sin
    scores = torch.einsum("nd,nld->nl", q, k[rows]) * attn.scaling  # (n, L)
    L = scores.shape[1]
    causal = torch.arange(L)[None, :] <= pos[:, None]
    return torch.log_softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


def _llm_aux_loss(heads: Any, h: Any, batch: Batch, image_of_seq: Any, n_tok: int, obj_scale: Any) -> Any:
    """Position heads on a language-model layer's image tokens (``h``: (n_seq * n_tok, hidden))."""
    import torch
    import torch.nn.functional as F

    pred = heads.llm(h).reshape(-1, 10)
    reps = image_of_seq.repeat_interleave(n_tok * 4)
    idx = reps * (n_tok * 4) + torch.arange(n_tok * 4).repeat(len(image_of_seq))
    pos_t = batch.dense["pos"].reshape(-1, 2)[idx] * 4.0
    obj_t = ((batch.dense["obj"].reshape(-1, 8) - obj_scale[0][:8]) / obj_scale[1][:8])[idx]
    m = batch.dense["obj_mask"].reshape(-1)[idx]
    lp = F.smooth_l1_loss(pred[:, :2], pos_t, beta=0.5)
    lo = (F.smooth_l1_loss(pred[:, 2:], obj_t, beta=0.5, reduction="none").mean(-1) * m).sum() / m.sum().clamp(min=1)
    return lp + lo


def _heldout_losses(model: Any, heads: Any, batch: Batch, obj_scale: Any, mention_layer: int = 0) -> dict[str, float]:
    """Held-out answer loss with the true images and with a derangement of the images."""
    import torch

    n = batch.grid_thw.shape[0]
    perm = torch.roll(torch.arange(n), 2 if n > 2 else 1)  # views come in (original, mirror) pairs
    ex_t: dict[str, Any] = {}
    ex_s: dict[str, Any] = {}
    with torch.no_grad():
        true = _forward(model, heads, batch, obj_scale, extras=ex_t, mention_layer=mention_layer)
        shuffled = _forward(model, heads, batch, obj_scale, image_perm=perm, extras=ex_s, mention_layer=mention_layer)
    out = {"true": float(true["answer"]), "shuffled": float(shuffled["answer"]),
           "gap": float(shuffled["answer"] - true["answer"]),
           **{f"dense_{k}": float(v) for k, v in true.items() if k not in NON_DENSE_LOSSES}}
    if "mention" in true:
        out["mention_true"], out["mention_shuffled"] = float(true["mention"]), float(shuffled["mention"])
    for key in ex_t:
        if key.startswith("answer_"):
            fam = key[len("answer_"):]
            out[f"{fam}_true"], out[f"{fam}_shuffled"] = ex_t[key], ex_s[key]
            out[f"{fam}_gap"] = ex_s[key] - ex_t[key]
    return out



def _target_scales(bank: Bank) -> tuple[Any, Any]:
    """Means and standard deviations of the 8 object targets (over object patches) and of the
    patch log depth (index 8), from the training bank."""
    import numpy as np
    import torch

    obj = bank.dense["obj"].reshape(-1, 8)
    m = bank.dense["obj_mask"].reshape(-1) > 0
    depth = bank.dense["depth"].reshape(-1)
    mean = [obj[m].mean(0), [depth.mean()]]
    std = [obj[m].std(0), [depth.std()]]
    if "table_cat" in bank.dense:  # indices 9..13: table properties; 14, 15: floor area, camera height
        tc = bank.dense["table_cat"].reshape(-1, bank.dense["table_cat"].shape[-1])
        tcm = bank.dense["table_cat_mask"].reshape(-1) > 0
        mean.append(tc[tcm].mean(0))
        std.append(tc[tcm].std(0))
        mean.append(bank.dense["scene"][:, :2].mean(0))
        std.append(bank.dense["scene"][:, :2].std(0))
    mean_a = np.concatenate(mean).astype(np.float32)
    std_a = np.concatenate(std).astype(np.float32) + 1e-3
    return torch.from_numpy(mean_a), torch.from_numpy(std_a)
