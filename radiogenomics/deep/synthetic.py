"""Deep learning per marker (cohort stage): synthetic crops with a planted signal, for tests
and benchmarks.

Each crop holds smooth noise plus a Gaussian blob near the centre; in channel 0 the blob is
brighter in positive subjects (`effect` z-units), other channels carry the blob at a
label-independent amplitude. Nothing else differs between the classes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def planted_crops(
    n: int = 40,
    channels: int = 2,
    size: int = 24,
    effect: float = 1.0,
    seed: int = 0,
    positive_fraction: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, channels, size, size, size) float32, y (n,) 0/1) with the planted blob signal."""
    rng = np.random.default_rng(seed)
    n_pos = int(round(positive_fraction * n))
    y = np.zeros(n, int)
    y[rng.permutation(n)[:n_pos]] = 1
    grid = np.indices((size, size, size), dtype=float)
    X = np.empty((n, channels, size, size, size), np.float32)
    for i in range(n):
        centre = (size - 1) / 2 + rng.uniform(-size / 8, size / 8, 3)
        radius = rng.uniform(size / 8, size / 5)
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        blob = np.exp(-d2 / (2 * radius**2))
        for c in range(channels):
            noise = ndimage.gaussian_filter(rng.normal(0, 1, (size,) * 3), 1.0) * 2.0
            amp = rng.normal(1.0, 0.3) + (effect * y[i] if c == 0 else 0.0)
            X[i, c] = amp * blob + noise
    return X, y
