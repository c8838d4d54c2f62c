"""The GPT-2 training micro-step in PyTorch (eager), the peer `deno task bench gpu` compares to.

Same model as repgpt's seed recipe: pre-LN blocks without biases, exact (erf) GELU, tied
lm_head over the padded vocabulary, causal scaled_dot_product_attention. One micro-step is
forward, cross-entropy and backward (no optimizer), as in repgpt's `bench model`. fp32 runs with
TF32 off (WebGPU has no tensor cores); bf16 is autocast over fp32 weights, as in nanoGPT.

Prints one JSON line per (dtype, batch size): {"dtype", "B", "T", "ms"}, or "skipped" or
"error" (a message) instead of "ms".
`bench gpu` feeds this file on stdin: python3 - --batch-sizes=16,64 ...
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm(C):
    """Without bias from PyTorch 2.1 on; older ones keep a (zero) bias, a negligible cost."""
    try:
        return nn.LayerNorm(C, bias=False)
    except TypeError:
        return nn.LayerNorm(C)


def causal_attention(q, k, v):
    """Fused (flash or memory-efficient) from PyTorch 2.0 on; masked softmax before."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.ln1 = layer_norm(C)
        self.qkv = nn.Linear(C, 3 * C, bias=False)
        self.proj = nn.Linear(C, C, bias=False)
        self.ln2 = layer_norm(C)
        self.fc = nn.Linear(C, 4 * C, bias=False)
        self.fc_proj = nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, L, NH, C, Vp, T):
        super().__init__()
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, NH) for _ in range(L))
        self.ln_f = layer_norm(C)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def time_step(model, B, T, Vp, dtype, device, deadline):
    """Milliseconds per micro-step: the median of 3 timed batches after 2 warm-up steps."""
    idx = torch.randint(0, Vp, (B, T), device=device)
    targets = torch.randint(0, Vp, (B, T), device=device)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = model(idx, targets)
        loss.backward()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    once = time.perf_counter() - t0
    reps = max(1, min(20, round(0.5 / max(once, 1e-4))))
    times = []
    for _ in range(3):
        if times and time.perf_counter() + once * reps > deadline:
            break
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        times.append((time.perf_counter() - t0) / reps)
    return sorted(times)[len(times) // 2] * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--channels", type=int, default=768)
    p.add_argument("--vocab", type=int, default=50304, help="padded vocabulary (wte rows)")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch-sizes", default="16,64")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget-s", type=float, default=120)
    a = p.parse_args()
    deadline = time.perf_counter() + a.budget_s
    device = torch.device(a.device)
    # fp32 means fp32: no TF32 tensor-core products.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    T = a.seq_len
    model = GPT(a.layers, a.heads, a.channels, a.vocab, T).to(device)
    for B in (int(b) for b in a.batch_sizes.split(",")):
        for dtype in a.dtypes.split(","):
            line = {"dtype": dtype, "B": B, "T": T}
            if time.perf_counter() > deadline:
                line["skipped"] = "the time budget is spent"
            else:
                try:
                    line["ms"] = time_step(model, B, T, a.vocab, dtype, device, deadline)
                except RuntimeError as e:  # out of memory at B=64 in fp32 on a small card
                    line["error"] = str(e).splitlines()[0][:200]
                finally:
                    model.zero_grad(set_to_none=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
