"""Independent PyTorch reference of the authors' Meta-TasNet, written from its description.

This module re-implements the original PyTorch model (Samuel, Ganeshan, Naradowsky,
ICASSP 2020; github.com/pfnet-research/meta-tasnet) from a written specification of it,
so that tests can produce checkpoints of configurations that the shipped fixture
(``official_small.pt``) does not cover: static per-instrument weights
(``independent_params=True``), ``residual_bias=True``, other sizes, kernel widths and
stage counts.  The module names, parameter shapes, state-dict order and the
``{"args": Namespace, "state_dict": ...}`` checkpoint layout are those of the authors'
files, so a checkpoint written by :func:`save_checkpoint` is indistinguishable (in
format) from a released one.

Public API
----------
- :func:`official_args` -- the configuration namespace (paper defaults).
- :class:`OfficialMetaTasNet` -- the model: ``inference(mixes)`` and
  ``forward(mixes, seps, masks) -> (loss, stats)``.
- :func:`randomize_` -- deterministic, non-trivial random weights.
- :func:`save_checkpoint` -- the authors' checkpoint format.
- :func:`make_case` -- a complete parity case (weights, inputs, outputs, loss) as NumPy.

Layout conventions follow the original: waveforms ``(batch, 1, time)``, per-instrument
tensors ``(batch, 4, channels, time)`` and the four instruments of a masking network are
processed together as ``(batch, 4 * channels, time)`` with grouped convolutions.
"""

from __future__ import annotations

import argparse
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: Number of instruments (drums, bass, other, vocals), everywhere in this order.
NUM_INSTRUMENTS = 4
#: Groups of every GroupNorm of the masking network (per instrument).
NORM_GROUPS = 8
#: Epsilon of every GroupNorm of the masking network.
NORM_EPS = 1e-8
#: Base sampling rate of the spectrogram parameters (n_fft = 1024 * rate // 8000).
BASE_RATE = 8000

_DEFAULTS = dict(
    N=440,
    L=20,
    W=20,
    B=160,
    H=160,
    layers=6,
    stack=3,
    kernel=3,
    filters=3,
    num_mels=256,
    E_1=8,
    E_2=5,
    stages_num=3,
    sampling_rate=8000,
    independent_params=False,
    residual_bias=False,
    dropout=0.0,
    similarity_loss_weight=2.0,
    dissimilarity_loss_weight=3.0,
    reconstruction_loss_weight=0.05,
)


def official_args(**overrides) -> argparse.Namespace:
    """Return the authors' configuration namespace, paper defaults unless overridden.

    Args:
        **overrides: any of the fields of ``official_small.json`` (``N``, ``L``, ``W``,
            ``B``, ``H``, ``layers``, ``stack``, ``kernel``, ``filters``, ``num_mels``,
            ``E_1``, ``E_2``, ``stages_num``, ``sampling_rate``, ``independent_params``,
            ``residual_bias``, ``dropout`` and the three loss weights).

    Returns:
        An ``argparse.Namespace`` with every field set.
    """
    unknown = set(overrides) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown Meta-TasNet arguments: {sorted(unknown)}")
    values = dict(_DEFAULTS)
    values.update(overrides)
    return argparse.Namespace(**values)


def official_args_for(config) -> argparse.Namespace:
    """The authors' namespace of a ``MetaTasNetConfig`` (its fields that their code has;
    ``recompute_tcn``, a training-memory setting of ours, is left out)."""
    return official_args(**{k: v for k, v in config.to_dict().items() if k in _DEFAULTS})


# --------------------------------------------------------------------------------------
# Generated ("dynamically weighted") and static per-instrument layers
# --------------------------------------------------------------------------------------


