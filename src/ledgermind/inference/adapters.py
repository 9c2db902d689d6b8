"""Models loaded for serving behind one interface: ``adapter.predict(inputs) -> np.ndarray``.

Frameworks: scikit-learn (joblib or pickle files), ONNX (onnxruntime on the CPU), plain numpy callables (a
Python function, optionally with parameters from a registered ``.npz``/``.npy`` file) and, as an optional extra,
TorchScript (torch is imported only when such a model is loaded).

Every adapter validates its inputs before the model sees them: numbers only, a rectangular array of the shape
the model expects (a single row may omit the batch dimension), no NaN or infinity, at most ``max_rows`` rows and
``max_elements`` numbers. Anything else raises InvalidInputError with one line saying what was expected and what
was found; the model itself never runs on bad input.

``load_registered`` is how a provider gets a model: it resolves a registered model through the Client, reads the
file's bytes once, and refuses (ModelMismatchError) unless they fingerprint to the registered digest. The model
is then built from those same bytes, so the file cannot change between the check and the load: this matters
because loading a pickle runs code, and only bytes someone signed for in the log may do that.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.fingerprint import asset_digest, digest_bytes, fingerprint
from ledgermind.inference.errors import ModelMismatchError

if TYPE_CHECKING:
    from ledgermind.client import Client

MAX_ROWS = 1024
MAX_ELEMENTS = 1 << 20
_NUMERIC = frozenset("iuf")  # signed, unsigned, float: bools, strings, objects and None are refused
_SUFFIX_FORMATS = {
    ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".onnx": "onnx", ".npz": "npz", ".npy": "npy",
    ".pt": "torch", ".pth": "torch",
}
_FORMAT_FRAMEWORK = {"joblib": "scikit-learn", "pickle": "scikit-learn", "onnx": "onnx", "npz": "numpy",
                     "npy": "numpy", "torch": "pytorch"}

Shape = tuple[int | None, ...]  # the expected shape of one batch; None: any size (the batch dimension always is)


class ModelAdapter:
    """A loaded model. Subclasses set ``framework``, ``input_shape``, ``dtype`` and implement ``_predict``.

    ``input_shape`` is the shape of a batch with None for free dimensions, e.g. ``(None, 30)``; None when the
    model does not say (a plain callable), then any rectangular numeric array is passed on.
    """

    framework = "unknown"

    def __init__(self, input_shape: Shape | None, dtype: np.dtype | type, *, max_rows: int = MAX_ROWS,
                 max_elements: int = MAX_ELEMENTS) -> None:
        if max_rows < 1 or max_elements < 1:
            raise InvalidInputError("max_rows and max_elements must be >= 1")
        self.input_shape = input_shape
        self.dtype = np.dtype(dtype)
        self.max_rows = max_rows
        self.max_elements = max_elements

    # ------------------------------------------------------------------ validation
    def validate(self, inputs: Any) -> np.ndarray:
        """``inputs`` (JSON lists or an array) as a batch the model accepts. Raises InvalidInputError."""
        if isinstance(inputs, np.ndarray):
            x = inputs
        else:
            if not isinstance(inputs, (list, tuple)):
                raise InvalidInputError(f"inputs must be an array of numbers, got {type(inputs).__name__}")
            try:
                x = np.asarray(inputs)
            except ValueError:  # ragged nesting
                raise InvalidInputError("inputs must be a rectangular array: rows of different lengths") from None
        if x.dtype.kind not in _NUMERIC:
            what = "booleans" if x.dtype.kind == "b" else "a ragged or mixed array" if x.dtype.kind == "O" else "strings" if x.dtype.kind in "US" else f"dtype {x.dtype}"
            raise InvalidInputError(f"inputs must be numbers, got {what}")
        if x.size == 0:
            raise InvalidInputError("inputs are empty: send at least one row")
        if x.size > self.max_elements:
            raise InvalidInputError(f"inputs have {x.size} numbers, more than the limit of {self.max_elements}")
        x = self._shape(x)
        if x.shape[0] > self.max_rows:
            raise InvalidInputError(f"inputs have {x.shape[0]} rows, more than the limit of {self.max_rows} per request")
        if x.dtype != self.dtype:
            with np.errstate(over="ignore", invalid="ignore"):
                cast = x.astype(self.dtype)
            if self.dtype.kind in "iu" and x.dtype.kind == "f" and not np.array_equal(cast, x):
                raise InvalidInputError(f"this model takes integers ({self.dtype}); inputs have fractions")
            x = cast
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise InvalidInputError(f"inputs contain NaN or infinity (or numbers too large for {self.dtype})")
        return x

    def _shape(self, x: np.ndarray) -> np.ndarray:
        expected = self.input_shape
        if expected is None:
            if x.ndim == 0:
                raise InvalidInputError("inputs must be an array, got a single number")
            return x if x.ndim > 1 else x.reshape(1, -1)
        if x.ndim == len(expected) - 1:  # one example without its batch dimension
            x = x.reshape((1, *x.shape))
        if x.ndim != len(expected):
            raise InvalidInputError(
                f"inputs must have {len(expected)} dimensions (batch, {_dims(expected[1:])}), got shape {list(x.shape)}"
            )
        for axis, (want, got) in enumerate(zip(expected, x.shape)):
            if axis > 0 and want is not None and want != got:
                raise InvalidInputError(
                    f"inputs must have shape [rows, {_dims(expected[1:])}], got {list(x.shape)}"
                )
        return x

    # ------------------------------------------------------------------ prediction
    def predict(self, inputs: Any) -> np.ndarray:
        """Validate ``inputs`` and run the model; one output row per input row."""
        return self.predict_valid(self.validate(inputs))

    def predict_valid(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a batch that ``validate`` returned (several requests' batches may be concatenated)."""
        out = np.asarray(self._predict(x))
        if out.ndim == 0 or out.shape[0] != x.shape[0]:
            raise RuntimeError(f"{self.framework} model returned shape {list(out.shape)} for {x.shape[0]} rows")
        return out

    def _predict(self, x: np.ndarray) -> Any:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a client needs to build valid inputs (served in the model's terms)."""
        return {
            "framework": self.framework,
            "shape": None if self.input_shape is None else [None if d is None else d for d in self.input_shape],
            "dtype": str(self.dtype),
            "maxRows": self.max_rows,
            "maxElements": self.max_elements,
        }


def _dims(shape: Shape) -> str:
    return ", ".join("any" if d is None else str(d) for d in shape) or "scalar"


class SklearnAdapter(ModelAdapter):
    """A fitted scikit-learn estimator (or pipeline); ``method`` is ``predict`` by default."""

    framework = "scikit-learn"

    def __init__(self, estimator: Any, *, method: str = "predict", **limits: Any) -> None:
        fn = getattr(estimator, method, None)
        if not callable(fn):
            raise InvalidInputError(f"{type(estimator).__name__} has no {method}() method")
        n = getattr(estimator, "n_features_in_", None)
        super().__init__((None, int(n)) if n is not None else None, np.float64, **limits)
        self.estimator = estimator
        self.method = method
        self._fn = fn

    def _predict(self, x: np.ndarray) -> Any:
        import sklearn

        # inputs were checked for NaN/inf already: skip scikit-learn's second pass over them
        with sklearn.config_context(assume_finite=True):
            return self._fn(x)


class OnnxAdapter(ModelAdapter):
    """An ONNX model on onnxruntime's CPU provider; its first input is fed, its first output returned."""

    framework = "onnx"
    _TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(float16)": np.float16}

    def __init__(self, model: bytes, *, threads: int = 1, **limits: Any) -> None:
        """``threads``: onnxruntime intra-op threads; 1 by default (requests run concurrently instead)."""
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise InvalidInputError("serving ONNX models needs onnxruntime: pip install onnxruntime") from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt models
            raise InvalidInputError(f"not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from e
        first = self.session.get_inputs()[0]
        dtype = self._TYPES.get(first.type)
        if dtype is None:
            raise InvalidInputError(f"ONNX input {first.name!r} has type {first.type}; supported: {', '.join(self._TYPES)}")
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in first.shape)
        super().__init__((None, *shape[1:]) if shape else None, dtype, **limits)
        self._input = first.name
        self._output = self.session.get_outputs()[0].name

    def _predict(self, x: np.ndarray) -> Any:
        return self.session.run([self._output], {self._input: x})[0]


class CallableAdapter(ModelAdapter):
    """A plain Python function of a numpy batch: ``fn(x)`` or, with ``params``, ``fn(x, params)``."""

    framework = "numpy"

    def __init__(self, fn: Callable[..., Any], *, params: Any = None, n_features: int | None = None,
                 input_shape: Shape | None = None, dtype: np.dtype | type = np.float64, **limits: Any) -> None:
        if not callable(fn):
            raise InvalidInputError(f"expected a callable, got {type(fn).__name__}")
        if input_shape is None and n_features is not None:
            input_shape = (None, n_features)
        super().__init__(input_shape, dtype, **limits)
        self.fn = fn
        self.params = params

    def _predict(self, x: np.ndarray) -> Any:
        return self.fn(x) if self.params is None else self.fn(x, self.params)


class TorchAdapter(ModelAdapter):
    """A TorchScript module (``torch.jit.save``) on the CPU. torch is an optional extra."""

    framework = "pytorch"

    def __init__(self, model: bytes, *, input_shape: Shape | None = None, dtype: np.dtype | type = np.float32,
                 **limits: Any) -> None:
        torch = _torch()
        try:
            self.module = torch.jit.load(io.BytesIO(model), map_location="cpu").eval()
        except Exception as e:  # torch raises RuntimeError and friends for anything that is not TorchScript
            raise InvalidInputError(f"not a TorchScript model (save it with torch.jit.save): {str(e).splitlines()[0][:200]}") from e
        super().__init__(input_shape, dtype, **limits)
        self._torch = torch

    def _predict(self, x: np.ndarray) -> Any:
        with self._torch.no_grad():
            return self.module(self._torch.from_numpy(x)).numpy()


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidInputError(
            "serving PyTorch models needs torch, an optional extra: pip install torch==2.13.0 (the CPU wheel)"
        ) from None
    return torch


# ---------------------------------------------------------------------- loading
def model_format(path: str | os.PathLike[str], declared: str | None = None) -> str:
    """The serialization format of a model file: ``declared`` (as registered) if known, else from its suffix."""
    if declared in _FORMAT_FRAMEWORK:
        return declared  # type: ignore[return-value]
    fmt = _SUFFIX_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"cannot tell the format of {Path(path).name}: expected one of {', '.join(sorted(_SUFFIX_FORMATS))}"
        )
    return fmt


