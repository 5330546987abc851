"""A tiny statistics module written against numpy 1.x."""

import numpy as np


def mean(values):
    """The mean as a numpy float (``np.float_`` was removed in numpy 2.0)."""
    return np.float_(np.mean(values))


def volume(sides):
    """The product of the sides (``np.prod`` works on every numpy)."""
    return float(np.prod(sides))


def normalise(values):
    array = np.asarray(values, dtype=float)
    return (array - array.min()) / (array.max() - array.min())
