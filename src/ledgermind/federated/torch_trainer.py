"""A federated trainer for any torch module (the optional ``torch`` extra): its parameters travel as NDArrays.

``TorchTrainer(build)`` wraps a function ``build(n_features, n_classes) -> torch.nn.Module`` whose forward pass
returns class logits. The parameters exchanged with the federation are the module's ``parameters()`` in order, as
float64 numpy arrays, so the aggregators, anomaly scores, digests and the chain see exactly what they see for the
numpy trainers; each ``fit`` loads them into a fresh module, runs mini-batch SGD on the cross-entropy on the CPU,
and hands the new values back. Deterministic given the seeds (torch's generator is seeded per call).

torch is not a dependency of ledgermind: ``pip install "ledgermind[torch]"`` (a CPU build; a plain
``pip install torch`` may pull several GB of CUDA libraries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.trainers import NDArrays, _Base, _check_fit_args, _check_xy


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidInputError('the torch trainer needs torch: pip install "ledgermind[torch]"') from None
    return torch


class TorchTrainer(_Base):
    """Train a torch module in a federation. ``build(n_features, n_classes)`` makes the module (logits out).

    Prediction, scoring and log-loss are the numpy trainers' (``_Base``); fitting runs in torch.
    Raises InvalidInputError when torch is not installed, or when parameters do not fit the module."""

    def __init__(self, build: Callable[[int, int], Any], l2: float = 1e-4) -> None:
        self.torch = _torch()
        self.build = build
        self.l2 = l2
        self._sizes: tuple[int, int] | None = None
        self._param_shapes: list[tuple[int, ...]] = []

    def get_params(self) -> dict[str, Any]:
        return {"l2": self.l2, "module": getattr(self.build, "__name__", repr(self.build))}

    def init_params(self, n_features: int, n_classes: int, seed: int = 0) -> NDArrays:
        if n_features < 1 or n_classes < 2:
            raise InvalidInputError(f"need n_features >= 1 and n_classes >= 2, got {n_features}, {n_classes}")
        self._sizes = (n_features, n_classes)
        self.torch.manual_seed(seed)
        params = [p.detach().to(self.torch.float64).numpy().copy() for p in self.build(n_features, n_classes).parameters()]
        self._param_shapes = [p.shape for p in params]
        return params

    def _module(self, params: NDArrays) -> Any:
        self._shapes(params)
        module = self.build(*self._sizes).to(self.torch.float64)  # type: ignore[misc]
        own = list(module.parameters())
        with self.torch.no_grad():
            for p, q in zip(own, params):
                p.copy_(self.torch.from_numpy(np.asarray(q, dtype=np.float64)))
        return module

    def fit(self, params: NDArrays, X: np.ndarray, y: np.ndarray, *, epochs: int = 1, lr: float = 0.1,
            batch_size: int = 32, seed: int = 0) -> NDArrays:
        """New parameters after ``epochs`` of mini-batch SGD on ``(X, y)``; ``params`` is untouched."""
        _check_fit_args(epochs, lr, batch_size)
        torch = self.torch
        module = self._module(params)
        X, y = _check_xy(X, y, *self._sizes)  # type: ignore[misc]
        assert y is not None
        xs, ys = torch.from_numpy(X), torch.from_numpy(y)
        opt = torch.optim.SGD(module.parameters(), lr=lr, weight_decay=self.l2)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(ys), generator=gen)
            for start in range(0, len(ys), batch_size):
                batch = order[start:start + batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(module(xs[batch]), ys[batch]).backward()
                opt.step()
        return [p.detach().numpy().copy() for p in module.parameters()]

    def _shapes(self, params: NDArrays) -> tuple[int, int]:
        if self._sizes is None:
            raise InvalidInputError("call init_params first: the module's sizes come from there")
        if [np.shape(q) for q in params] != self._param_shapes:
            raise InvalidInputError(f"parameters of shapes {[np.shape(q) for q in params]} do not fit the module's "
                                    f"{self._param_shapes}")
        return self._sizes

    def _proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.torch.softmax(self._module(params)(self.torch.from_numpy(X)), dim=1).numpy()
