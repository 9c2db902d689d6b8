"""Trainers with an explicit parameter list, in plain numpy (no torch).

A trainer holds only hyperparameters; the model's parameters are a list of numpy arrays (Flower's ``NDArrays``)
passed in and returned, never stored, so the same trainer object serves every party and the server::

    trainer = LogisticRegressionTrainer()
    params = trainer.init_params(n_features=64, n_classes=10, seed=0)        # [W (64, 10), b (10,)]
    params = trainer.fit(params, X, y, epochs=2, lr=0.1, batch_size=32, seed=1)
    trainer.score(params, X_test, y_test)                                     # accuracy

Everything is deterministic given the seeds: mini-batch order comes from ``numpy.random.default_rng(seed)``.
Training is mini-batch SGD on the softmax cross-entropy plus an L2 penalty on the weight matrices.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ledgermind.errors import InvalidInputError

NDArrays = list[np.ndarray]


@runtime_checkable
class Trainer(Protocol):
    """What the federation needs from a model: parameters as NDArrays in, NDArrays out."""

    def init_params(self, n_features: int, n_classes: int, seed: int) -> NDArrays: ...

    def fit(
        self, params: NDArrays, X: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, batch_size: int, seed: int
    ) -> NDArrays: ...

    def predict_proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray: ...

    def predict(self, params: NDArrays, X: np.ndarray) -> np.ndarray: ...

    def score(self, params: NDArrays, X: np.ndarray, y: np.ndarray) -> float: ...

    def log_loss(self, params: NDArrays, X: np.ndarray, y: np.ndarray) -> float: ...

    def get_params(self) -> dict[str, Any]: ...


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # shift so exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _check_xy(
    X: np.ndarray, y: np.ndarray | None, n_features: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise InvalidInputError(f"X must have shape (n, {n_features}), got {X.shape}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise InvalidInputError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes):
        raise InvalidInputError(f"y must hold integer labels in [0, {n_classes}), got dtype {y.dtype}")
    return X, y.astype(np.int64)


def _check_fit_args(epochs: int, lr: float, batch_size: int) -> None:
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise InvalidInputError(f"need epochs >= 0, lr > 0, batch_size >= 1; got {epochs}, {lr}, {batch_size}")


class _Base:
    """Shared mini-batch loop and scoring; subclasses supply the forward pass and the gradients."""

    l2: float

    def _shapes(self, params: NDArrays) -> tuple[int, int]:
        raise NotImplementedError

    def _grads(self, params: NDArrays, X: np.ndarray, Y: np.ndarray) -> NDArrays:
        raise NotImplementedError

    def _proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _check_sizes(n_features: int, n_classes: int) -> None:
        if n_features < 1 or n_classes < 2:
            raise InvalidInputError(f"need n_features >= 1 and n_classes >= 2, got {n_features}, {n_classes}")

    def predict_proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``. Raises InvalidInputError if X has the wrong width."""
        d, k = self._shapes(params)
        X, _ = _check_xy(X, None, d, k)
        return self._proba(params, X)

    def fit(
        self,
        params: NDArrays,
        X: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int = 1,
        lr: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
    ) -> NDArrays:
        """Return new parameters after ``epochs`` passes of mini-batch SGD over ``(X, y)``; ``params`` is untouched.

        Labels must be integers in ``[0, n_classes)`` where ``n_classes`` comes from the parameter shapes, so a party
        that holds only some labels still trains the full model. Raises InvalidInputError on mismatched shapes,
        labels out of range, or non-positive hyperparameters.
        """
        _check_fit_args(epochs, lr, batch_size)
        n_features, n_classes = self._shapes(params)
        X, y = _check_xy(X, y, n_features, n_classes)
        assert y is not None
        params = [np.array(p, dtype=np.float64, copy=True) for p in params]
        if len(y) == 0:
            return params
        Y = np.eye(n_classes)[y]
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch_size):
                batch = order[start : start + batch_size]
                for p, g in zip(params, self._grads(params, X[batch], Y[batch])):
                    p -= lr * g
        return params

    def predict(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        """Most probable label per row (int64)."""
        return self.predict_proba(params, X).argmax(axis=1)

    def score(self, params: NDArrays, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on ``(X, y)``, in [0, 1]. Raises InvalidInputError on an empty set."""
        if len(y) == 0:
            raise InvalidInputError("cannot score on an empty set")
        return float(np.mean(self.predict(params, X) == np.asarray(y)))

    def log_loss(self, params: NDArrays, X: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on ``(X, y)`` (probabilities clipped at 1e-12 so a confident miss stays finite)."""
        proba = self.predict_proba(params, X)
        return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), np.asarray(y)], 1e-12, None))))


