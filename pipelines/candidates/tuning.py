"""Coordinate ascent over non-negative weights: the tuner behind rank fusion and candidate selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def coordinate_ascent(
    objective: Callable[[np.ndarray], float], n_weights: int, grid: Sequence[float], rounds: int
) -> tuple[np.ndarray, float]:
    """Maximise `objective(weights)` one weight at a time over `grid`.

    It starts from the best of equal weights and each weight alone (one-hot), and keeps a change
    only if it strictly improves the objective; so the result is deterministic and never worse
    than equal weights or any single weight alone. All-zero weights are never tried.
    """
    starts = [np.ones(n_weights), *np.eye(n_weights)]
    scores = [objective(w) for w in starts]
    best_start = int(np.argmax(scores))  # the first of equals
    weights, best = starts[best_start].copy(), scores[best_start]
    for _ in range(rounds):
        for i in range(n_weights):
            for value in grid:
                trial = weights.copy()
                trial[i] = value
                if trial.sum() > 0 and not np.array_equal(trial, weights) and (q := objective(trial)) > best + 1e-12:
                    best, weights = q, trial
    return weights, best
