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

from tf_metatasnet.config import MetaTasNetConfig
from tf_metatasnet.layers.instrument_layer import InstrumentLayer
from tf_metatasnet.models.metatasnet import MetaTasNet


class CheckpointError(ValueError):
    """A checkpoint that cannot be imported; the message names the file and the problem."""


def _squeeze_unit(axis):
    return lambda w: np.take(w, 0, axis=axis)


def _transpose(w):
    return w.T


def _first_then_transpose(axis):
    return lambda w: np.take(w, 0, axis=axis).T


def _flat(w):
    return w.reshape(-1)


def _linear(prefix, dense):
    """A PyTorch ``Linear`` (weight ``(out, in)``) onto a Keras ``Dense`` (kernel ``(in, out)``)."""
    return {f"{prefix}.weight": (dense.kernel, _transpose), f"{prefix}.bias": (dense.bias, None)}


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
            lambda w, b: np.concatenate([w.reshape(instruments, channels), b.reshape(instruments, channels)], -1))
        return entries
    kernel = layer.static["kernel"]
    # grouped nn.Conv1d: weight (4*out, in/groups, k) -> (4, *shape).
    entries[f"{prefix}.conv.weight"] = (kernel, lambda w, shape=tuple(kernel.shape): w.reshape(shape))
    if "bias" in layer.static:
        bias = layer.static["bias"]
        entries[f"{prefix}.conv.bias"] = (bias, lambda w, shape=tuple(bias.shape): w.reshape(shape))
    return entries


def weight_map(model: MetaTasNet) -> dict:
    """``{state-dict key (or tuple of keys): (Keras variable, converter)}`` for ``model``.

    The converter maps the PyTorch array(s) to the variable's layout (``None``: as is).
    """
    entries = {}
    for i, stage in enumerate(model.stages):
        p = f"stages.{i}"
        encoder, spectrogram, decoder, mask = stage.encoder, stage.encoder.spectrogram, stage.decoder, stage.mask
        for l, kernel in enumerate(encoder.filter_kernels):
            entries[f"{p}.encoder.filters.{l}.weight"] = (kernel, _first_then_transpose(1))  # (N/4, 1, k) -> (k, N/4)
        for name in ("window", "mean", "std", "affine_bias", "affine_scale"):
            entries[f"{p}.encoder.spectrogram.{name}"] = (getattr(spectrogram, name), _flat)
        entries[f"{p}.encoder.spectrogram.mel_transform.weight"] = (
            spectrogram.mel_kernel, _first_then_transpose(2))  # (mels, bins, 1) -> (bins, mels)
        entries[f"{p}.encoder.spectrogram.mel_transform.bias"] = (spectrogram.mel_bias, None)
        entries[f"{p}.encoder.bottleneck.0.weight"] = (encoder.bottleneck_1, _first_then_transpose(2))
        entries[f"{p}.encoder.bottleneck.2.weight"] = (encoder.bottleneck_2, _first_then_transpose(2))
        # ConvTranspose1d weights are (in, out, k).
        entries[f"{p}.decoder.bottleneck.0.weight"] = (decoder.bottleneck, _squeeze_unit(2))
        for l, kernel in enumerate(decoder.filter_kernels):
            entries[f"{p}.decoder.filters.{l}.weight"] = (kernel, _first_then_transpose(1))  # (w_l, 1, k) -> (k, w_l)
        if stage.instrument_embedding is not None:
            entries[f"{p}.instrument_embedding.weight"] = (stage.instrument_embedding, None)
        for j in range(1, 5):
            entries[f"{p}.mask.prelu_{j}.weight"] = (getattr(mask, f"prelu_{j}").alpha, None)
        for name in ("norm_1", "in_conv", "norm_2", "norm_3", "mask_output", "norm_4"):
            entries.update(_instrument_layer(f"{p}.mask.{name}", getattr(mask, name)))
        for j, layer in enumerate(mask.tcn):
            q = f"{p}.mask.tcn.{j}"
            entries[f"{q}.prelu_1.weight"] = (layer.prelu_1.alpha, None)
            entries[f"{q}.prelu_2.weight"] = (layer.prelu_2.alpha, None)
            for name in ("norm_1", "conv1d", "norm_2", "dconv1d", "res_out", "skip_out"):
                entries.update(_instrument_layer(f"{q}.{name}", getattr(layer, name)))
    return entries


def config_from_args(args, source: str = "checkpoint") -> MetaTasNetConfig:
    """The ``MetaTasNetConfig`` of the authors' ``argparse.Namespace`` (training-only fields ignored)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    fields = {f.name for f in dataclasses.fields(MetaTasNetConfig)}
    try:
        return MetaTasNetConfig.from_dict({k: v for k, v in values.items() if k in fields})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: its args do not describe a Meta-TasNet model: {error}") from None


def load_state_dict(model: MetaTasNet, state_dict, source: str = "checkpoint") -> MetaTasNet:
    """Copies an authors'-format ``state_dict`` (name -> array) into ``model``, strictly."""
    state = {name: np.asarray(value, dtype=np.float32) for name, value in state_dict.items()}
    if state and all(name.startswith("module.") for name in state):  # saved from nn.DataParallel
        state = {name[len("module."):]: value for name, value in state.items()}
    used = set()
    assignments = []
    for keys, (variable, convert) in weight_map(model).items():
        names = keys if isinstance(keys, tuple) else (keys,)
        for name in names:
            if name not in state:
                raise CheckpointError(f"{source}: missing key {name}")
        arrays = [state[name] for name in names]
        value = convert(*arrays) if convert else arrays[0]
        if tuple(value.shape) != tuple(variable.shape):
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise CheckpointError(f"{source}: key {names[0]} has shape {shapes}, which does not fit "
                                  f"this configuration (expected {tuple(variable.shape)} after conversion)")
        used.update(names)
        assignments.append((variable, value))
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
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
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
    state = {name: value.detach().cpu().numpy() for name, value in checkpoint["state_dict"].items()}
    return checkpoint["args"], state


def import_official(path: "str | os.PathLike") -> MetaTasNet:
    """Builds the ``MetaTasNet`` stored in an authors' checkpoint, weights included.

    Args:
        path: a ``.pt`` file with ``{"args": argparse.Namespace, "state_dict": ...}``.

    Raises:
        ImportError: PyTorch is not installed.
        CheckpointError: the file is not such a checkpoint, or a key is missing,
            unexpected or of the wrong shape (the message names it).
    """
    path = os.fspath(path)
    args, state = read_checkpoint(path)
    model = MetaTasNet(config_from_args(args, path))
    return load_state_dict(model, state, path)
