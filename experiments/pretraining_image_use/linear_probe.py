"""Linear probes of a pretrained checkpoint (issue #6): where does image information stop?

    .venv/bin/python experiments/pretraining_image_use/linear_probe.py CKPT QUESTION_TYPE N_TRAIN N_TEST [answer|mention]

``answer``: a logistic probe per layer on the hidden state at the position that predicts the
answer of QUESTION_TYPE (e.g. closer_to_camera), fitted on N_TRAIN scenes and scored on N_TEST
others, with the true and with shuffled images, beside the majority answer ("prior").
``mention``: a ridge probe per layer on the hidden state at each object name of the questions,
predicting the object's image column (u), log camera depth and log height: R^2 with true and
with shuffled images. Scenes are world seed 11 (neither the pretraining nor the evaluation seed).
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))
import sys, numpy as np, torch
torch.set_num_threads(1)
from spatialrl.models import load_model_and_processor
from spatialrl.train import pretrain as P
from spatialrl.train.pretrain.data import make_views
path, qtype = sys.argv[1], sys.argv[2]
MODE = sys.argv[5] if len(sys.argv) > 5 else "answer"
n_train, n_test = int(sys.argv[3]), int(sys.argv[4])
model, proc = load_model_and_processor(path)
model.eval()
def feats(start, n, shuffle):
    views = []
    for i in range(start, start + n): views.extend(make_views(i, 11, 112))
    bank = P.Bank(views, proc, "empty", 112)
    X, Y = [], []
    ip = proc.image_processor
    for c in range(0, bank.n, 16):
        vs = list(range(c, min(c + 16, bank.n)))
        qs = [(slot, it[1], it[2], "qa:" + it[0], it[3]) for slot, v in enumerate(vs) for it in bank.items[v]["qa"] if it[0] == qtype]
        if not qs: continue
        b = P._collate(bank, model, ip.image_mean, ip.image_std, vs, qs)
        with torch.no_grad():
            tokens = model.model.visual(b.pixel_values, grid_thw=b.grid_thw).pooler_output
            per = tokens.reshape(len(vs), 16, -1)
            which = b.image_of_seq if not shuffle else torch.roll(b.image_of_seq, 1)
            emb = model.model.get_input_embeddings()(b.input_ids)
            m = b.input_ids == model.config.image_token_id
            emb = emb.masked_scatter(m[..., None], per[which].reshape(-1, per.shape[-1]))
            out = model.model.language_model(inputs_embeds=emb, attention_mask=b.attention_mask, position_ids=b.position_ids, output_hidden_states=True)
        if MODE == "mention":
            for j in range(len(b.mention_seq)):
                if int(b.mention_kind[j]) != 0: continue
                i, p = int(b.mention_seq[j]), int(b.mention_pos[j])
                X.append(torch.stack([h[i, p] for h in out.hidden_states]).numpy())
                Y.append(b.mention_target[j].numpy())
            continue
        for i, q in enumerate(qs):
            s = b.input_ids[i].tolist(); st = len(bank.prefix) + 16 + len(bank.after_image) + len(q[1]) + len(bank.suffix)
            pos = P._answer_positions(s[st:], bank.answer_word_id, bank.close_tag_id)
            if not pos: continue
            p = st + pos[0]
            X.append(torch.stack([h[i, p] for h in out.hidden_states]).numpy())
            ans = proc.tokenizer.decode(q[2]).split("<answer>")[1].split("</answer>")[0].strip()
            Y.append(ans)
    return np.array(X), np.array(Y)
Xtr, Ytr = feats(0, n_train, False)
if MODE == "mention":
    names = ["u", "v", "x/z", "log z", "y", "log h", "log side", "log vol"]
    for shuffle in (False, True):
        Xte, Yte = feats(100000, n_test, shuffle)
        out = {}
        for layer in range(Xtr.shape[1]):
            A = np.c_[Xtr[:, layer], np.ones(len(Xtr))]
            W = np.linalg.solve(A.T @ A + 1.0 * np.eye(A.shape[1]), A.T @ Ytr)
            P_ = np.c_[Xte[:, layer], np.ones(len(Xte))] @ W
            r2 = 1 - ((P_ - Yte) ** 2).sum(0) / ((Yte - Ytr.mean(0)) ** 2).sum(0)
            out[layer] = {names[k]: round(float(r2[k]), 2) for k in (0, 3, 5)}
        print("mention", "shuffled" if shuffle else "true", "n", len(Yte), "R2 per layer (u, log z, log h):", out, flush=True)
    sys.exit()
for shuffle in (False, True):
    Xte, Yte = feats(100000, n_test, shuffle)
    classes = sorted(set(Ytr))
    ytr = np.array([classes.index(y) for y in Ytr]); yte = np.array([classes.index(y) if y in classes else -1 for y in Yte])
    res = []
    for layer in range(Xtr.shape[1]):
        Xl = torch.tensor(Xtr[:, layer]); mu, sd = Xl.mean(0), Xl.std(0) + 1e-5
        W = torch.zeros(Xl.shape[1], len(classes), requires_grad=True); bb = torch.zeros(len(classes), requires_grad=True)
        opt = torch.optim.LBFGS([W, bb], max_iter=200)
        xt = (Xl - mu) / sd; yt = torch.tensor(ytr)
        def closure():
            opt.zero_grad(); l = torch.nn.functional.cross_entropy(xt @ W + bb, yt) + 1e-2 * W.pow(2).sum(); l.backward(); return l
        opt.step(closure)
        pred = (((torch.tensor(Xte[:, layer]) - mu) / sd) @ W + bb).argmax(-1).numpy()
        res.append(round(float((pred == yte).mean()), 3))
    prior = max(np.mean(yte == k) for k in range(len(classes)))
    print(qtype, "shuffled" if shuffle else "true", "n", len(Yte), "prior", round(float(prior), 3), "probe acc per layer", res, flush=True)