class GeneratedConv1d(nn.Module):
    """A Conv1d whose per-instrument weights come from the instrument embedding.

    ``bottleneck`` maps the embedding ``(4, E_1)`` to ``(4, E_2)``; ``kernel`` maps that to
    each instrument's flattened kernel ``(out, in / groups, k)`` and the optional ``bias``
    to its bias ``(out,)``.  The four instruments run as one grouped convolution over
    ``(batch, 4 * in, time)`` with ``4 * groups`` groups.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, E_1: int,
                 E_2: int, groups: int = 1, dilation: int = 1, padding: int = 0,
                 bias: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.groups = groups
        self.dilation = dilation
        self.padding = padding
        self.bottleneck = nn.Linear(E_1, E_2)
        self.kernel = nn.Linear(E_2, out_channels * (in_channels // groups) * kernel_size)
        self.bias = nn.Linear(E_2, out_channels) if bias else None

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Apply the generated convolution.

        Args:
            x: ``(batch, 4 * in_channels, time)``.
            embedding: ``(4, E_1)`` instrument embeddings.

        Returns:
            ``(batch, 4 * out_channels, time_out)``.
        """
        code = self.bottleneck(embedding)  # (4, E_2)
        # (4, out * in/groups * k) -> (4 * out, in / groups, k)
        weight = self.kernel(code).view(
            NUM_INSTRUMENTS * self.out_channels, self.in_channels // self.groups,
            self.kernel_size)
        bias = None
        if self.bias is not None:
            bias = self.bias(code).view(NUM_INSTRUMENTS * self.out_channels)  # (4 * out,)
        return F.conv1d(x, weight, bias, padding=self.padding, dilation=self.dilation,
                        groups=NUM_INSTRUMENTS * self.groups)


class StaticConv1d(nn.Module):
    """Per-instrument static convolution (``independent_params=True``).

    Holds one grouped ``nn.Conv1d`` named ``conv`` over the four instruments
    (in ``4 * in``, out ``4 * out``, ``4 * groups`` groups); the embedding is ignored.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 groups: int = 1, dilation: int = 1, padding: int = 0, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(NUM_INSTRUMENTS * in_channels, NUM_INSTRUMENTS * out_channels,
                              kernel_size, padding=padding, dilation=dilation,
                              groups=NUM_INSTRUMENTS * groups, bias=bias)

    def forward(self, x: torch.Tensor, embedding: Optional[torch.Tensor]) -> torch.Tensor:
        """``(batch, 4 * in, time) -> (batch, 4 * out, time_out)``."""
        return self.conv(x)


class GeneratedGroupNorm(nn.Module):
    """GroupNorm(8 groups, eps 1e-8) per instrument with a generated affine transform.

    ``affine`` maps the ``(4, E_2)`` code to ``(4, 2 * C)``: the first ``C`` values are the
    per-channel scale, the last ``C`` the per-channel bias.
    """

    def __init__(self, channels: int, E_1: int, E_2: int):
        super().__init__()
        self.channels = channels
        self.bottleneck = nn.Linear(E_1, E_2)
        self.affine = nn.Linear(E_2, 2 * channels)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """``(batch, 4 * C, time) -> (batch, 4 * C, time)``."""
        params = self.affine(self.bottleneck(embedding))  # (4, 2 * C)
        scale = params[:, :self.channels].reshape(1, -1, 1)  # (1, 4 * C, 1)
        bias = params[:, self.channels:].reshape(1, -1, 1)  # (1, 4 * C, 1)
        x = F.group_norm(x, NUM_INSTRUMENTS * NORM_GROUPS, eps=NORM_EPS)
        return x * scale + bias


class StaticGroupNorm(nn.Module):
    """Per-instrument static GroupNorm: ``group_norm = nn.GroupNorm(4 * 8, 4 * C)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(NUM_INSTRUMENTS * NORM_GROUPS,
                                       NUM_INSTRUMENTS * channels, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, embedding: Optional[torch.Tensor]) -> torch.Tensor:
        """``(batch, 4 * C, time) -> (batch, 4 * C, time)``."""
        return self.group_norm(x)


def _conv(args: argparse.Namespace, in_channels: int, out_channels: int,
          kernel_size: int = 1, groups: int = 1, dilation: int = 1, padding: int = 0,
          bias: bool = False) -> nn.Module:
    """Build a generated or static per-instrument convolution according to ``args``."""
    if args.independent_params:
        return StaticConv1d(in_channels, out_channels, kernel_size, groups=groups,
                            dilation=dilation, padding=padding, bias=bias)
    return GeneratedConv1d(in_channels, out_channels, kernel_size, args.E_1, args.E_2,
                           groups=groups, dilation=dilation, padding=padding, bias=bias)


def _norm(args: argparse.Namespace, channels: int) -> nn.Module:
    """Build a generated or static per-instrument GroupNorm according to ``args``."""
    if args.independent_params:
        return StaticGroupNorm(channels)
    return GeneratedGroupNorm(channels, args.E_1, args.E_2)


# --------------------------------------------------------------------------------------
# Encoder / decoder
# --------------------------------------------------------------------------------------


