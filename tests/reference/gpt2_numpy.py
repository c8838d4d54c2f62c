#!/usr/bin/env python3
"""Held-out GPT-2 reference in float64 numpy, independent of repgpt's TypeScript.

Hugging Face semantics: Conv1D weights stored (in, out), biases everywhere, `gelu_new` (tanh)
or `gelu` (erf) by config.json, tied lm_head = wte[:vocab_size]. Only numpy is needed;
safetensors and llm.c shards are read and written by hand.

  make-model DIR [--n-layer 2 --n-head 2 --n-embd 24 --n-positions 32 --vocab-size 101
                  --activation gelu_new --seed 0]
      writes DIR/config.json and DIR/model.safetensors (F32) with random weights, random
      (non-zero) biases and LayerNorm parameters, so every code path matters.
  make-data DIR [--vocab-size 101 --tokens 4096 --seed 1]
      writes DIR/tiny_val_000000.bin and DIR/tiny_train_000001.bin (llm.c shard format).
  eval --model DIR --data DIR --batch-size B --seq-len T --eval-steps N
      mean loss over val batches i = 0..N-1, batch i = tokens [i*B*T, i*B*T + B*T + 1) of the
      val stream. Prints {"val_loss": x}.
  train --model DIR --data DIR --batch-size B --seq-len T --train-steps K --lr LR
        [--weight-decay 0 --grad-clip 1.0 --beta1 0.9 --beta2 0.95 --eps 1e-8]
      K steps of PyTorch AdamW (decoupled decay on 2-D tensors only, global-norm clip,
      constant lr) on train windows k = tokens [k*B*T, k*B*T + B*T + 1). Prints
      {"losses": [loss before step 1, ...], "grad_norms": [...]}.
  hellaswag --model DIR --examples FILE.json --max-len T
      llm.c's HellaSwag scoring of pre-tokenized examples ([{"ctx": [ids], "endings": [[ids] x4],
      "label": k}]): each ending's summed and mean cross-entropy over its own tokens, the row
      ctx + ending cut to its last T tokens. Prints {"acc", "acc_norm", "examples": [{"sums",
      "means", "pred", "pred_norm"}]}.
"""
import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np

SHARD_MAGIC = 20240520

# ----------------------------------------------------------------------------- file formats


