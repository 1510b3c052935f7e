"""Importer for checkpoints of the authors' PyTorch implementation.

Reads ``{"args": argparse.Namespace, "state_dict": ...}`` (the layout of their released
``best_model.pt``) safely, with ``torch.load(weights_only=True)`` and only
``argparse.Namespace`` allow-listed, builds the matching ``MetaTasNet`` from ``args`` and
copies every state-dict entry into it, converting PyTorch layouts (``(out, in, k)`` convs,
``(out, in)`` linears) to this project's. Every entry must be used and every weight set:
a missing, unexpected or mis-shaped key is an error that names it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np

from tf_metatasnet.checkpoints.files import check_model_file
from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.layers.instrument_depthwise_conv import InstrumentDepthwiseConv
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.models.metatasnet import MetaTasNet
from tf_metatasnet.models.size import DEFAULT_LIMIT_GIB, check_size


class CheckpointError(ValueError):
    """A checkpoint that cannot be imported; the message names the file and the problem."""


class _Layout:
    """How a PyTorch array becomes a Keras variable's value: ``convert(*arrays)``, and the
    PyTorch shape each array must have for a variable of a given shape (``None``: any shape
    of as many values)."""

    def __init__(self, convert, source_shape):
        self.convert, self.source_shape = convert, source_shape


def _unit_axis(shape, axis):
    return tuple(shape[:axis]) + (1,) + tuple(shape[axis:])


#: The same layout in both.
_SAME = _Layout(lambda w: w, lambda shape: [tuple(shape)])
#: A PyTorch ``Linear`` weight ``(out, in)`` to a Keras kernel ``(in, out)``.
_TRANSPOSE = _Layout(lambda w: w.T, lambda shape: [tuple(shape)[::-1]])
#: Any shape of as many values, flattened (the spectrogram's vectors).
_FLAT = _Layout(lambda w: w.reshape(-1), lambda shape: [None])


def _squeeze_unit(axis):
    """A weight with a unit axis at ``axis`` (a kernel-1 conv): the axis dropped."""
    return _Layout(lambda w: np.take(w, 0, axis=axis), lambda shape: [_unit_axis(shape, axis)])


def _first_then_transpose(axis):
    """A conv weight ``(out, in, k)`` with a unit axis at ``axis``: dropped, then transposed."""
    return _Layout(lambda w: np.take(w, 0, axis=axis).T,
                   lambda shape: [_unit_axis(tuple(shape)[::-1], axis)])


def _linear(prefix, dense):
    """A PyTorch ``Linear`` (weight ``(out, in)``) onto a Keras ``Dense`` (kernel ``(in, out)``)."""
    return {f"{prefix}.weight": (dense.kernel, _TRANSPOSE), f"{prefix}.bias": (dense.bias, _SAME)}


def _instrument_layer(prefix, layer: InstrumentLayer):
    """Entries of a generated or static per-instrument conv / norm."""
    if layer.generated:
        entries = _linear(f"{prefix}.bottleneck", layer.generator.bottleneck)
        for name, head in layer.generator.heads.items():
            entries.update(_linear(f"{prefix}.{name}", head))
        return entries
    instruments = layer.num_instruments
    entries = {}
    if "affine" in layer.static:
        # nn.GroupNorm(4*groups, 4*C): weight and bias (4*C,) -> affine (4, 2*C).
        channels = layer.static["affine"].shape[-1] // 2
        entries[(f"{prefix}.group_norm.weight", f"{prefix}.group_norm.bias")] = (
            layer.static["affine"],
            _Layout(lambda w, b: np.concatenate([w.reshape(instruments, channels),
                                                 b.reshape(instruments, channels)], -1),
                    lambda shape: [(instruments * channels,), (instruments * channels,)]))
        return entries
    kernel = layer.static["kernel"]
    instruments, out, last = (int(d) for d in kernel.shape)
    # grouped nn.Conv1d: a 1x1 conv's weight (4*out, in, 1), a depthwise conv's (4*C, 1, k).
    depthwise = isinstance(layer, InstrumentDepthwiseConv)
    source = (instruments * out, 1, last) if depthwise else (instruments * out, last, 1)
    entries[f"{prefix}.conv.weight"] = (kernel, _Layout(lambda w, shape=tuple(kernel.shape): w.reshape(shape),
                                                        lambda shape, source=source: [source]))
    if "bias" in layer.static:
        bias = layer.static["bias"]
        entries[f"{prefix}.conv.bias"] = (bias, _Layout(lambda w, shape=tuple(bias.shape): w.reshape(shape),
                                                        lambda shape: [(int(np.prod(shape)),)]))
    return entries


def weight_map(model: MetaTasNet) -> dict:
    """``{state-dict key (or tuple of keys): (Keras variable, layout)}`` for ``model``.

    The layout (``_Layout``) maps the PyTorch array(s) to the variable's layout and says
    which PyTorch shapes they must have.
    """
    entries = {}
    for i, stage in enumerate(model.stages):
        p = f"stages.{i}"
        encoder, spectrogram, decoder, mask = stage.encoder, stage.encoder.spectrogram, stage.decoder, stage.mask
        for l, kernel in enumerate(encoder.filter_kernels):
            entries[f"{p}.encoder.filters.{l}.weight"] = (kernel, _first_then_transpose(1))  # (N/4, 1, k) -> (k, N/4)
        for name in ("window", "mean", "std", "affine_bias", "affine_scale"):
            entries[f"{p}.encoder.spectrogram.{name}"] = (getattr(spectrogram, name), _FLAT)
        entries[f"{p}.encoder.spectrogram.mel_transform.weight"] = (
            spectrogram.mel_kernel, _first_then_transpose(2))  # (mels, bins, 1) -> (bins, mels)
        entries[f"{p}.encoder.spectrogram.mel_transform.bias"] = (spectrogram.mel_bias, _SAME)
        entries[f"{p}.encoder.bottleneck.0.weight"] = (encoder.bottleneck_1, _first_then_transpose(2))
        entries[f"{p}.encoder.bottleneck.2.weight"] = (encoder.bottleneck_2, _first_then_transpose(2))
        # ConvTranspose1d weights are (in, out, k).
        entries[f"{p}.decoder.bottleneck.0.weight"] = (decoder.bottleneck, _squeeze_unit(2))
        for l, kernel in enumerate(decoder.filter_kernels):
            entries[f"{p}.decoder.filters.{l}.weight"] = (kernel, _first_then_transpose(1))  # (w_l, 1, k) -> (k, w_l)
        if stage.instrument_embedding is not None:
            entries[f"{p}.instrument_embedding.weight"] = (stage.instrument_embedding, _SAME)
        for j in range(1, 5):
            entries[f"{p}.mask.prelu_{j}.weight"] = (getattr(mask, f"prelu_{j}").alpha, _SAME)
        for name in ("norm_1", "in_conv", "norm_2", "norm_3", "mask_output", "norm_4"):
            entries.update(_instrument_layer(f"{p}.mask.{name}", getattr(mask, name)))
        for j, layer in enumerate(mask.tcn):
            q = f"{p}.mask.tcn.{j}"
            entries[f"{q}.prelu_1.weight"] = (layer.prelu_1.alpha, _SAME)
            entries[f"{q}.prelu_2.weight"] = (layer.prelu_2.alpha, _SAME)
            for name in ("norm_1", "conv1d", "norm_2", "dconv1d", "res_out", "skip_out"):
                entries.update(_instrument_layer(f"{q}.{name}", getattr(layer, name)))
    return entries


def config_from_args(args, source: str = "checkpoint") -> MetaTasNetConfig:
    """The ``MetaTasNetConfig`` of the authors' ``argparse.Namespace`` (training-only fields ignored)."""
    if not isinstance(args, (argparse.Namespace, dict)):
        raise CheckpointError(f"{source}: args is a {type(args).__name__}, not the authors' argparse.Namespace")
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    fields = {f.name for f in dataclasses.fields(MetaTasNetConfig)}
    try:
        return MetaTasNetConfig.from_dict({k: v for k, v in values.items() if k in fields})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: its args do not describe a Meta-TasNet model: {error}") from None