class LogisticRegressionTrainer(_Base):
    """Multinomial logistic regression; parameters ``[W (n_features, n_classes), b (n_classes,)]``."""

    def __init__(self, l2: float = 1e-4, init_scale: float = 0.01) -> None:
        self.l2 = l2
        self.init_scale = init_scale

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, scikit-learn style."""
        return {"l2": self.l2, "init_scale": self.init_scale}

    def init_params(self, n_features: int, n_classes: int, seed: int = 0) -> NDArrays:
        """Small seeded normal weights and zero biases. Requires n_features >= 1 and n_classes >= 2."""
        self._check_sizes(n_features, n_classes)
        rng = np.random.default_rng(seed)
        return [rng.normal(0.0, self.init_scale, size=(n_features, n_classes)), np.zeros(n_classes)]

    def _shapes(self, params: NDArrays) -> tuple[int, int]:
        if len(params) != 2 or np.ndim(params[0]) != 2 or np.shape(params[1]) != (np.shape(params[0])[1],):
            raise InvalidInputError(f"expected [W (d, k), b (k,)], got shapes {[np.shape(p) for p in params]}")
        d, k = np.shape(params[0])
        return int(d), int(k)

    def _grads(self, params: NDArrays, X: np.ndarray, Y: np.ndarray) -> NDArrays:
        W, b = params
        err = (_softmax(X @ W + b) - Y) / len(X)  # d(mean cross-entropy)/d(logits)
        return [X.T @ err + self.l2 * W, err.sum(axis=0)]

    def _proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        return _softmax(X @ params[0] + params[1])

    def to_sklearn(self, params: NDArrays) -> Any:
        """The same model as a fitted scikit-learn ``LogisticRegression`` (same probabilities), e.g. to serve or
        inspect a federation's model with scikit-learn tools. Two classes become sklearn's single-row form."""
        from sklearn.linear_model import LogisticRegression

        d, k = self._shapes(params)
        W, b = (np.asarray(p, dtype=np.float64) for p in params)
        model = LogisticRegression()
        model.classes_ = np.arange(k)
        model.n_features_in_ = d
        model.n_iter_ = np.zeros(1, dtype=np.int32)
        if k == 2:  # softmax over two logits is the sigmoid of their difference
            model.coef_, model.intercept_ = (W[:, 1] - W[:, 0])[None, :], np.array([b[1] - b[0]])
        else:
            model.coef_, model.intercept_ = W.T.copy(), b.copy()
        return model


class MLPTrainer(_Base):
    """One hidden ReLU layer; parameters ``[W1 (n_features, hidden), b1 (hidden,), W2 (hidden, n_classes), b2]``."""

    def __init__(self, hidden: int = 32, l2: float = 1e-4) -> None:
        if hidden < 1:
            raise InvalidInputError(f"hidden must be >= 1, got {hidden}")
        self.hidden = hidden
        self.l2 = l2

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, scikit-learn style."""
        return {"hidden": self.hidden, "l2": self.l2}

    def init_params(self, n_features: int, n_classes: int, seed: int = 0) -> NDArrays:
        """He-initialized weights (seeded) and zero biases. Requires n_features >= 1 and n_classes >= 2."""
        self._check_sizes(n_features, n_classes)
        rng = np.random.default_rng(seed)
        return [
            rng.normal(0.0, np.sqrt(2.0 / n_features), size=(n_features, self.hidden)),
            np.zeros(self.hidden),
            rng.normal(0.0, np.sqrt(2.0 / self.hidden), size=(self.hidden, n_classes)),
            np.zeros(n_classes),
        ]

    def _shapes(self, params: NDArrays) -> tuple[int, int]:
        shapes = [np.shape(p) for p in params]
        if (
            len(params) != 4
            or len(shapes[0]) != 2
            or len(shapes[2]) != 2
            or shapes[1] != (shapes[0][1],)
            or shapes[2][0] != shapes[0][1]
            or shapes[3] != (shapes[2][1],)
        ):
            raise InvalidInputError(f"expected [W1 (d, h), b1 (h,), W2 (h, k), b2 (k,)], got shapes {shapes}")
        return int(shapes[0][0]), int(shapes[2][1])

    def _grads(self, params: NDArrays, X: np.ndarray, Y: np.ndarray) -> NDArrays:
        W1, b1, W2, b2 = params
        H = np.maximum(X @ W1 + b1, 0.0)
        err = (_softmax(H @ W2 + b2) - Y) / len(X)
        dH = (err @ W2.T) * (H > 0)
        return [X.T @ dH + self.l2 * W1, dH.sum(axis=0), H.T @ err + self.l2 * W2, err.sum(axis=0)]

    def _proba(self, params: NDArrays, X: np.ndarray) -> np.ndarray:
        W1, b1, W2, b2 = params
        return _softmax(np.maximum(X @ W1 + b1, 0.0) @ W2 + b2)


def local_update(
    trainer: Trainer,
    params: NDArrays,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 1,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
) -> NDArrays:
    """Train from ``params`` on ``(X, y)`` and return the *update*: new parameters minus ``params``.

    This is what a party sends and what the aggregators combine (deltas from the global model). The server computes
    its reference update the same way, on the validation set.
    """
    new = trainer.fit(params, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return [n - np.asarray(p, dtype=np.float64) for n, p in zip(new, params)]


def apply_update(params: NDArrays, update: NDArrays) -> NDArrays:
    """``params + update``, array by array (new arrays). Raises InvalidInputError if the shapes differ."""
    if len(params) != len(update) or any(np.shape(p) != np.shape(u) for p, u in zip(params, update)):
        raise InvalidInputError(
            f"update shapes {[np.shape(u) for u in update]} do not match parameters {[np.shape(p) for p in params]}"
        )
    return [np.asarray(p, dtype=np.float64) + u for p, u in zip(params, update)]


__all__ = ["LogisticRegressionTrainer", "MLPTrainer", "NDArrays", "Trainer", "apply_update", "local_update"]