def write_safetensors(path, tensors):
    """tensors: dict name -> float32 array, written in insertion order."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} has dtype {info['dtype']}, want F32"
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype="<f4") \
            .reshape(info["shape"]).astype(np.float64)
    return out


def write_shard(path, tokens):
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, 1, len(tokens)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def read_stream(data_dir, split):
    paths = sorted(glob.glob(os.path.join(data_dir, f"*_{split}_*.bin")))
    assert paths, f"no *_{split}_*.bin shards in {data_dir}"
    parts = []
    for path in paths:
        raw = np.fromfile(path, dtype="<u2", offset=0)
        header = np.frombuffer(raw[:512].tobytes(), dtype="<i4")
        assert header[0] == SHARD_MAGIC, f"{path}: bad magic {header[0]}"
        parts.append(raw[512:512 + header[2]].astype(np.int64))
    return np.concatenate(parts)


def window(stream, i, B, T):
    """Batch i: inputs and targets (B, T) from tokens [i*B*T, i*B*T + B*T + 1)."""
    start = i * B * T
    chunk = stream[start:start + B * T + 1]
    assert len(chunk) == B * T + 1, f"stream too short for batch {i} at B={B} T={T}"
    return chunk[:-1].reshape(B, T), chunk[1:].reshape(B, T)


# ----------------------------------------------------------------------------- the model


class Config:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.L, self.NH, self.C = c["n_layer"], c["n_head"], c["n_embd"]
        self.V, self.maxT = c["vocab_size"], c["n_positions"]
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.act = c.get("activation_function", "gelu_new")
        assert self.act in ("gelu_new", "gelu"), f"unsupported activation {self.act}"


def load_params(model_dir):
    raw = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    # Skip the causal-mask buffers (h.N.attn.bias, h.N.attn.masked_bias) and the tied lm_head.
    skip = lambda k: k.split(".")[-2:] in (["attn", "bias"], ["attn", "masked_bias"]) \
        or k == "lm_head.weight"  # noqa: E731
    return {k.removeprefix("transformer."): v for k, v in raw.items() if not skip(k)}


_erf = np.vectorize(math.erf)
GELU_S = math.sqrt(2 / math.pi)


def gelu(x, act):
    if act == "gelu_new":
        return 0.5 * x * (1 + np.tanh(GELU_S * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def gelu_grad(x, act):
    if act == "gelu_new":
        t = np.tanh(GELU_S * (x + 0.044715 * x ** 3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_S * (1 + 3 * 0.044715 * x * x)
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def layernorm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    return xhat * w + b, (xhat, rstd)


def layernorm_backward(dout, w, cache):
    xhat, rstd = cache
    dxhat = dout * w
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dout * xhat).sum((0, 1)), dout.sum((0, 1))


def attention(qkv, NH):
    """qkv (B,T,3C) -> y (B,T,C), causal softmax attention."""
    B, T, C3 = qkv.shape
    C, HS = C3 // 3, C3 // 3 // NH
    q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, HS).transpose(0, 2, 1, 3)
               for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HS)
    s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = (p @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return y, (q, k, v, p)


def attention_backward(dy, cache):
    q, k, v, p = cache
    B, NH, T, HS = q.shape
    dy = dy.reshape(B, T, NH, HS).transpose(0, 2, 1, 3)
    dp = dy @ v.transpose(0, 1, 3, 2)
    dv = p.transpose(0, 1, 3, 2) @ dy
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / math.sqrt(HS)
    dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
    merge = [g.transpose(0, 2, 1, 3).reshape(B, T, NH * HS) for g in (dq, dk, dv)]
    return np.concatenate(merge, -1)


def log_probs(cfg, P, inputs):
    """Log-softmax over the vocabulary at every position, (B, T, V)."""
    return forward(cfg, P, inputs)[0]


def forward(cfg, P, inputs):
    """Log-probabilities (B, T, V) and what the backward needs."""
    B, T = inputs.shape
    x = P["wte.weight"][inputs] + P["wpe.weight"][:T]
    caches = []
    for l in range(cfg.L):
        h = f"h.{l}."
        ln1, c_ln1 = layernorm(x, P[h + "ln_1.weight"], P[h + "ln_1.bias"], cfg.eps)
        qkv = ln1 @ P[h + "attn.c_attn.weight"] + P[h + "attn.c_attn.bias"]
        y, c_att = attention(qkv, cfg.NH)
        x = x + y @ P[h + "attn.c_proj.weight"] + P[h + "attn.c_proj.bias"]
        ln2, c_ln2 = layernorm(x, P[h + "ln_2.weight"], P[h + "ln_2.bias"], cfg.eps)
        pre = ln2 @ P[h + "mlp.c_fc.weight"] + P[h + "mlp.c_fc.bias"]
        act = gelu(pre, cfg.act)
        x = x + act @ P[h + "mlp.c_proj.weight"] + P[h + "mlp.c_proj.bias"]
        caches.append((ln1, c_ln1, y, c_att, ln2, c_ln2, pre, act))
    xf, c_lnf = layernorm(x, P["ln_f.weight"], P["ln_f.bias"], cfg.eps)
    logits = xf @ P["wte.weight"].T
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return logp, xf, c_lnf, caches


def forward_backward(cfg, P, inputs, targets, need_grads):
    """Mean cross-entropy loss and (optionally) the gradient of every parameter."""
    B, T = inputs.shape
    logp, xf, c_lnf, caches = forward(cfg, P, inputs)
    loss = -np.take_along_axis(logp, targets[..., None], -1).mean()
    if not need_grads:
        return loss, None

    G = {k: np.zeros_like(v) for k, v in P.items()}
    dlogits = np.exp(logp)
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(dlogits, targets[..., None], -1) - 1, -1)
    dlogits /= B * T
    G["wte.weight"] += np.einsum("btv,btc->vc", dlogits, xf)
    dx, G["ln_f.weight"], G["ln_f.bias"] = layernorm_backward(
        dlogits @ P["wte.weight"], P["ln_f.weight"], c_lnf)
    for l in reversed(range(cfg.L)):
        h = f"h.{l}."
        ln1, c_ln1, y, c_att, ln2, c_ln2, pre, act = caches[l]
        G[h + "mlp.c_proj.weight"] = np.einsum("bti,bto->io", act, dx)
        G[h + "mlp.c_proj.bias"] = dx.sum((0, 1))
        dpre = (dx @ P[h + "mlp.c_proj.weight"].T) * gelu_grad(pre, cfg.act)
        G[h + "mlp.c_fc.weight"] = np.einsum("bti,bto->io", ln2, dpre)
        G[h + "mlp.c_fc.bias"] = dpre.sum((0, 1))
        d, G[h + "ln_2.weight"], G[h + "ln_2.bias"] = layernorm_backward(
            dpre @ P[h + "mlp.c_fc.weight"].T, P[h + "ln_2.weight"], c_ln2)
        dx = dx + d
        G[h + "attn.c_proj.weight"] = np.einsum("bti,bto->io", y, dx)
        G[h + "attn.c_proj.bias"] = dx.sum((0, 1))
        dqkv = attention_backward(dx @ P[h + "attn.c_proj.weight"].T, c_att)
        G[h + "attn.c_attn.weight"] = np.einsum("bti,bto->io", ln1, dqkv)
        G[h + "attn.c_attn.bias"] = dqkv.sum((0, 1))
        d, G[h + "ln_1.weight"], G[h + "ln_1.bias"] = layernorm_backward(
            dqkv @ P[h + "attn.c_attn.weight"].T, P[h + "ln_1.weight"], c_ln1)
        dx = dx + d
    np.add.at(G["wte.weight"], inputs, dx)
    G["wpe.weight"][:T] += dx.sum(0)
    return loss, G


def adamw_step(P, G, M, Vs, t, a):
    """PyTorch AdamW with global-norm clipping (torch.nn.utils.clip_grad_norm_ semantics)."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in G.values()))
    scale = min(1.0, a.grad_clip / (norm + 1e-6)) if a.grad_clip > 0 else 1.0
    for k in P:
        g = G[k] * scale
        M[k] = a.beta1 * M[k] + (1 - a.beta1) * g
        Vs[k] = a.beta2 * Vs[k] + (1 - a.beta2) * g * g
        if P[k].ndim >= 2:
            P[k] *= 1 - a.lr * a.weight_decay
        m_hat = M[k] / (1 - a.beta1 ** t)
        v_hat = Vs[k] / (1 - a.beta2 ** t)
        P[k] -= a.lr * m_hat / (np.sqrt(v_hat) + a.eps)
    return norm