def _array(value, name: str, source: str) -> np.ndarray:
    """A state-dict entry as a finite float32 array, or a one-line error naming its key."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise CheckpointError(f"{source}: key {name} is not an array of numbers "
                              f"({type(value).__name__})") from None
    if not np.isfinite(array).all():
        raise CheckpointError(f"{source}: key {name} has NaN or infinite values")
    return array


def load_state_dict(model: MetaTasNet, state_dict, source: str = "checkpoint") -> MetaTasNet:
    """Copies an authors'-format ``state_dict`` (name -> array) into ``model``, strictly.

    Raises:
        CheckpointError: naming the key of a missing, unexpected, mis-shaped, non-numeric
            or non-finite entry (with the expected and found shapes for a mis-shaped one).
    """
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{source}: state_dict is a {type(state_dict).__name__}, not a mapping")
    state = {str(name): _array(value, name, source) for name, value in state_dict.items()}
    if state and all(name.startswith("module.") for name in state):  # saved from nn.DataParallel
        state = {name[len("module."):]: value for name, value in state.items()}
    used = set()
    assignments = []
    for keys, (variable, layout) in weight_map(model).items():
        names = keys if isinstance(keys, tuple) else (keys,)
        for name in names:
            if name not in state:
                raise CheckpointError(f"{source}: missing key {name}")
        arrays = [state[name] for name in names]
        size = int(np.prod(variable.shape))
        for name, array, wanted in zip(names, arrays, layout.source_shape(tuple(variable.shape))):
            if (array.shape != wanted) if wanted is not None else (array.size != size):
                wanted = wanted if wanted is not None else f"{size} values"
                raise CheckpointError(f"{source}: key {name} has shape {array.shape}, expected {wanted} "
                                      f"for this configuration")
        used.update(names)
        assignments.append((variable, layout.convert(*arrays)))
    unexpected = sorted(set(state) - used)
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]}"
                              + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for variable, value in assignments:
        variable.assign(value)
    return model


def read_checkpoint(path: "str | os.PathLike") -> tuple:
    """``(args, state_dict)`` of an authors' checkpoint, loaded without arbitrary unpickling."""
    path = os.fspath(path)
    try:  # optional: PyTorch (the ``torch`` extra) reads only the authors' checkpoints
        import torch
    except ImportError:
        raise ImportError("importing the authors' checkpoints needs PyTorch (CPU is enough): "
                          "pip install 'tf-metatasnet[torch]'") from None
    check_model_file(path, "checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a loadable PyTorch checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: missing key state_dict (not an authors' Meta-TasNet checkpoint)")
    if "args" not in checkpoint:
        raise CheckpointError(f"{path}: missing key args (the model configuration)")
    state = checkpoint["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: state_dict is a {type(state).__name__}, not a mapping")
    state = {name: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
             for name, value in state.items()}
    return checkpoint["args"], state


def import_official(path: "str | os.PathLike", max_gib: "float | None" = DEFAULT_LIMIT_GIB) -> MetaTasNet:
    """Builds the ``MetaTasNet`` stored in an authors' checkpoint, weights included.

    The configuration is checked (``MetaTasNetConfig`` bounds, ``check_size`` against
    ``max_gib``) before the model is built.

    Args:
        path: a ``.pt`` file with ``{"args": argparse.Namespace, "state_dict": ...}``.
        max_gib: the largest model, in GiB of estimated memory (``None``: no limit).

    Raises:
        ImportError: PyTorch is not installed.
        CheckpointError: the file is not such a checkpoint, or a key is missing,
            unexpected or of the wrong shape (the message names it).
        ModelTooLargeError: the configuration asks for more than ``max_gib``.
    """
    path = os.fspath(path)
    args, state = read_checkpoint(path)
    config = config_from_args(args, path)
    check_size(config, path, max_gib)
    return load_state_dict(MetaTasNet(config), state, path)
