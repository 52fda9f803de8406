"""Swap torch.nn.GELU for gelu_numba.torch.GELU in a small model and train.

Two copies of the same model, same initial weights, same data, same
optimiser: the loss curves agree to float tolerance.

    python examples/train_small_model.py
"""

import copy
import sys

try:
    import torch
except ImportError:
    sys.exit("train_small_model.py needs PyTorch, which is not installed: "
             "pip install torch (a CPU-only build: see docs/ecosystem.md, 'PyTorch')")

from gelu_numba.torch import GELU


def make_model(d_in=16, d_hidden=64, d_out=4):
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, d_hidden), torch.nn.GELU(),
        torch.nn.Linear(d_hidden, d_hidden), torch.nn.GELU(),
        torch.nn.Linear(d_hidden, d_out),
    )


def swap_gelu(model, approximate="none"):
    """Replace every torch.nn.GELU in `model` by gelu_numba's, in place."""
    for name, child in model.named_children():
        if isinstance(child, torch.nn.GELU):
            setattr(model, name, GELU(approximate=child.approximate if approximate is None else approximate))
        else:
            swap_gelu(child, approximate)
    return model


def train(model, x, y, steps, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main(steps=30, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    reference = make_model().to(dtype)
    ours = swap_gelu(copy.deepcopy(reference), approximate=None)
    x = torch.randn(256, 16, dtype=dtype)
    y = torch.sin(x[:, :4]) + 0.1 * torch.randn(256, 4, dtype=dtype)
    a, b = train(reference, x, y, steps), train(ours, x, y, steps)
    worst = max(abs(p - q) / max(abs(p), 1e-12) for p, q in zip(a, b))
    print(f"loss {a[0]:.4f} -> {a[-1]:.4f} (torch.nn.GELU), {b[0]:.4f} -> {b[-1]:.4f} (gelu_numba); "
          f"largest relative gap {worst:.2e}")
    return a, b


if __name__ == "__main__":
    main()
