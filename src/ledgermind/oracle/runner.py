"""Running a registered model on a request's input, the same way for the oracle, a challenger and the resolver.

The model is loaded through ``ledgermind.inference.adapters.load_registered`` (the code the inference server
uses: the stored bytes must fingerprint to the registered digest before they are unpickled) and its input is
validated by the same adapter. Inputs and outputs are JSON; their digests are SHA-256 of their RFC 8785 canonical
bytes (``ledgermind.inference.digests``), which are also their addresses in the home's blob store: publishing an
input or an output is storing those bytes.

The decision a contract acts on is the model's first output for the first input row, as an int256: a class label
as is; a float score in millionths (``round(score * 10**6)``). Scikit-learn's ``predict`` is deterministic, so a
re-run by anyone gives the same output digest: that is what makes an answer checkable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.inference.digests import canonical_bytes, json_digest

if TYPE_CHECKING:
    from ledgermind.client import Client
    from ledgermind.inference.adapters import ServedModel

#: Largest input a request may publish (canonical JSON bytes): the request statement carries it in the log.
MAX_INPUT_BYTES = 64 * 1024
SCORE_SCALE = 10**6
_INT256 = 2**255


@dataclass(frozen=True)
class Run:
    """One run of a model: its output (JSON), the output's digest and the decision derived from it."""

    model: str
    input: str
    output: Any
    output_digest: str
    decision: int


def parse_inputs(text: str) -> Any:
    """A request's input from the command line: a JSON array of numbers (one row, or a list of rows).
    Raises InvalidInputError naming what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"the input is not JSON: {e.msg} at character {e.pos}") from None
    if not isinstance(value, list) or not value:
        raise InvalidInputError("the input must be a non-empty JSON array of numbers (or of rows of numbers)")
    return value


def load_model(client: Client, model: str) -> ServedModel:
    """The registered model ``model`` (digest, prefix or name) loaded from its stored copy.

    Raises NotFoundError ("unknown model ...") if it is not registered in this home's log, or has no stored
    copy; ModelMismatchError if the stored bytes are not the registered model."""
    from ledgermind.inference.adapters import load_registered

    try:
        client.registry.resolve(model, "model")
    except NotFoundError:
        raise NotFoundError(f"unknown model {model!r}: no model of that id or name is registered in this log") from None
    return load_registered(client, model)


def check_inputs(served: ServedModel, inputs: Any) -> bytes:
    """The canonical bytes of ``inputs`` once the model accepts them. Raises InvalidInputError (the adapter's
    one-line reason, or an input over MAX_INPUT_BYTES)."""
    served.adapter.validate(inputs)
    data = canonical_bytes(inputs)
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"the input has {len(data)} bytes of canonical JSON, more than {MAX_INPUT_BYTES}")
    return data


def publish_inputs(client: Client, served: ServedModel, inputs: Any) -> str:
    """Validate ``inputs`` for the model and store them; returns their digest (what a request commits to)."""
    return client.blobs.put_bytes(check_inputs(served, inputs))


def fetch_inputs(client: Client, digest: str) -> Any:
    """The input published under ``digest``. Raises NotFoundError if this home's store does not hold it."""
    if not client.blobs.has(digest):
        raise NotFoundError(f"input {digest[:12]} is not published in this home's store")
    return json.loads(client.blobs.path(digest).read_bytes())


def decision_of(output: np.ndarray) -> int:
    """The int256 decision: the first output of the first row; a class as is, a float score in millionths."""
    first = np.asarray(output).reshape(len(output), -1)[0, 0]
    value = int(first) if np.asarray(first).dtype.kind in "iub" else round(float(first) * SCORE_SCALE)
    if not -_INT256 <= value < _INT256:
        raise InvalidInputError(f"the model's output {first!r} does not fit an int256 decision")
    return value


def run(client: Client, model: str, input_digest: str, served: ServedModel | None = None) -> Run:
    """Run the registered ``model`` on the input published as ``input_digest``; store the output.

    Raises NotFoundError (unknown model, input not published), InvalidInputError (the model refuses the input).
    """
    served = served or load_model(client, model)
    inputs = fetch_inputs(client, input_digest)
    if json_digest(inputs) != input_digest:
        raise InvalidInputError(f"the stored input {input_digest[:12]} does not hash to its digest")
    output = served.adapter.predict(inputs)
    as_json = output.tolist()
    data = canonical_bytes(as_json)
    client.blobs.put_bytes(data)  # kept with the oracle, whatever its size (stored under its file digest)
    return Run(served.digest, input_digest, as_json, hashlib.sha256(data).hexdigest(), decision_of(output))
