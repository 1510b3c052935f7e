"""The building blocks in ``tf_metatasnet.layers``, each against an independent NumPy computation.

Every numerical reference below is written from the formulas in the authors' code (PyTorch
semantics: correlation, zero/reflect padding, ``ConvTranspose1d`` cropping, GroupNorm with a
biased variance, ``align_corners=True`` interpolation) and computed in float64; none of them
re-uses the package's helpers. The per-instrument layout is ``(instruments, batch, time,
channels)`` and per-instrument parameters come from ``instrument_parameters`` in PyTorch's
order. Shapes are small and all randomness is seeded.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_metatasnet.layers as tml
from tf_metatasnet.layers import (
    Decoder,
    Encoder,
    InstrumentConv1x1,
    InstrumentDepthwiseConv,
    InstrumentGroupNorm,
    InstrumentLayer,
    LogSpectrogram,
    MaskingTCN,
    SharedPReLU,
    Stage,
    TCNLayer,
    WeightGenerator,
)
from tf_metatasnet.layers.spectrogram import reflect_indices

RTOL = 1e-5
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seeded():
    """Deterministic Keras initialisers in every test."""
    keras.utils.set_random_seed(1234)


def as_np(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def normal(seed, shape, loc=0.0) -> np.ndarray:
    return (loc + np.random.default_rng(seed).standard_normal(shape)).astype("float32")


def embedding(instruments=4, dim=8, seed=99) -> np.ndarray:
    return normal(seed, (instruments, dim))


# ----------------------------------------------------------------------------------------------
# 1. Configs round-trip through get_config / from_config / JSON / Keras serialisation
# ----------------------------------------------------------------------------------------------

# Non-default values wherever possible, so that an argument missing from get_config() shows.
LAYER_CASES = [
    (Decoder, dict(channels=16, kernel_size=8, stride=4, filters=2)),
    (Encoder, dict(channels=16, kernel_size=8, stride=4, filters=2, num_mels=6, sample_rate=16000)),
    (InstrumentConv1x1, dict(filters=3, use_bias=True, generated=False, embedding_dim=6, bottleneck_dim=3,
                             num_instruments=2)),
    (InstrumentDepthwiseConv, dict(kernel_size=5, dilation_rate=4, generated=True, embedding_dim=7,
                                   bottleneck_dim=2, num_instruments=3)),
    (InstrumentGroupNorm, dict(groups=2, epsilon=1e-5, generated=False, num_instruments=3)),
    (LogSpectrogram, dict(n_fft=32, hop=8, num_mels=5)),
    (MaskingTCN, dict(channels=8, input_channels=12, bottleneck_channels=8, hidden_channels=16, num_layers=2,
                      num_stacks=1, kernel_size=5, residual_bias=True, generated=False, embedding_dim=6,
                      bottleneck_dim=3, recompute=True)),
    (SharedPReLU, dict(alpha_initializer=0.1)),
    (Stage, dict(channels=16, kernel_size=8, stride=8, bottleneck_channels=8, hidden_channels=16, num_layers=2,
                 num_stacks=1, tcn_kernel_size=5, filters=2, num_mels=6, sample_rate=16000, generated=False,
                 embedding_dim=6, bottleneck_dim=3, residual_bias=True, dropout=0.1, previous_channels=8,
                 num_instruments=3, recompute_tcn=True)),
    (TCNLayer, dict(bottleneck_channels=8, hidden_channels=16, kernel_size=5, dilation_rate=2, residual_bias=True,
                    generated=False, embedding_dim=6, bottleneck_dim=3)),
    (WeightGenerator, dict(output_sizes={"kernel": 6, "bias": 2}, embedding_dim=7, bottleneck_dim=3)),
]


def test_config_cases_cover_every_exported_layer():
    exported = {getattr(tml, name) for name in tml.__all__} - {InstrumentLayer}
    assert {cls for cls, _ in LAYER_CASES} == exported


@pytest.mark.parametrize("cls, kwargs", LAYER_CASES, ids=[cls.__name__ for cls, _ in LAYER_CASES])
def test_config_round_trip(cls, kwargs):
    layer = cls(**kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value, f"get_config() loses {key}"
    assert json.loads(json.dumps(config)) == config

    assert type(layer).from_config(config).get_config() == config

    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is cls
    assert restored.get_config() == config


# ----------------------------------------------------------------------------------------------
# 2. InstrumentConv1x1
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_instrument_conv1x1_matches_einsum(generated, use_bias):
    instruments, batch, time, channels, filters = 3, 2, 7, 5, 4
    layer = InstrumentConv1x1(filters, use_bias=use_bias, generated=generated, num_instruments=instruments)
    x = normal(0, (instruments, batch, time, channels))
    e = embedding(instruments) if generated else None
    y = as_np(layer(x, e))

    params = {name: as_np(value) for name, value in layer.instrument_parameters(e).items()}
    assert set(params) == ({"kernel", "bias"} if use_bias else {"kernel"})
    assert params["kernel"].shape == (instruments, filters, channels)  # PyTorch (out, in)
    expected = np.einsum("ibtc,ioc->ibto", x.astype(np.float64), params["kernel"])
    if use_bias:
        assert params["bias"].shape == (instruments, filters)
        expected += params["bias"][:, None, None, :]
    assert y.shape == (instruments, batch, time, filters)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)


def test_generated_layer_needs_the_embedding():
    layer = InstrumentConv1x1(4, generated=True)
    layer.build((4, 1, 3, 5))
    with pytest.raises(ValueError, match="embedding"):
        layer.instrument_parameters(None)


# ----------------------------------------------------------------------------------------------
# 3. InstrumentDepthwiseConv
# ----------------------------------------------------------------------------------------------

def np_depthwise_same(x, kernel, dilation):
    """PyTorch depthwise Conv1d (correlation), zero padding ``dilation*(k-1)/2``, per instrument.

    ``y[t] = sum_j w[j] * x[t + j*d - pad]`` with ``x`` zero outside ``[0, T)``.
    x: (instruments, batch, time, channels); kernel: (instruments, channels, k).
    """
    y = np.zeros(x.shape, np.float64)
    for t, j, source in _depthwise_taps(x.shape[2], kernel.shape[-1], dilation):
        y[:, :, t, :] += kernel[:, None, :, j] * x[:, :, source, :]
    return y


def _depthwise_taps(time, k, dilation):
    """``(t, j, source)``: output step, tap and the input step it reads, where inside ``[0, time)``."""
    pad = dilation * (k - 1) // 2
    return [(t, j, t + j * dilation - pad) for t in range(time) for j in range(k)
            if 0 <= t + j * dilation - pad < time]


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_instrument_depthwise_conv_matches_numpy(dilation, kernel_size, generated):
    instruments, batch, time, channels = 4, 2, 11, 6
    layer = InstrumentDepthwiseConv(kernel_size, dilation, generated=generated)
    x = normal(1, (instruments, batch, time, channels))
    e = embedding() if generated else None
    y = as_np(layer(x, e))
    kernel = as_np(layer.instrument_parameters(e)["kernel"])
    assert kernel.shape == (instruments, channels, kernel_size)
    np.testing.assert_allclose(y, np_depthwise_same(x.astype(np.float64), kernel, dilation), rtol=RTOL, atol=ATOL)


def np_depthwise_same_gradients(x, kernel, dilation, upstream):
    """The gradients of ``sum(np_depthwise_same(x, kernel, dilation) * upstream)`` for
    ``x`` and ``kernel``, from the same index formula (each product's two factors)."""
    dx = np.zeros(x.shape, np.float64)
    dkernel = np.zeros(kernel.shape, np.float64)
    for t, j, source in _depthwise_taps(x.shape[2], kernel.shape[-1], dilation):
        dx[:, :, source, :] += kernel[:, None, :, j] * upstream[:, :, t, :]
        dkernel[:, :, j] += np.sum(x[:, :, source, :] * upstream[:, :, t, :], axis=1)
    return dx, dkernel


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("dilation", [1, 4])
def test_instrument_depthwise_conv_gradients_match_numpy(dilation, kernel_size, graph):
    """The layer's hand-written gradient, for the input and the (static) kernel."""
    instruments, batch, time, channels = 4, 2, 11, 6
    layer = InstrumentDepthwiseConv(kernel_size, dilation, generated=False)
    x = tf.constant(normal(1, (instruments, batch, time, channels)))
    upstream = normal(2, (instruments, batch, time, channels))
    layer.build(x.shape)
    kernel = layer.static["kernel"]

    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * upstream)
        return tape.gradient(loss, [x, kernel])

    dx, dkernel = (tf.function(gradients) if graph else gradients)(x)
    expected_dx, expected_dkernel = np_depthwise_same_gradients(
        as_np(x).astype(np.float64), as_np(kernel).astype(np.float64), dilation, upstream)
    np.testing.assert_allclose(as_np(dx), expected_dx, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(as_np(dkernel), expected_dkernel, rtol=RTOL, atol=ATOL)


def test_instrument_depthwise_conv_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        InstrumentDepthwiseConv(kernel_size=4)


# ----------------------------------------------------------------------------------------------
# 4. InstrumentGroupNorm
# ----------------------------------------------------------------------------------------------

def np_group_norm(x, affine, groups, eps=1e-8):
    """GroupNorm per (instrument, item): biased variance over time and each group's channels.

    x: (instruments, batch, time, channels); affine: (instruments, 2*channels) = [scale | bias].
    """
    instruments, batch, time, channels = x.shape
    grouped = x.reshape(instruments, batch, time, groups, channels // groups)
    mean = grouped.mean(axis=(2, 4), keepdims=True)
    variance = ((grouped - mean) ** 2).mean(axis=(2, 4), keepdims=True)
    normalized = ((grouped - mean) / np.sqrt(variance + eps)).reshape(x.shape)
    scale, bias = affine[:, :channels], affine[:, channels:]
    return normalized * scale[:, None, None, :] + bias[:, None, None, :]


def _group_norm_case(generated, loc, seed):
    instruments, batch, time, channels, groups = 3, 2, 50, 16, 4
    layer = InstrumentGroupNorm(groups, generated=generated, num_instruments=instruments)
    layer.build((instruments, batch, time, channels))
    if not generated:  # the static initial affine is (1, 0): make it non-trivial
        layer.static["affine"].assign(normal(seed + 1, (instruments, 2 * channels)))
    x = normal(seed, (instruments, batch, time, channels), loc=loc)
    e = embedding(instruments) if generated else None
    y = as_np(layer(x, e))
    affine = as_np(layer.instrument_parameters(e)["affine"])
    assert affine.shape == (instruments, 2 * channels)
    return y, np_group_norm(x.astype(np.float64), affine, groups)


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_instrument_group_norm_matches_numpy(generated):
    y, expected = _group_norm_case(generated, loc=0.0, seed=2)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_instrument_group_norm_is_accurate_for_a_large_mean(generated):
    y, expected = _group_norm_case(generated, loc=100.0, seed=3)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("alpha", [0.3, -0.2])
def test_group_norm_with_a_prelu_slope_matches_the_two_layers(alpha, graph):
    """``norm(x, slope=prelu.alpha)`` (training's fused pair with a hand-written gradient):
    the values of NumPy's GroupNorm of the PReLU, and the gradients autodiff gives for the
    two layers applied one after the other (input, slope, per-instrument affine)."""
    instruments, batch, time, channels, groups = 3, 2, 40, 16, 4
    norm = InstrumentGroupNorm(groups, generated=False, num_instruments=instruments)
    norm.build((instruments, batch, time, channels))
    norm.static["affine"].assign(normal(5, (instruments, 2 * channels)))
    prelu = SharedPReLU()
    prelu.build(None)
    prelu.alpha.assign([alpha])
    x = tf.constant(normal(6, (instruments, batch, time, channels), loc=0.2))
    upstream = normal(7, (instruments, batch, time, channels))

    def values_and_gradients(fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = norm(x, slope=prelu.alpha) if fused else norm(prelu(x))
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, prelu.alpha, norm.static["affine"]])]

    run = tf.function(values_and_gradients) if graph else values_and_gradients
    fused, separate = run(True), run(False)
    x64 = as_np(x).astype(np.float64)
    expected = np_group_norm(np.where(x64 >= 0, x64, alpha * x64), as_np(norm.static["affine"]), groups)
    np.testing.assert_allclose(as_np(fused[0]), expected, rtol=RTOL, atol=ATOL)
    for actual, reference in zip(fused[1:], separate[1:]):
        np.testing.assert_allclose(as_np(actual), as_np(reference), rtol=1e-4, atol=1e-5)


