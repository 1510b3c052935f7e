"""The NumPy reference resampler mirrored by the Android core, against soxr."""

import numpy as np
import pytest
import soxr

from tf_metatasnet.audio.sinc import output_length, ratio, resample


def _band_limited(frames, rate, top_hz, seed=0):
    """A sum of 40 random sines below ``top_hz``, peak 0.5, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    x = sum(rng.standard_normal() * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
            for f in rng.uniform(20, top_hz, 40))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _snr_db(reference, estimate):
    return 10 * np.log10(np.sum(reference ** 2) / np.sum((estimate - reference) ** 2))


@pytest.mark.parametrize("rate_in,rate_out", [
    (44100, 8000), (44100, 16000), (44100, 32000), (48000, 8000), (32000, 44100),
    (32000, 48000), (8000, 22050)])
def test_agrees_with_soxr_on_band_limited_audio(rate_in, rate_out):
    """Content below 85 % of the lower Nyquist frequency: >= 60 dB agreement with soxr's
    very-high-quality resampler away from the edges (both are linear phase, no delay)."""
    x = _band_limited(rate_in, rate_in, 0.85 * min(rate_in, rate_out) / 2)
    ours = resample(x, rate_in, rate_out)
    theirs = soxr.resample(x, rate_in, rate_out, quality="VHQ")
    assert len(ours) == output_length(len(x), rate_in, rate_out) == len(theirs)
    edge = len(ours) // 10
    assert _snr_db(theirs[edge:-edge], ours[edge:-edge]) >= 60


def test_rejects_what_the_lower_rate_cannot_hold():
    """A 4.5 kHz tone resampled to 8 kHz (4 kHz Nyquist) must vanish, not alias to 3.5 kHz."""
    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 4500 * t).astype(np.float32)
    out = resample(tone, 44100, 8000)[800:-800]
    assert 20 * np.log10(np.sqrt(np.mean(out ** 2)) / np.sqrt(0.5)) < -80


def test_shapes_channels_and_identity():
    stereo = np.stack([_band_limited(4410, 44100, 3000, 1), _band_limited(4410, 44100, 3000, 2)], 1)
    out = resample(stereo, 44100, 16000)
    assert out.shape == (1600, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 1], resample(stereo[:, 1], 44100, 16000))
    np.testing.assert_array_equal(resample(stereo, 16000, 16000), stereo)
    assert ratio(44100, 32000) == (320, 441) and output_length(3, 44100, 8000) == 1
    with pytest.raises(ValueError, match="positive"):
        ratio(0, 8000)
