"""The seed's test: a batch of 32 sequences of length 10 with 64 features keeps
its shape through GELU (the seed wrote the tanh form as a torch Module).

    python examples/seed_shape.py
"""

import numpy as np

import gelu_numba as gn


def main():
    x = np.random.default_rng(0).standard_normal((32, 10, 64)).astype(np.float32)
    y = gn.gelu_tanh(x)
    assert x.shape == y.shape and y.dtype == np.float32
    result = {"numpy": y.shape}
    print(f"NumPy: {x.shape} {x.dtype} -> {y.shape} {y.dtype}")
    try:
        import torch

        from gelu_numba.torch import GELU
    except ImportError:
        print("PyTorch: not installed, not tried (see docs/ecosystem.md, 'PyTorch')")
        return result
    t = torch.randn(32, 10, 64)
    result["torch"] = tuple(GELU(approximate="tanh")(t).shape)
    assert result["torch"] == (32, 10, 64)
    print(f"PyTorch: {tuple(t.shape)} -> {result['torch']}")
    return result


if __name__ == "__main__":
    main()
