"""A transformer feed-forward block in NumPy: Linear -> GELU -> Linear.

Forward and backward by hand, the GELU step with gelu_numba's fused
backward, checked against PyTorch autograd when torch is installed.

    python examples/transformer_ffn.py
"""

import numpy as np

import gelu_numba as gn


def ffn_forward(x, w1, b1, w2, b2):
    h = x @ w1 + b1
    a = gn.gelu(h)
    return a @ w2 + b2, (x, h, a)


def ffn_backward(dy, w1, w2, cache):
    x, h, a = cache
    dw2 = a.reshape(-1, a.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
    db2 = dy.sum(axis=tuple(range(dy.ndim - 1)))
    da = dy @ w2.T
    dh = gn.gelu_backward(da, h)  # dy * gelu'(h), one fused pass
    dw1 = x.reshape(-1, x.shape[-1]).T @ dh.reshape(-1, dh.shape[-1])
    db1 = dh.sum(axis=tuple(range(dh.ndim - 1)))
    dx = dh @ w1.T
    return dx, dw1, db1, dw2, db2


def main(d_model=64, d_ff=256, batch=(8, 16), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, d_model)).astype(dtype)
    w1 = (rng.standard_normal((d_model, d_ff)) / np.sqrt(d_model)).astype(dtype)
    b1 = rng.standard_normal(d_ff).astype(dtype) * 0.1
    w2 = (rng.standard_normal((d_ff, d_model)) / np.sqrt(d_ff)).astype(dtype)
    b2 = rng.standard_normal(d_model).astype(dtype) * 0.1
    y, cache = ffn_forward(x, w1, b1, w2, b2)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = ffn_backward(dy, w1, w2, cache)
    report = {"output_shape": y.shape}
    print(f"feed-forward block, input {x.shape}: output {y.shape}, |y| max {np.max(np.abs(y)):.3g}; "
          f"gradients of W1, b1, W2, b2 and x computed with gelu_backward")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed, so there is no cross-check against torch.nn.functional.gelu "
              "(pip install torch; a CPU-only build: see docs/ecosystem.md, 'PyTorch')")
        return report
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w1, b1, w2, b2)]
    tx, tw1, tb1, tw2, tb2 = tensors
    ty = torch.nn.functional.gelu(tx @ tw1 + tb1) @ tw2 + tb2
    ty.backward(torch.tensor(dy))
    report["max_abs_diff_output"] = float(np.max(np.abs(y - ty.detach().numpy())))
    report["max_abs_diff_grads"] = max(float(np.max(np.abs(g - t.grad.numpy()))) for g, t in zip(grads, tensors))
    print(f"output {y.shape}: max |ours - torch| = {report['max_abs_diff_output']:.3g}; "
          f"gradients: {report['max_abs_diff_grads']:.3g}")
    return report


if __name__ == "__main__":
    main()
