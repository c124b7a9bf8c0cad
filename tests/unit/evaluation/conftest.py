"""Fixtures of the evaluation library's tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every simulation is reproducible."""
    return np.random.default_rng(20260611)