def load_model(data: bytes, fmt: str, *, fn: Callable[..., Any] | None = None, **options: Any) -> ModelAdapter:
    """Build an adapter from a model file's bytes in format ``fmt`` (see ``model_format``).

    ``fn`` is required for numpy formats (the function the parameters are passed to). ``options`` go to the
    adapter (``max_rows``, ``max_elements``, ``method`` for scikit-learn, ``threads`` for ONNX, ``input_shape``
    and ``dtype`` for torch and callables). Raises InvalidInputError if the bytes are not such a model.
    """
    if fmt in ("joblib", "pickle"):
        try:
            if fmt == "joblib":
                import joblib

                estimator = joblib.load(io.BytesIO(data))
            else:
                estimator = pickle.loads(data)  # noqa: S301 - only after the bytes matched the signed digest
        except Exception as e:  # unpickling raises anything at all for foreign bytes
            raise InvalidInputError(f"not a loadable {fmt} model: {type(e).__name__}: {str(e)[:200]}") from e
        return SklearnAdapter(estimator, **options)
    if fmt == "onnx":
        return OnnxAdapter(data, **options)
    if fmt in ("npz", "npy"):
        if fn is None:
            raise InvalidInputError(f"a .{fmt} model holds parameters only: pass fn(x, params) to serve it")
        try:
            loaded = np.load(io.BytesIO(data), allow_pickle=False)
            params = dict(loaded) if fmt == "npz" else loaded
        except (ValueError, OSError) as e:
            raise InvalidInputError(f"not a loadable .{fmt} file: {e}") from e
        return CallableAdapter(fn, params=params, **options)
    if fmt == "torch":
        return TorchAdapter(data, **options)
    raise InvalidInputError(f"unknown model format {fmt!r}")


