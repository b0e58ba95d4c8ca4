"""Resampling keeps pitch and duration and refuses nonsense rates."""

from __future__ import annotations

import numpy as np
import pytest

from subnet_proxy.engines.resample import resample
from tests.conftest import tone


@pytest.mark.parametrize("source,target", [(22_050, 16_000), (16_000, 48_000), (44_100, 8_000)])
def test_pitch_and_duration_are_kept(source, target):
    out = resample(tone(2.0, source, 440.0), source, target)
    assert abs(len(out) - 2 * target) <= 2
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * target / len(out)
    assert abs(peak_hz - 440.0) < 2.0
    assert out.dtype == np.float32


def test_same_rate_is_unchanged():
    samples = tone(0.5)
    assert np.array_equal(resample(samples, 16_000, 16_000), samples)


def test_bad_rates_are_refused():
    with pytest.raises(ValueError):
        resample(tone(0.1), 0, 16_000)