# ----------------------------------------------------------------------------- commands


def make_model(a):
    rng = np.random.default_rng(a.seed)
    C, V, L = a.n_embd, a.vocab_size, a.n_layer
    n = lambda *shape, std=0.02: rng.normal(0, std, shape)  # noqa: E731
    T = {"wte.weight": n(V, C), "wpe.weight": n(a.n_positions, C)}
    for l in range(L):
        h = f"h.{l}."
        T[h + "ln_1.weight"], T[h + "ln_1.bias"] = 1 + n(C, std=0.1), n(C)
        T[h + "attn.c_attn.weight"], T[h + "attn.c_attn.bias"] = n(C, 3 * C), n(3 * C)
        T[h + "attn.c_proj.weight"], T[h + "attn.c_proj.bias"] = n(C, C), n(C)
        T[h + "ln_2.weight"], T[h + "ln_2.bias"] = 1 + n(C, std=0.1), n(C)
        T[h + "mlp.c_fc.weight"], T[h + "mlp.c_fc.bias"] = n(C, 4 * C), n(4 * C)
        T[h + "mlp.c_proj.weight"], T[h + "mlp.c_proj.bias"] = n(4 * C, C), n(C)
    T["ln_f.weight"], T["ln_f.bias"] = 1 + n(C, std=0.1), n(C)
    # HF checkpoints carry the causal-mask buffer and the `transformer.` prefix; readers skip it.
    T = {"transformer." + k: v.astype(np.float32) for k, v in T.items()}
    T["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, a.n_positions, a.n_positions),
                                                     dtype=np.float32))
    os.makedirs(a.dir, exist_ok=True)
    write_safetensors(os.path.join(a.dir, "model.safetensors"), T)
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
              "n_layer": L, "n_head": a.n_head, "n_embd": C, "n_positions": a.n_positions,
              "n_ctx": a.n_positions, "vocab_size": V, "layer_norm_epsilon": 1e-5,
              "activation_function": a.activation}
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def make_data(a):
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    write_shard(os.path.join(a.dir, "tiny_val_000000.bin"), rng.integers(0, a.vocab_size, a.tokens))
    write_shard(os.path.join(a.dir, "tiny_train_000001.bin"),
                rng.integers(0, a.vocab_size, a.tokens))