def test_instrument_group_norm_defaults_are_the_authors():
    layer = InstrumentGroupNorm()
    assert (layer.groups, layer.epsilon) == (8, 1e-8)
    static = InstrumentGroupNorm(generated=False)
    static.build((4, 1, 3, 16))
    affine = as_np(static.instrument_parameters()["affine"])
    np.testing.assert_array_equal(affine, np.concatenate([np.ones((4, 16)), np.zeros((4, 16))], axis=1))
    with pytest.raises(ValueError, match="groups"):
        InstrumentGroupNorm(generated=False).build((4, 1, 3, 12))


# ----------------------------------------------------------------------------------------------
# 5. SharedPReLU
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [-0.5, 1.7])
def test_shared_prelu_with_assigned_alpha(alpha):
    layer = SharedPReLU()
    x = normal(4, (3, 5, 7))
    x[0, 0, :3] = [0.0, -0.0, 1e-30]
    layer.build(x.shape)
    assert tuple(layer.alpha.shape) == (1,)
    np.testing.assert_allclose(as_np(layer.alpha), [0.25])  # PyTorch's default slope
    layer.alpha.assign([alpha])
    expected = np.maximum(x, 0) + alpha * np.minimum(x, 0)
    np.testing.assert_allclose(as_np(layer(x)), expected, rtol=RTOL, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# 6. WeightGenerator
# ----------------------------------------------------------------------------------------------

def test_weight_generator_is_two_affine_maps_per_head():
    sizes = {"kernel": 12, "bias": 3, "affine": 8}
    generator = WeightGenerator(sizes, embedding_dim=8, bottleneck_dim=5)
    e = embedding(4, 8)
    outputs = generator(e)
    assert set(outputs) == set(sizes)
    w1, b1 = as_np(generator.bottleneck.kernel), as_np(generator.bottleneck.bias)
    assert w1.shape == (8, 5) and b1.shape == (5,)
    code = e.astype(np.float64) @ w1 + b1
    for name, size in sizes.items():
        head = generator.heads[name]
        w2, b2 = as_np(head.kernel), as_np(head.bias)
        assert w2.shape == (5, size)
        assert outputs[name].shape == (4, size)
        np.testing.assert_allclose(as_np(outputs[name]), code @ w2 + b2, rtol=RTOL, atol=ATOL)
    assert len(generator.trainable_weights) == 2 + 2 * len(sizes)


# ----------------------------------------------------------------------------------------------
# 7. LogSpectrogram
# ----------------------------------------------------------------------------------------------

def np_log_power(signal, window, n_fft, hop):
    """Centred STFT with reflect padding, ``log10(|X|^2 + 1e-8)``: (batch, stft_frames, bins)."""
    padded = np.pad(signal.astype(np.float64), [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
    count = 1 + (padded.shape[1] - n_fft) // hop
    frames = np.stack([padded[:, i * hop:i * hop + n_fft] for i in range(count)], axis=1)
    spectrum = np.fft.rfft(frames * window, axis=-1)
    return np.log10(np.abs(spectrum) ** 2 + 1e-8)


def np_interp_align_corners(x, size):
    """Linear interpolation along axis 1 to ``size`` frames, PyTorch ``align_corners=True``."""
    frames = x.shape[1]
    positions = np.arange(size) * (frames - 1) / (size - 1) if size > 1 else np.zeros(1)
    out = np.empty((x.shape[0], size, x.shape[2]))
    for b in range(x.shape[0]):
        for c in range(x.shape[2]):
            out[b, :, c] = np.interp(positions, np.arange(frames), x[b, :, c])
    return out


def test_log_spectrogram_window_is_periodic_hann():
    layer = LogSpectrogram(n_fft=16, hop=4, num_mels=3)
    layer.build()
    np.testing.assert_allclose(as_np(layer.window), np.hanning(17)[:-1], atol=1e-7)
    assert not layer.window.trainable and not layer.mean.trainable and not layer.std.trainable


@pytest.mark.parametrize("samples", [40, 37, 5], ids=["long", "odd_length", "shorter_than_pad"])
def test_log_spectrogram_log_power_matches_numpy(samples):
    n_fft, hop = 16, 4
    layer = LogSpectrogram(n_fft, hop, num_mels=3)
    layer.build()
    signal = normal(5, (2, samples))
    y = as_np(layer.log_power(signal))
    expected = np_log_power(signal, as_np(layer.window), n_fft, hop)
    assert y.shape == (2, 1 + samples // hop, n_fft // 2 + 1)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=1e-4)


@pytest.mark.parametrize("frames", [1, 5, 11, 23], ids=["one", "fewer", "same", "more"])
def test_log_spectrogram_call_matches_numpy(frames):
    n_fft, hop, mels, samples = 16, 4, 3, 40  # 11 STFT frames
    bins = n_fft // 2 + 1
    layer = LogSpectrogram(n_fft, hop, mels)
    layer.build()
    rng = np.random.default_rng(6)
    values = {
        "mean": rng.normal(-1.0, 1.0, bins), "std": rng.uniform(0.5, 2.0, bins),
        "affine_scale": rng.normal(1.0, 0.3, bins), "affine_bias": rng.normal(0.0, 0.3, bins),
        "mel_kernel": rng.normal(0.0, 0.3, (bins, mels)), "mel_bias": rng.normal(0.0, 0.3, mels),
    }
    for name, value in values.items():
        getattr(layer, name).assign(value.astype("float32"))
    values = {name: value.astype("float32").astype(np.float64) for name, value in values.items()}
    signal = normal(7, (2, samples))

    y = as_np(layer(signal, frames=frames))

    x = np_log_power(signal, as_np(layer.window), n_fft, hop)
    x = (x - values["mean"]) / values["std"] * values["affine_scale"] + values["affine_bias"]
    x = x @ values["mel_kernel"] + values["mel_bias"]
    expected = np_interp_align_corners(x, frames)
    assert y.shape == (2, frames, mels)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=1e-4)


@pytest.mark.parametrize("length, pad", [(5, 1), (5, 4), (9, 8), (16, 3)])
def test_reflect_indices_match_numpy_reflect(length, pad):
    x = np.arange(length)
    np.testing.assert_array_equal(as_np(reflect_indices(length, pad)), np.pad(x, pad, mode="reflect"))


@pytest.mark.parametrize("length, pad", [(5, 5), (5, 12), (3, 8), (2, 5), (1, 4)])
def test_reflect_indices_stay_valid_for_short_signals(length, pad):
    indices = reflect_indices(length, pad).numpy()
    assert indices.shape == (length + 2 * pad,)
    assert indices.min() >= 0 and indices.max() < length
    np.testing.assert_array_equal(indices[pad:pad + length], np.arange(length))
    # NumPy also keeps reflecting when the pad exceeds the signal.
    np.testing.assert_array_equal(indices, np.pad(np.arange(length), pad, mode="reflect"))


# ----------------------------------------------------------------------------------------------
# 8. Encoder
# ----------------------------------------------------------------------------------------------

def np_filterbank(signal, kernels, stride):
    """Strided zero-padded correlations, channel ``c * filters + l`` = channel c of filter l, ReLU.

    kernels: list of (k_l, width); padding (k_l - stride) // 2 on both sides.
    """
    filters, width = len(kernels), kernels[0].shape[1]
    batch, samples = signal.shape
    outputs = []
    for kernel in kernels:
        k = kernel.shape[0]
        pad = (k - stride) // 2
        padded = np.pad(signal.astype(np.float64), [(0, 0), (pad, pad)])
        count = (samples + 2 * pad - k) // stride + 1  # PyTorch Conv1d output length
        frames = np.stack([padded[:, t * stride:t * stride + k] for t in range(count)], axis=1)
        outputs.append(frames @ kernel)  # (batch, frames, width)
    out = np.empty((batch, outputs[0].shape[1], width * filters))
    for l, piece in enumerate(outputs):
        for c in range(width):
            out[:, :, c * filters + l] = piece[:, :, c]
    return np.maximum(out, 0.0)


ENCODER_SHAPES = [(20, 20, 6), (8, 4, 10)]  # kernel_size, stride, frames


@pytest.mark.parametrize("kernel_size, stride, frames", ENCODER_SHAPES)
def test_encoder_filterbank_matches_numpy(kernel_size, stride, frames):
    channels, filters = 16, 3
    encoder = Encoder(channels, kernel_size, stride, filters, num_mels=4)
    encoder.build()
    kernels = [as_np(k) for k in encoder.filter_kernels]
    assert [k.shape for k in kernels] == [(kernel_size * 2 ** l, channels // 4) for l in range(filters)]
    signal = normal(8, (2, frames * stride))
    y = as_np(encoder.filterbank(signal))
    expected = np_filterbank(signal, kernels, stride)
    assert expected.shape == (2, frames, channels // 4 * filters)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kernel_size, stride, frames", ENCODER_SHAPES)
def test_encoder_call_shape_and_bottleneck(kernel_size, stride, frames):
    channels, filters, mels = 16, 3, 4
    encoder = Encoder(channels, kernel_size, stride, filters, num_mels=mels)
    signal = normal(9, (2, frames * stride))
    y = as_np(encoder(signal))
    assert y.shape == (2, frames, channels)
    # [filterbank, spectrogram] -> relu(@ bottleneck_1) -> @ bottleneck_2.
    features = np_filterbank(signal, [as_np(k) for k in encoder.filter_kernels], stride)
    spectrogram = as_np(encoder.spectrogram(signal, frames=frames))
    hidden = np.maximum(np.concatenate([features, spectrogram], axis=-1) @ as_np(encoder.bottleneck_1), 0.0)
    np.testing.assert_allclose(y, hidden @ as_np(encoder.bottleneck_2), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# 9. Decoder
# ----------------------------------------------------------------------------------------------

def np_decoder(latents, bottleneck, kernels, stride):
    """relu(x @ bottleneck), split by widths, ConvTranspose1d per piece (cropped by p_l), summed."""
    batch, frames, _ = latents.shape
    x = np.maximum(latents.astype(np.float64) @ bottleneck, 0.0)
    length = frames * stride
    out = np.zeros((batch, length))
    start = 0
    for kernel in kernels:
        k, width = kernel.shape
        piece = x[:, :, start:start + width]
        start += width
        pad = (k - stride) // 2
        full = np.zeros((batch, (frames - 1) * stride + k))
        for t in range(frames):
            full[:, t * stride:t * stride + k] += piece[:, t, :] @ kernel.T
        assert full.shape[1] - 2 * pad == length  # PyTorch's ConvTranspose1d output length
        out += full[:, pad:pad + length]
    assert start == x.shape[-1]
    return out


@pytest.mark.parametrize("kernel_size, stride, frames", ENCODER_SHAPES)
def test_decoder_matches_numpy_transposed_convolutions(kernel_size, stride, frames):
    channels, filters = 16, 3
    decoder = Decoder(channels, kernel_size, stride, filters)
    latents = normal(10, (2, frames, channels))
    y = as_np(decoder(latents))
    widths = [channels // 2 ** (l + 1) for l in range(filters)]
    kernels = [as_np(k) for k in decoder.filter_kernels]
    assert [k.shape for k in kernels] == [(kernel_size * 2 ** l, w) for l, w in enumerate(widths)]
    assert tuple(decoder.bottleneck.shape) == (channels, sum(widths))
    expected = np_decoder(latents, as_np(decoder.bottleneck), kernels, stride)
    assert y.shape == (2, frames * stride)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------------------------
# 10. TCNLayer and MaskingTCN
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_tcn_layer_shapes(generated):
    layer = TCNLayer(8, 16, dilation_rate=2, residual_bias=True, generated=generated)
    x = normal(11, (4, 2, 9, 8))
    e = embedding() if generated else None
    residual, skip = layer(x, e)
    assert residual.shape == skip.shape == (4, 2, 9, 8)
    assert np.all(np.isfinite(as_np(residual))) and np.all(np.isfinite(as_np(skip)))
    no_residual, skip_again = layer(x, e, residual=False)
    assert no_residual is None
    np.testing.assert_allclose(as_np(skip_again), as_np(skip), rtol=RTOL, atol=ATOL)


def _masking_tcn(generated, num_layers=2, num_stacks=2):
    return MaskingTCN(channels=8, input_channels=16, bottleneck_channels=8, hidden_channels=16,
                      num_layers=num_layers, num_stacks=num_stacks, generated=generated)


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_masking_tcn_masks_are_a_softmax_over_instruments(generated):
    mask = _masking_tcn(generated)
    assert [layer.dilation_rate for layer in mask.tcn] == [1, 2, 1, 2]
    x = normal(12, (4, 2, 9, 16))
    masks = as_np(mask(x, embedding() if generated else None))
    assert masks.shape == (4, 2, 9, 8)
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, rtol=0, atol=1e-5)
    assert masks.std() > 1e-3  # not a constant 1/4


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function, unknown dims"])
@pytest.mark.parametrize("previous", [0, 8], ids=["first stage", "later stage"])
@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_masking_tcn_with_a_shared_input_equals_the_joined_input(generated, previous, graph):
    """``shared`` (the mixture latent every instrument starts with) gives the masks of the
    joined input ``concat([shared x 4, x])``; at inference the head folds the GroupNorm into
    the conv instead of forming that input, also for a large mean and unknown dimensions."""
    shared_channels = 16 - previous
    mask = _masking_tcn(generated)
    mask.build()
    mask.prelu_1.alpha.assign([0.1])
    if not generated:
        mask.norm_1.static["affine"].assign(normal(30, (4, 32)))
    e = embedding() if generated else None
    shared = normal(31, (2, 9, shared_channels), loc=3.0) * 2.0
    x = normal(32, (4, 2, 9, previous)) if previous else None
    joined = np.concatenate([np.repeat(shared[None], 4, axis=0)] + ([x] if previous else []), axis=-1)
    expected = as_np(mask(joined, e))

    def masks(shared, x):
        return mask(x, e, shared=shared)

    if graph:
        specs = [tf.TensorSpec((None, None, shared_channels)),
                 tf.TensorSpec((4, None, None, previous)) if previous else None]
        masks = tf.function(masks, input_signature=specs) if previous else \
            tf.function(lambda shared: mask(None, e, shared=shared), input_signature=specs[:1])
    actual = masks(shared, x) if previous or not graph else masks(shared)
    np.testing.assert_allclose(as_np(actual), expected, rtol=1e-5, atol=1e-6)
    # In training the joined input is formed (the gradient path is the plain one).
    trained = mask(x, e, shared=shared, training=True)
    np.testing.assert_allclose(as_np(trained), expected, rtol=1e-5, atol=1e-6)


def test_static_masking_tcn_works_without_an_embedding():
    masks = as_np(_masking_tcn(generated=False)(normal(13, (4, 1, 6, 16))))
    assert masks.shape == (4, 1, 6, 8)
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, rtol=0, atol=1e-5)


def test_generated_masking_tcn_requires_an_embedding():
    with pytest.raises(ValueError, match="embedding"):
        _masking_tcn(generated=True)(normal(13, (4, 1, 6, 16)))


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_masking_tcn_last_residual_conv_is_frozen(generated):
    mask = _masking_tcn(generated)
    mask.build()
    last = mask.tcn[-1].res_out
    assert not last.trainable
    assert last.weights and not last.trainable_weights
    # What an optimiser sees is the parent's list: the unused conv (or its generator) is not in it.
    trainable = {id(v) for v in mask.trainable_weights}
    assert not any(id(v) in trainable for v in last.weights), "the unused res_out would be trained"
    # Everything else, including the last layer's skip conv and earlier residual convs, trains.
    others = [v for v in mask.weights if all(v is not w for w in last.weights)]
    assert all(id(v) in trainable for v in others)
    assert len(mask.trainable_weights) + len(last.weights) == len(mask.weights)


# ----------------------------------------------------------------------------------------------
# 11. Stage
# ----------------------------------------------------------------------------------------------

STAGE_COMMON = dict(bottleneck_channels=8, hidden_channels=16, num_layers=2, num_stacks=1, num_mels=8)


@pytest.mark.parametrize("generated", [True, False], ids=["generated", "static"])
def test_stage_shapes_first_and_later_stage(generated):
    batch, frames = 2, 16
    first = Stage(8, 4, 4, generated=generated, **STAGE_COMMON)
    estimates, separated, latent = first(normal(14, (batch, frames * 4)))
    assert estimates.shape == (batch, 4, frames * 4)
    assert separated.shape == (4, batch, frames, 8)
    assert latent.shape == (batch, frames, 8)
    # Masks sum to one over the instruments, so the separated latents add up to the mixture's.
    np.testing.assert_allclose(as_np(separated).sum(axis=0), as_np(latent), rtol=1e-4, atol=1e-5)

    second = Stage(16, 8, 8, sample_rate=16000, previous_channels=8, generated=generated, **STAGE_COMMON)
    mixture = normal(15, (batch, frames * 8))
    estimates, separated_2, latent_2 = second(mixture, separated)
    assert estimates.shape == (batch, 4, frames * 8)
    assert separated_2.shape == (4, batch, frames, 16)
    assert latent_2.shape == (batch, frames, 16)
    assert np.all(np.isfinite(as_np(estimates)))
    with pytest.raises(ValueError, match="previous"):
        second(mixture)


def test_stage_without_decoding_returns_no_estimates():
    stage = Stage(8, 4, 4, **STAGE_COMMON)
    mixture = normal(16, (2, 40))
    estimates, separated, latent = stage(mixture, decode=False)
    assert estimates is None
    assert separated.shape == (4, 2, 10, 8) and latent.shape == (2, 10, 8)
    decoded, separated_again, _ = stage(mixture)
    np.testing.assert_allclose(as_np(separated_again), as_np(separated), rtol=RTOL, atol=ATOL)
    assert decoded.shape == (2, 4, 40)
