"""Poisoning attacks and faults, for benchmarks and tests: what a malicious or broken party sends instead.

Model-level attacks transform an honestly trained update; the data-level attack changes the labels the attacker
trains on; colluders agree on one crafted update and all send it. ``simulation.run_federation`` applies them by name
(``ATTACKS``), and faults (``FAULTS``) produce updates that validation must reject.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.updates import global_norm

NDArrays = list[np.ndarray]

ATTACKS = ("sign_flip", "scale", "label_flip", "colluding")
FAULTS = ("nan", "wrong_shape")


def sign_flip(update: NDArrays) -> NDArrays:
    """The honest update reversed: pushes the model the other way by the same amount."""
    return [-np.asarray(u, dtype=np.float64) for u in update]


def scale(update: NDArrays, factor: float = -10.0) -> NDArrays:
    """The honest update times ``factor``; the default -10 both reverses it and dwarfs the honest ones."""
    return [factor * np.asarray(u, dtype=np.float64) for u in update]


def flip_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Label flipping: ``y -> n_classes - 1 - y`` (benign <-> malignant; digit 0 <-> 9, 1 <-> 8...).

    A data-level attack: the attacker trains normally, but on these labels. Requires labels in [0, n_classes).
    """
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise InvalidInputError(f"labels must be in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return (n_classes - 1 - y).astype(y.dtype)


def colluding_update(flipped_updates: Sequence[NDArrays], honest_updates: Sequence[NDArrays] | None = None) -> NDArrays:
    """The one update every colluder sends: the mean of their label-flipped updates.

    If the colluders also trained honestly (``honest_updates``), the crafted update is rescaled to the mean norm of
    those honest updates, so that a norm check cannot tell it apart; identical updates also sit at distance 0 from
    each other, which is what fools distance-based rules such as Krum. Requires at least one flipped update.
    """
    if not flipped_updates:
        raise InvalidInputError("colluding_update needs at least one label-flipped update")
    crafted = [np.mean([np.asarray(u[i], dtype=np.float64) for u in flipped_updates], axis=0)
               for i in range(len(flipped_updates[0]))]
    if honest_updates:
        target = float(np.mean([global_norm(u) for u in honest_updates]))
        norm = global_norm(crafted)
        if norm > 0:
            crafted = [c * (target / norm) for c in crafted]
    return crafted


def nan_update(update: NDArrays) -> NDArrays:
    """A fault: the update with its first value replaced by NaN (a diverged or corrupted client)."""
    out = [np.array(u, dtype=np.float64, copy=True) for u in update]
    out[0].flat[0] = np.nan
    return out


def wrong_shape_update(update: NDArrays) -> NDArrays:
    """A fault: the update with its last array dropped (a client running another model version)."""
    return [np.asarray(u, dtype=np.float64) for u in update[:-1]]


__all__ = [
    "ATTACKS",
    "FAULTS",
    "colluding_update",
    "flip_labels",
    "nan_update",
    "scale",
    "sign_flip",
    "wrong_shape_update",
]