def evaluate(a):
    cfg, P = Config(a.model), load_params(a.model)
    stream = read_stream(a.data, "val")
    losses = [forward_backward(cfg, P, *window(stream, i, a.batch_size, a.seq_len), False)[0]
              for i in range(a.eval_steps)]
    print(json.dumps({"val_loss": float(np.mean(losses))}))


def train(a):
    cfg, P = Config(a.model), load_params(a.model)
    stream = read_stream(a.data, "train")
    M = {k: np.zeros_like(v) for k, v in P.items()}
    Vs = {k: np.zeros_like(v) for k, v in P.items()}
    losses, norms = [], []
    for k in range(a.train_steps):
        loss, G = forward_backward(cfg, P, *window(stream, k, a.batch_size, a.seq_len), True)
        norms.append(adamw_step(P, G, M, Vs, k + 1, a))
        losses.append(float(loss))
    print(json.dumps({"losses": losses, "grad_norms": norms}))


def hellaswag(a):
    """llm.c's dev/data/hellaswag.py scoring on pre-tokenized examples (one row per ending)."""
    cfg, P = Config(a.model), load_params(a.model)
    with open(a.examples) as f:
        examples = json.load(f)
    out, correct, correct_norm = [], 0, 0
    for ex in examples:
        sums, means = [], []
        for ending in ex["endings"]:
            row = (ex["ctx"] + ending)[-a.max_len:]  # a too long row loses its context's start
            n = min(len(ending), len(row) - 1)  # ending tokens that have a token before them
            logp = log_probs(cfg, P, np.array([row[:-1]]))[0]
            targets = np.array(row[1:])
            token_logp = logp[np.arange(len(targets)), targets][-n:]
            sums.append(float(-token_logp.sum()))
            means.append(float(-token_logp.mean()))
        pred, pred_norm = int(np.argmin(sums)), int(np.argmin(means))
        correct += pred == ex["label"]
        correct_norm += pred_norm == ex["label"]
        out.append({"sums": sums, "means": means, "pred": pred, "pred_norm": pred_norm})
    n = len(examples)
    print(json.dumps({"acc": correct / n, "acc_norm": correct_norm / n, "examples": out}))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make-model")
    m.add_argument("dir")
    for flag, default in [("--n-layer", 2), ("--n-head", 2), ("--n-embd", 24),
                          ("--n-positions", 32), ("--vocab-size", 101), ("--seed", 0)]:
        m.add_argument(flag, type=int, default=default)
    m.add_argument("--activation", choices=["gelu_new", "gelu"], default="gelu_new")
    d = sub.add_parser("make-data")
    d.add_argument("dir")
    for flag, default in [("--vocab-size", 101), ("--tokens", 4096), ("--seed", 1)]:
        d.add_argument(flag, type=int, default=default)
    for name in ("eval", "train"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--data", required=True)
        s.add_argument("--batch-size", type=int, required=True)
        s.add_argument("--seq-len", type=int, required=True)
    sub.choices["eval"].add_argument("--eval-steps", type=int, required=True)
    t = sub.choices["train"]
    t.add_argument("--train-steps", type=int, required=True)
    t.add_argument("--lr", type=float, required=True)
    for flag, default in [("--weight-decay", 0.0), ("--grad-clip", 1.0), ("--beta1", 0.9),
                          ("--beta2", 0.95), ("--eps", 1e-8)]:
        t.add_argument(flag, type=float, default=default)
    h = sub.add_parser("hellaswag")
    h.add_argument("--model", required=True)
    h.add_argument("--examples", required=True)
    h.add_argument("--max-len", type=int, required=True)
    a = p.parse_args(argv)
    commands = {"make-model": make_model, "make-data": make_data, "eval": evaluate,
                "train": train, "hellaswag": hellaswag}
    commands[a.command](a)


if __name__ == "__main__":
    main(sys.argv[1:])