class Spectrogram(nn.Module):
    """Normalised log-power STFT followed by a learned 1x1 "mel" projection.

    ``window`` (Hann), ``mean`` and ``std`` are frozen parameters (``requires_grad=False``)
    so they are saved in the state dict like in the authors' checkpoints.
    """

    def __init__(self, n_fft: int, hop: int, num_mels: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop
        bins = n_fft // 2 + 1
        self.window = nn.Parameter(torch.hann_window(n_fft), requires_grad=False)
        self.mean = nn.Parameter(torch.zeros(1, bins, 1), requires_grad=False)
        self.std = nn.Parameter(torch.ones(1, bins, 1), requires_grad=False)
        self.affine_bias = nn.Parameter(torch.zeros(1, bins, 1))
        self.affine_scale = nn.Parameter(torch.ones(1, bins, 1))
        self.mel_transform = nn.Conv1d(bins, num_mels, 1)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """Compute the spectrogram features.

        Args:
            x: ``(batch, 1, time)`` waveform.
            frames: the encoder's frame count ``T'`` to interpolate to.

        Returns:
            ``(batch, num_mels, frames)``.
        """
        spec = torch.stft(x[:, 0], self.n_fft, hop_length=self.hop, window=self.window,
                          center=True, pad_mode="reflect", onesided=True,
                          return_complex=True)  # (batch, bins, stft_frames)
        power = spec.real ** 2 + spec.imag ** 2
        power = torch.log10(power + 1e-8)
        power = (power - self.mean) / self.std
        power = power * self.affine_scale + self.affine_bias
        mels = self.mel_transform(power)  # (batch, num_mels, stft_frames)
        return F.interpolate(mels, size=frames, mode="linear", align_corners=True)


class Encoder(nn.Module):
    """Multi-resolution conv encoder plus spectrogram branch -> mixture latent ``(B, N, T')``."""

    def __init__(self, N: int, L: int, W: int, filters: int, num_mels: int, rate: int):
        super().__init__()
        self.W = W
        self.num_filters = filters
        K = rate // BASE_RATE
        self.spectrogram = Spectrogram(1024 * K, 256 * K, num_mels)
        self.filters = nn.ModuleList([
            nn.Conv1d(1, N // 4, L * 2 ** l, stride=W, padding=(L * 2 ** l - W) // 2,
                      bias=False)
            for l in range(filters)
        ])
        self.bottleneck = nn.Sequential(
            nn.Conv1d(N // 4 * filters + num_mels, N, 1, bias=False),
            nn.ReLU(),
            nn.Conv1d(N, N, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, time) -> (batch, N, time / W)``."""
        convs = torch.stack([conv(x) for conv in self.filters], dim=2)  # (B, N/4, filters, T')
        batch, channels, _, frames = convs.shape
        # interleaved: channel c * filters + l is channel c of conv l
        convs = F.relu(convs.reshape(batch, channels * self.num_filters, frames))  # (B, N/4*filters, T')
        spec = self.spectrogram(x, frames)  # (B, num_mels, T')
        return self.bottleneck(torch.cat([convs, spec], dim=1))  # (B, N, T')


class Decoder(nn.Module):
    """Shared decoder: 1x1 transposed conv + ReLU, split, transposed convs, summed."""

    def __init__(self, N: int, L: int, W: int, filters: int):
        super().__init__()
        self.widths = [N // 2 ** (l + 1) for l in range(filters)]
        self.bottleneck = nn.Sequential(
            nn.ConvTranspose1d(N, sum(self.widths), 1, bias=False),
            nn.ReLU(),
        )
        self.filters = nn.ModuleList([
            nn.ConvTranspose1d(width, 1, L * 2 ** l, stride=W,
                               padding=(L * 2 ** l - W) // 2, bias=False)
            for l, width in enumerate(self.widths)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, N, T') -> (batch, 1, T' * W)``."""
        x = self.bottleneck(x)  # (batch, sum(widths), T')
        pieces = torch.split(x, self.widths, dim=1)
        return sum(conv(piece) for conv, piece in zip(self.filters, pieces))


# --------------------------------------------------------------------------------------
# Masking network
# --------------------------------------------------------------------------------------


class TCNLayer(nn.Module):
    """One TCN layer: conv1d -> prelu_1 -> norm_1 -> dconv1d -> prelu_2 -> norm_2 -> res/skip."""

    def __init__(self, args: argparse.Namespace, dilation: int):
        super().__init__()
        B, H = args.B, args.H
        # padding = dilation for the paper's kernel 3 (length kept); the general
        # length-preserving form is used for other odd kernels
        pad = dilation * (args.kernel - 1) // 2
        self.norm_1 = _norm(args, H)
        self.prelu_1 = nn.PReLU()
        self.conv1d = _conv(args, B, H, 1)
        self.norm_2 = _norm(args, H)
        self.prelu_2 = nn.PReLU()
        self.dconv1d = _conv(args, H, H, args.kernel, groups=H, dilation=dilation,
                             padding=pad)
        self.res_out = _conv(args, H, B, 1, bias=args.residual_bias)
        self.skip_out = _conv(args, H, B, 1, bias=args.residual_bias)

    def forward(self, x: torch.Tensor, embedding: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(batch, 4 * B, T') -> (residual, skip)``, both ``(batch, 4 * B, T')``."""
        y = self.norm_1(self.prelu_1(self.conv1d(x, embedding)), embedding)
        y = self.norm_2(self.prelu_2(self.dconv1d(y, embedding)), embedding)
        return self.res_out(y, embedding), self.skip_out(y, embedding)


class MaskingNetwork(nn.Module):
    """Conv-TasNet style TCN producing softmax masks over the four instruments."""

    def __init__(self, args: argparse.Namespace, N: int, in_channels: int):
        super().__init__()
        self.N = N
        self.norm_1 = _norm(args, in_channels)
        self.prelu_1 = nn.PReLU()
        self.in_conv = _conv(args, in_channels, args.B, 1)
        self.norm_2 = _norm(args, args.B)
        self.prelu_2 = nn.PReLU()
        self.tcn = nn.ModuleList([
            TCNLayer(args, 2 ** (j % args.layers)) for j in range(args.stack * args.layers)
        ])
        self.norm_3 = _norm(args, args.B)
        self.prelu_3 = nn.PReLU()
        self.mask_output = _conv(args, args.B, N, 1)
        self.norm_4 = _norm(args, N)
        self.prelu_4 = nn.PReLU()

    def forward(self, x: torch.Tensor, embedding: Optional[torch.Tensor]) -> torch.Tensor:
        """Compute the masks.

        Args:
            x: ``(batch, 4, in_channels, T')``.
            embedding: ``(4, E_1)`` or ``None`` for static weights.

        Returns:
            ``(batch, 4, N, T')`` masks that sum to one over the instruments.
        """
        batch, _, channels, frames = x.shape
        x = x.reshape(batch, NUM_INSTRUMENTS * channels, frames)  # (batch, 4 * in, T')
        x = self.norm_1(self.prelu_1(x), embedding)
        x = self.in_conv(x, embedding)
        x = self.norm_2(self.prelu_2(x), embedding)
        skip_sum = 0.0
        for layer in self.tcn:
            residual, skip = layer(x, embedding)
            x = x + residual
            skip_sum = skip_sum + skip
        x = self.norm_3(self.prelu_3(skip_sum), embedding)
        x = self.mask_output(x, embedding)
        x = self.norm_4(self.prelu_4(x), embedding)  # (batch, 4 * N, T')
        x = x.view(batch, NUM_INSTRUMENTS, self.N, frames)  # (batch, 4, N, T')
        return torch.softmax(x, dim=1)


# --------------------------------------------------------------------------------------
# Stage and full model
# --------------------------------------------------------------------------------------


class Stage(nn.Module):
    """One TasNet stage at ``sampling_rate * 2**index`` Hz."""

    def __init__(self, args: argparse.Namespace, index: int):
        super().__init__()
        scale = 2 ** index
        self.N = args.N * scale
        rate = args.sampling_rate * scale
        in_channels = self.N + (self.N // 2 if index > 0 else 0)
        self.encoder = Encoder(self.N, args.L * scale, args.W * scale, args.filters,
                               args.num_mels, rate)
        self.decoder = Decoder(self.N, args.L * scale, args.W * scale, args.filters)
        self.mask = MaskingNetwork(args, self.N, in_channels)
        if not args.independent_params:
            self.instrument_embedding = nn.Embedding(NUM_INSTRUMENTS, args.E_1)
        else:
            self.instrument_embedding = None
        self.dropout = nn.Dropout2d(args.dropout)

    def embedding(self) -> Optional[torch.Tensor]:
        """The ``(4, E_1)`` instrument embeddings, or ``None`` for static weights."""
        if self.instrument_embedding is None:
            return None
        ids = torch.arange(NUM_INSTRUMENTS, device=self.instrument_embedding.weight.device)
        return self.instrument_embedding(ids)  # (4, E_1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(batch, 4, N, T') -> (batch, 4, 1, T)`` waveforms."""
        batch, _, channels, frames = latents.shape
        wave = self.decoder(latents.reshape(batch * NUM_INSTRUMENTS, channels, frames))  # (batch*4, 1, T)
        return wave.view(batch, NUM_INSTRUMENTS, 1, -1)  # (batch, 4, 1, T)

    def forward(self, mix: torch.Tensor, previous: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Separate one stage.

        Args:
            mix: ``(batch, 1, T)`` mixture at this stage's rate.
            previous: ``(batch, 4, N / 2, T')`` separated latents of the previous stage.

        Returns:
            ``(estimates (batch, 4, 1, T), separated latents (batch, 4, N, T'),
            mixture latent (batch, N, T'))``.
        """
        latent = self.encoder(mix)  # (batch, N, T')
        expanded = latent.unsqueeze(1).expand(-1, NUM_INSTRUMENTS, -1, -1)  # (batch, 4, N, T')
        expanded = self.dropout(expanded)
        mask_input = expanded
        if previous is not None:
            mask_input = torch.cat([expanded, previous], dim=2)  # (batch, 4, N + N/2, T')
        masks = self.mask(mask_input, self.embedding())  # (batch, 4, N, T')
        separated = latent.unsqueeze(1) * masks  # (batch, 4, N, T')
        return self.decode(separated), separated, latent


def si_snr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SI-SNR in dB over the last axis, as in the original (no mean removal).

    ``s = <est, ref> / (|ref|^2 + 1e-8)``, ``t = s * ref``, ``e = est - t``,
    ``10 * (log10(max(|t|^2, 1e-8)) - log10(max(|e|^2, 1e-8)))``.
    """
    dot = (estimate * reference).sum(-1, keepdim=True)
    target = dot / (reference.pow(2).sum(-1, keepdim=True) + 1e-8) * reference
    error = estimate - target
    t_energy = target.pow(2).sum(-1).clamp(min=1e-8)
    e_energy = error.pow(2).sum(-1).clamp(min=1e-8)
    return 10 * (torch.log10(t_energy) - torch.log10(e_energy))


class OfficialMetaTasNet(nn.Module):
    """The authors' multi-stage Meta-TasNet, ``stages`` being a ModuleList of stages."""

    def __init__(self, args: argparse.Namespace):
        super().__init__()
        self.args = args
        self.stages = nn.ModuleList([Stage(args, i) for i in range(args.stages_num)])

    @torch.no_grad()
    def inference(self, mixes: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Separate whole inputs in one chunk.

        Args:
            mixes: one ``(batch, 1, T_i)`` mixture per stage (``T_i = T_0 * 2**i``).

        Returns:
            One ``(batch, 4, 1, T_i)`` estimate per stage.
        """
        outputs, previous = [], None
        for stage, mix in zip(self.stages, mixes):
            estimate, previous, _ = stage(mix, previous)
            outputs.append(estimate)
        return outputs

    def forward(self, mixes: Sequence[torch.Tensor], seps: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Training loss of a batch.

        Args:
            mixes: per stage ``(batch, 1, T_i)`` mixtures.
            seps: per stage ``(batch, 4, 1, T_i)`` ground-truth sources.
            masks: per stage ``(batch, 4, 1)``, 1 where the source is present.

        Returns:
            ``(loss (1,), stats (1, 4 * stages + 3))``.
        """
        args = self.args
        loss, stats, previous = 0.0, None, None
        for i, stage in enumerate(self.stages):
            mix, sep, mask = mixes[i], seps[i], masks[i]
            estimate, previous, latent = stage(mix, previous)
            present = mask[..., 0].to(estimate.dtype)  # (batch, 4)

            sdr = si_snr(estimate[:, :, 0], sep[:, :, 0])  # (batch, 4)
            sdr = (sdr * present).sum(0) / present.sum(0)  # (4,)

            reconstruction = si_snr(stage.decoder(latent)[:, 0], mix[:, 0]).mean()

            batch = sep.shape[0]
            flat = sep.reshape(batch * NUM_INSTRUMENTS, 1, -1)  # (batch * 4, 1, T)
            source_latents = stage.encoder(flat)  # (batch * 4, N, T')
            source_latents = source_latents.view(batch, NUM_INSTRUMENTS, stage.N, -1)  # (batch, 4, N, T')
            source_latents = source_latents.permute(1, 0, 3, 2)  # (4, batch, T', N)
            weight = present.t()  # (4, batch)
            source_latents = source_latents * weight[:, :, None, None]

            dissimilarity, pairs = 0.0, 0.0
            for a in range(NUM_INSTRUMENTS):
                for b in range(a + 1, NUM_INSTRUMENTS):
                    cos = F.cosine_similarity(source_latents[a].abs(), source_latents[b].abs(),
                                              dim=-1, eps=1e-8)  # (batch, T')
                    dissimilarity = dissimilarity + cos.sum(0)
                    pairs = pairs + (weight[a] * weight[b]).sum()
            dissimilarity = (dissimilarity / (pairs + 1e-8)).mean()

            rolled = torch.roll(source_latents, 1, dims=1)  # (4, batch, T', N)
            cos = F.cosine_similarity(source_latents, rolled, dim=-1, eps=1e-8)  # (4, batch, T')
            count = (weight * torch.roll(weight, 1, dims=1)).sum().clamp(min=1e-8)
            similarity = (cos.sum((0, 1)) / count).mean()

            stage_loss = (-sdr.sum()
                          - args.reconstruction_loss_weight * reconstruction
                          + args.dissimilarity_loss_weight * dissimilarity
                          - args.similarity_loss_weight * similarity)
            loss = loss + stage_loss
            stage_stats = torch.cat([sdr, torch.stack([reconstruction, dissimilarity,
                                                       similarity])])  # (7,)
            stats = stage_stats if stats is None else torch.cat([stats[:4 * i], stage_stats])
        return loss.reshape(1), stats.reshape(1, -1)


# --------------------------------------------------------------------------------------
# Random weights, checkpoints and parity cases
# --------------------------------------------------------------------------------------


def _uniform_(tensor: torch.Tensor, low: float, high: float, gen: torch.Generator) -> None:
    """Fill ``tensor`` in place with ``U(low, high)`` drawn from ``gen``."""
    values = torch.rand(tensor.shape, generator=gen, dtype=torch.float64)
    tensor.copy_((low + (high - low) * values).to(tensor.dtype))


def _normal_(tensor: torch.Tensor, mean: float, std: float, gen: torch.Generator) -> None:
    """Fill ``tensor`` in place with ``N(mean, std)`` drawn from ``gen``."""
    values = torch.randn(tensor.shape, generator=gen, dtype=torch.float64)
    tensor.copy_((mean + std * values).to(tensor.dtype))


@torch.no_grad()
def randomize_(model: OfficialMetaTasNet, seed: int) -> OfficialMetaTasNet:
    """Give every parameter and buffer of ``model`` random, non-trivial values in place.

    Deterministic in ``seed`` (modules are visited in registration order with one
    ``torch.Generator``).  Scales keep activations of order one: conv weights have
    variance about ``1 / fan_in``, generated kernels are a shared part plus an
    instrument-dependent part, norm scales are positive around one, PReLU slopes are
    in ``(0.05, 0.4)``.  The spectrogram window stays ``torch.hann_window(n_fft)``, the
    statistics are ``mean ~ N(0, 1)`` and ``std ~ U(0.5, 2)``.

    Returns:
        ``model`` itself.
    """
    gen = torch.Generator().manual_seed(int(seed))
    touched = set()
    for module in model.modules():
        if isinstance(module, Spectrogram):
            module.window.copy_(torch.hann_window(module.n_fft, dtype=module.window.dtype))
            _normal_(module.mean, 0.0, 1.0, gen)
            _uniform_(module.std, 0.5, 2.0, gen)
            _normal_(module.affine_bias, 0.0, 0.1, gen)
            _uniform_(module.affine_scale, 0.8, 1.2, gen)
        elif isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            weight = module.weight
            if isinstance(module, nn.ConvTranspose1d):
                # each output sample sums in_channels * kernel / stride contributions
                fan_in = weight.shape[0] * weight.shape[2] / module.stride[0]
            else:
                fan_in = weight.shape[1] * weight.shape[2]
            bound = math.sqrt(3.0 / fan_in)
            _uniform_(weight, -bound, bound, gen)
            if module.bias is not None:
                _uniform_(module.bias, -0.2, 0.2, gen)
        elif isinstance(module, GeneratedConv1d):
            E_1 = module.bottleneck.in_features
            E_2 = module.bottleneck.out_features
            _uniform_(module.bottleneck.weight, -1 / math.sqrt(E_1), 1 / math.sqrt(E_1), gen)
            _uniform_(module.bottleneck.bias, -0.5, 0.5, gen)
            fan_in = module.in_channels // module.groups * module.kernel_size
            std = 1.0 / math.sqrt(fan_in)
            # shared part (bias) plus an instrument-dependent part (weight @ code)
            _normal_(module.kernel.bias, 0.0, std, gen)
            _normal_(module.kernel.weight, 0.0, std / math.sqrt(E_2), gen)
            if module.bias is not None:
                _normal_(module.bias.weight, 0.0, 0.1 / math.sqrt(E_2), gen)
                _normal_(module.bias.bias, 0.0, 0.1, gen)
        elif isinstance(module, GeneratedGroupNorm):
            E_1 = module.bottleneck.in_features
            E_2 = module.bottleneck.out_features
            C = module.channels
            _uniform_(module.bottleneck.weight, -1 / math.sqrt(E_1), 1 / math.sqrt(E_1), gen)
            _uniform_(module.bottleneck.bias, -0.5, 0.5, gen)
            _normal_(module.affine.weight, 0.0, 0.2 / math.sqrt(E_2), gen)
            _uniform_(module.affine.bias[:C], 0.5, 1.5, gen)  # scale half
            _normal_(module.affine.bias[C:], 0.0, 0.2, gen)  # bias half
        elif isinstance(module, nn.GroupNorm):
            _uniform_(module.weight, 0.5, 1.5, gen)
            _normal_(module.bias, 0.0, 0.2, gen)
        elif isinstance(module, nn.PReLU):
            _uniform_(module.weight, 0.05, 0.4, gen)
        elif isinstance(module, nn.Embedding):
            _normal_(module.weight, 0.0, 1.0, gen)
        else:
            continue
        touched.update(id(t) for t in module.parameters())
        touched.update(id(t) for t in module.buffers())
    missing = [name for name, tensor in model.state_dict(keep_vars=True).items()
               if id(tensor) not in touched]
    if missing:
        raise RuntimeError(f"randomize_ left parameters untouched: {missing}")
    return model


def save_checkpoint(model: OfficialMetaTasNet, args: argparse.Namespace, path) -> None:
    """Write ``{"args": args, "state_dict": model.state_dict()}`` like the authors' files."""
    torch.save({"args": args, "state_dict": model.state_dict()}, path)


def _music_like(rng: np.random.RandomState, count: int, seconds: float,
                rates: Sequence[int]) -> List[np.ndarray]:
    """``count`` random tonal signals sampled consistently at every rate in ``rates``.

    Each signal is a sum of harmonic partials (random fundamentals, decaying harmonic
    amplitudes, a slow tremolo and note-like onsets) plus a dense cloud of weak random
    sinusoids standing in for noise.  All frequencies stay below half the lowest rate, so
    the per-rate arrays are exact samplings of the same continuous signal.

    Returns:
        One ``(count, T_r)`` float64 array per rate.
    """
    nyquist = 0.45 * min(rates)
    partials = []  # rows: (signal, frequency, amplitude, phase)
    envelopes = []  # per signal: (tremolo frequency, depth, phase, onset period, decay)
    for c in range(count):
        for _ in range(rng.randint(2, 5)):
            f0 = 55.0 * 2 ** rng.uniform(0, 5)
            for h in range(1, 9):
                if f0 * h < nyquist:
                    partials.append((c, f0 * h, rng.uniform(0.3, 1.0) / h,
                                     rng.uniform(0, 2 * np.pi)))
        for _ in range(24):
            partials.append((c, rng.uniform(40.0, nyquist), rng.uniform(0.01, 0.08),
                             rng.uniform(0, 2 * np.pi)))
        envelopes.append((rng.uniform(0.5, 6.0), rng.uniform(0.1, 0.6),
                          rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.5),
                          rng.uniform(2.0, 12.0)))
    partials = np.asarray(partials)
    outputs = []
    for rate in rates:
        t = np.arange(int(round(seconds * rate))) / rate  # (T_r,)
        signals = np.zeros((count, t.size))
        for c, freq, amp, phase in partials:
            signals[int(c)] += amp * np.sin(2 * np.pi * freq * t + phase)
        for c, (ftrem, depth, ptrem, period, decay) in enumerate(envelopes):
            onset = np.exp(-decay * np.mod(t, period))
            signals[c] *= (1 + depth * np.sin(2 * np.pi * ftrem * t + ptrem)) * (0.3 + onset)
        outputs.append(signals)
    # common per-signal scale so that every source has a standard deviation of ~0.15
    scale = 0.15 / (outputs[0].std(axis=1, keepdims=True) + 1e-12)
    return [signals * scale for signals in outputs]


def _noise(rng: np.random.RandomState, count: int, seconds: float,
           rates: Sequence[int]) -> List[np.ndarray]:
    """``count`` white Gaussian signals (std 0.2) per rate, like the shipped fixture's.

    Full-band signals keep every STFT bin well above float32 rounding, so outputs are
    well-conditioned for tight parity checks.
    """
    return [0.2 * rng.standard_normal((count, int(round(seconds * rate)))) for rate in rates]


def make_case(args: argparse.Namespace, seed: int = 0, seconds: float = 1.0,
              batch: int = 2, signals: str = "music") -> Dict[str, np.ndarray]:
    """Build, randomise and run the reference model; return a fixture-like parity case.

    Args:
        args: configuration (see :func:`official_args`).
        seed: seed of the weights and of the signals.
        seconds: signal length; the base-rate length is rounded down to a multiple of ``W``.
        batch: training-batch size; item 1 (if any) has a silent "other" source.
        signals: ``"music"`` (band-limited tonal signals, consistent across the rates) or
            ``"noise"`` (white noise at each rate, as in the shipped fixture).

    Returns:
        NumPy arrays with the keys of ``official_small.npz``: ``"state_dict"`` (a dict
        ``name -> array``), ``mix_<i>`` ``(1, 1, T_i)``, ``out_<i>`` ``(1, 4, 1, T_i)``,
        ``train_mix_<i>`` ``(batch, 1, T_i)``, ``train_sep_<i>`` ``(batch, 4, 1, T_i)``,
        ``train_mask_<i>`` ``(batch, 4, 1)``, ``train_loss`` ``(1,)`` and ``train_stats``
        ``(1, 4 * stages + 3)``, with ``T_i = T_0 * 2**i`` at ``sampling_rate * 2**i`` Hz.
    """
    torch.manual_seed(seed)
    model = randomize_(OfficialMetaTasNet(args), seed)
    model.eval()  # no dropout: outputs and loss are deterministic

    stages = args.stages_num
    T_0 = int(seconds * args.sampling_rate) // args.W * args.W
    seconds = T_0 / args.sampling_rate
    rates = [args.sampling_rate * 2 ** i for i in range(stages)]
    rng = np.random.RandomState(seed)
    generate = {"music": _music_like, "noise": _noise}[signals]

    case: Dict[str, np.ndarray] = {
        "state_dict": {name: value.detach().cpu().numpy().copy()
                       for name, value in model.state_dict().items()},
    }

    # inference: one mixture = sum of four random sources
    mixes = []
    for i, sources in enumerate(generate(rng, NUM_INSTRUMENTS, seconds, rates)):
        mix = sources.sum(0).reshape(1, 1, -1).astype(np.float32)  # (1, 1, T_i)
        case[f"mix_{i}"] = mix
        mixes.append(torch.from_numpy(mix))
    outs = model.inference(mixes)
    for i, out in enumerate(outs):
        case[f"out_{i}"] = out.numpy().astype(np.float32)  # (1, 4, 1, T_i)

    # training batch: item 1 has a silent "other" (index 2)
    mask = np.ones((batch, NUM_INSTRUMENTS, 1), np.float32)  # (batch, 4, 1)
    if batch > 1:
        mask[1, 2, 0] = 0.0
    t_mixes, t_seps, t_masks = [], [], []
    for i, flat in enumerate(generate(rng, batch * NUM_INSTRUMENTS, seconds, rates)):
        sep = flat.reshape(batch, NUM_INSTRUMENTS, 1, -1) * mask[..., None]  # (batch, 4, 1, T_i)
        sep = sep.astype(np.float32)
        mix = sep.sum(1).astype(np.float32)  # (batch, 1, T_i)
        case[f"train_mix_{i}"], case[f"train_sep_{i}"], case[f"train_mask_{i}"] = (
            mix, sep, mask.copy())
        t_mixes.append(torch.from_numpy(mix))
        t_seps.append(torch.from_numpy(sep))
        t_masks.append(torch.from_numpy(mask.copy()))
    with torch.no_grad():
        loss, stats = model(t_mixes, t_seps, t_masks)
    case["train_loss"] = loss.numpy().astype(np.float32)  # (1,)
    case["train_stats"] = stats.numpy().astype(np.float32)  # (1, 4 * stages + 3)
    return case
