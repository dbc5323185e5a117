"""Does the language model read the image? A minimal training harness for issue #6's probes.

It trains the small tiny Qwen2.5-VL with the stock ``Qwen2_5_VLForConditionalGeneration``
forward (``pixel_values``, ``image_grid_thw``, ``mm_token_type_ids``, left padding, loss on the
answer tokens) on world scenes (``spatialrl.train.pretrain.data.make_views``, world seed 7;
held-out scenes from index 50,000) and prints, every ``every`` steps, the held-out answer loss
with true and with shuffled images (their difference, the gap, per question type) and the
teacher-forced exact-answer accuracy per type.

    .venv/bin/python experiments/pretraining_image_use/image_use_harness.py '{"scenes": 800, "steps": 400}'

JSON settings: ``scenes``, ``held_scenes``, ``steps``, ``batch``, ``lr`` (language model),
``lr_v`` (vision tower), ``every``, ``held`` (held-out questions), ``fams`` (``qa``, ``ground``),
``types`` (question types; grounding kinds are ``g:<kind>``), ``phases`` (``[[steps, types or
null], ...]``: a curriculum, then everything), ``oracle`` (replace the vision tower by the exact
per-token truth -- category, colour, depth and position fractions -- through a trainable MLP),
``save`` (a directory for the model). ``THREADS`` (environment) sets torch threads.
The runs of docs/experiments/pretraining.md ("Where the information stops") are printed by this script.
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))
import json, sys, time, math, random
import numpy as np, torch
torch.set_num_threads(int(__import__("os").environ.get("THREADS", "2")))
from spatialrl.train import pretrain as P
from spatialrl.train.pretrain.data import make_views
V = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
cfg = P.PretrainConfig(out="/tmp/x", steps=10, size=V.get("size", "small"), scenes=10, seed=0, normalize=V.get("norm", "world"))
model, proc = P.build_model(cfg)
tok = proc.tokenizer
print("params", sum(p.numel() for p in model.parameters()))
def views(a, b):
    out = []
    for i in range(a, b):
        out.extend(make_views(i, 7, 112))
    return out
t0 = time.time()
TRAIN = views(0, V.get("scenes", 1500)); HELD = views(50000, 50000 + V.get("held_scenes", 60))
print("data", len(TRAIN), time.time() - t0, flush=True)
IMG = tok.convert_tokens_to_ids("<|image_pad|>")
def prompt_ids(q):
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    text = text.replace("<|image_pad|>", "<|image_pad|>" * 16)
    return tok(text, add_special_tokens=False)["input_ids"]
def pix(vs):
    out = proc.image_processor([__import__("PIL.Image").Image.fromarray(v.image) for v in vs], return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]
EOS = tok.convert_tokens_to_ids("<|im_end|>")
fams = V.get("fams", ["qa", "ground"])
def items(vs):
    it = []
    for vi, v in enumerate(vs):
        if "qa" in fams:
            for (t, q, a) in v.qa: it.append((vi, t, q, a))
        if "ground" in fams:
            for (k, q, a) in v.texts: it.append((vi, "g:" + k, q, a))
    return it
def encode(vs, its):
    enc = []
    for vi, t, q, a in its:
        p = prompt_ids(q); ans = tok("<answer>" + a + "</answer>", add_special_tokens=False)["input_ids"] + [EOS]
        enc.append((vi, t, p, ans))
    return enc
TR_ITEMS = encode(TRAIN, items(TRAIN)); HE_ITEMS = encode(HELD, items(HELD))
types = V.get("types")
if types:
    TR_ITEMS = [e for e in TR_ITEMS if e[1] in types]; HE_ITEMS = [e for e in HE_ITEMS if e[1] in types]
print("items", len(TR_ITEMS), len(HE_ITEMS), time.time() - t0, flush=True)
TR_PIX, GRID = pix(TRAIN); HE_PIX, _ = pix(HELD)
TR_PIX = TR_PIX.reshape(len(TRAIN), 64, -1); HE_PIX = HE_PIX.reshape(len(HELD), 64, -1)
g1 = GRID[:1]
if V.get("oracle"):
    from types import SimpleNamespace
    def ofeat(vs):
        rows = []
        for v in vs:
            d = v.dense
            f = np.concatenate([d["cls"], d["col"], d["depth"][:, None], d["pos"]], 1).reshape(16, 4, -1).mean(1)
            rows.append(np.repeat(f, 4, 0))  # 64 rows so shapes match pixel layout
        return torch.tensor(np.stack(rows), dtype=torch.float32)
    TR_PIX, HE_PIX = ofeat(TRAIN), ofeat(HELD)
    class Oracle(torch.nn.Module):
        def __init__(s, d):
            super().__init__(); s.proj = torch.nn.Sequential(torch.nn.Linear(d, 256), torch.nn.GELU(), torch.nn.Linear(256, 256)); s.spatial_merge_size = 2
        @property
        def dtype(s): return torch.float32
        def forward(s, pv, grid_thw=None, **kw):
            x = pv.reshape(-1, 4, pv.shape[-1])[:, 0]
            return SimpleNamespace(pooler_output=s.proj(x))
    model.model.visual = Oracle(TR_PIX.shape[-1])
print("pix", time.time() - t0, flush=True)
def batch(enc, pixbank, idx, perm=None):
    seqs = [enc[i] for i in idx]
    L = max(len(s[2]) + len(s[3]) for s in seqs)
    ids = torch.full((len(seqs), L), EOS); lab = torch.full((len(seqs), L), -100); att = torch.zeros((len(seqs), L), dtype=torch.long)
    for r, (vi, t, p, a) in enumerate(seqs):
        x = p + a; off = L - len(x)  # left pad
        ids[r, off:] = torch.tensor(x); att[r, off:] = 1; lab[r, off + len(p):] = torch.tensor(a)
    vis = [s[0] for s in seqs]
    if perm is not None: vis = [perm[v] for v in vis]
    pv = pixbank[vis].reshape(-1, pixbank.shape[-1])
    mm = (ids == IMG).long()
    return dict(input_ids=ids, attention_mask=att, pixel_values=pv, image_grid_thw=g1.repeat(len(seqs), 1), mm_token_type_ids=mm, labels=lab)
params_v = list(model.model.visual.parameters()); vid = {id(p) for p in params_v}
params_l = [p for p in model.parameters() if id(p) not in vid]
opt = torch.optim.AdamW([{"params": params_v, "lr": V.get("lr_v", 1e-3)}, {"params": params_l, "lr": V.get("lr", 1e-3)}], weight_decay=0.01, betas=(0.9, 0.98))
peaks = [g["lr"] for g in opt.param_groups]
steps = V.get("steps", 600); B = V.get("batch", 32)
rng = np.random.default_rng(0)
held_idx = list(range(len(HE_ITEMS)))
rng.shuffle(held_idx); held_idx = held_idx[:V.get("held", 600)]
perm = np.roll(np.arange(len(HELD)), 2)
GAPS = {}
def evaluate():
    model.eval(); res = {}; lt = ls = 0.0; n = 0; GAPS.clear()
    with torch.no_grad():
        for c in range(0, len(held_idx), 64):
            idx = held_idx[c:c + 64]
            for shuffled in (False, True):
                b = batch(HE_ITEMS, HE_PIX, idx, perm if shuffled else None)
                out = model(**{k: v for k, v in b.items() if k != "labels"})
                logits = out.logits[:, :-1]; lab = b["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), lab, ignore_index=-100, reduction="none")
                m = lab != -100
                per = (nll * m).sum(1) / m.sum(1)
                if shuffled:
                    ls += float(per.sum())
                    for j, i in enumerate(idx): GAPS.setdefault(HE_ITEMS[i][1], []).append(float(per[j]))
                else:
                    for j, i in enumerate(idx): GAPS.setdefault(HE_ITEMS[i][1], []).append(-float(per[j]))
                if shuffled: pass
                else:
                    lt += float(per.sum()); n += len(idx)
                    ok = ((logits.argmax(-1) == lab) | ~m).all(1)
                    for j, i in enumerate(idx):
                        res.setdefault(HE_ITEMS[i][1], []).append(bool(ok[j]))
    model.train()
    return lt / n, ls / n, {k: round(float(np.mean(v)), 2) for k, v in sorted(res.items())}
PH = V.get("phases")
ALL = np.arange(len(TR_ITEMS))
POOLS = []
if PH:
    for n, ts in PH:
        POOLS.append((n, ALL if not ts else np.array([i for i, e in enumerate(TR_ITEMS) if e[1] in ts or e[1].split(":")[0] in ts])))
def POOL_AT(step):
    if not PH: return ALL
    c = 0
    for n, p in POOLS:
        c += n
        if step < c: return p
    return ALL
t0 = time.time()
for step in range(steps):
    q = step / steps
    f = min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))
    for g, pk in zip(opt.param_groups, peaks): g["lr"] = pk * f
    pool = POOL_AT(step)
    idx = pool[rng.integers(0, len(pool), B)]
    out = model(**batch(TR_ITEMS, TR_PIX, idx))
    opt.zero_grad(); out.loss.backward()
    vg = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params_v if p.grad is not None))
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    if (step + 1) % V.get("every", 100) == 0 or step == steps - 1:
        lt, ls, acc = evaluate()
        print(f"step {step+1} {time.time()-t0:.0f}s train {float(out.loss):.3f} held {lt:.3f} shuf {ls:.3f} gap {ls-lt:+.3f} vgrad {vg:.3f}", flush=True)
        print("   ", acc, flush=True)
        print("   gap", {k: round(2 * float(np.mean(v)), 2) for k, v in sorted(GAPS.items())}, flush=True)
if V.get("save"): model.save_pretrained(V["save"]); proc.save_pretrained(V["save"])