@dataclass(frozen=True)
class ServedModel:
    """A registered model ready to serve: its identity in the log and its loaded adapter."""

    digest: str
    name: str
    log_index: int
    adapter: ModelAdapter
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "name": self.name, "logIndex": self.log_index, **self.adapter.describe()}


def check_bytes(path: Path, registered: str) -> bytes:
    """The bytes of the model file at ``path``, once they are known to be the registered asset ``registered``.

    The file is fingerprinted (as ``ledgermind verify`` would), then read once; the bytes read must be the file
    the fingerprint describes. Raises ModelMismatchError naming both digests, NotFoundError if nothing is there.
    """
    if not path.exists():
        raise NotFoundError(f"no model file at {path}")
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder: serve the model file itself (register it as a file)")
    fp = fingerprint(path)
    if fp.digest != registered:
        raise ModelMismatchError(registered, fp.digest, str(path))
    data = path.read_bytes()
    if digest_bytes(data) != fp.files[0].sha256:  # changed between hashing and reading
        raise ModelMismatchError(registered, "(the file changed while it was being read)", str(path))
    return data


def load_registered(client: Client, ref: str, path: str | os.PathLike[str] | None = None, *,
                    fn: Callable[..., Any] | None = None, **options: Any) -> ServedModel:
    """Load the registered model ``ref`` (digest, prefix or name) for serving from the file at ``path``.

    Without ``path`` the model's copy in the local blob store is used (registered with ``--store``). Raises
    NotFoundError (unknown model, no file), ModelMismatchError (the file is not the registered model: the
    provider refuses to serve it), InvalidInputError (not a loadable model of its format).
    """
    row = client.registry.resolve(ref, "model")
    predicate = client.ledger.read(row.log_index).statement.predicate
    if path is None:
        manifest = client.blobs.manifest(row.digest)
        if manifest is None or len(manifest["files"]) != 1:
            raise NotFoundError(f"model {row.name!r} has no stored copy of one file: pass the path of its file")
        entry = manifest["files"][0]
        path = client.blobs.path(entry["sha256"])
        data = Path(path).read_bytes()
        if asset_digest(manifest) != row.digest or digest_bytes(data) != entry["sha256"]:
            raise ModelMismatchError(row.digest, digest_bytes(data), str(path))
        name = entry["path"]
    else:
        p = Path(path).expanduser()
        data = check_bytes(p, row.digest)
        name = p.name
    fmt = model_format(name, predicate.get("format"))
    adapter = load_model(data, fmt, fn=fn, **options)
    return ServedModel(row.digest, row.name, row.log_index, adapter, str(path),
                       {"format": fmt, "declaredFramework": predicate.get("framework")})
