#!/usr/bin/env python
"""Writes the test vectors that the Android core's JUnit tests check the Java code against.

    python android_demo/tools/make_test_vectors.py [--out DIR]

(default DIR: android_demo/core/src/test/resources/vectors). ``tests/test_android_core.py``
regenerates them into a temporary folder and fails if the committed ones differ, so they
cannot go stale when the Python code changes.

What is written (``index.json`` lists every case; arrays are raw little-endian float32
``.f32`` files, multi-channel ones channel-major):

* ``plan_windows`` and ``fade_weights`` of :mod:`tf_metatasnet.inference.apply`: inputs and results;
* ``apply_chunked`` with :func:`fake_model`, a deterministic per-sample linear function of
  the inputs plus a term that depends on the window's first sample and one that depends on
  the position inside the window, so wrong window starts or kept offsets change the output;
* :func:`tf_metatasnet.audio.sinc.resample` for the ratios the app meets;
* :func:`separate_channel`, the whole per-instrument pipeline of the metadata contract
  (format ``tf_metatasnet.tflite/1``, written by ``tf_metatasnet/export/tflite/convert.py``;
  mirrored by Java's ``InstrumentSeparator``) with the fake model and fake metadata files;
* WAV files written by soundfile and by Python's ``wave`` module, with their samples;
* PCM16 conversion of edge values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import wave

import numpy as np
import soundfile as sf

from tf_metatasnet.audio import sinc as sinc_resample
from tf_metatasnet.inference.apply import apply_chunked, fade_weights, plan_windows

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "core", "src", "test", "resources", "vectors")

#: The fake model's weight per input (base, 2x, 4x rate) and its window-dependent terms.
FAKE_WEIGHTS = (-0.125, 0.25, 0.5)
FAKE_START_WEIGHT = 0.1
FAKE_RAMP = 1e-3

#: A metadata file as the exporter writes it (contract format tf_metatasnet.tflite/1), for a
#: small fake model: windows of 1600 base samples (0.2 s at 8 kHz).
FAKE_METADATA = {
    "format": "tf_metatasnet.tflite/1",
    "model_version": "fake-000000",
    "instrument": "vocals",
    "sources": ["drums", "bass", "other", "vocals"],
    "quantization": "float32",
    "base_rate": 8000,
    "output_rate": 32000,
    "chunk": 1000,
    "context": 300,
    "overlap": 200,
    "window": 1600,
    "align": 20,
    "inputs": [
        {"name": f"mixture_{8000 * f}", "index": i, "sample_rate": 8000 * f, "factor": f,
         "shape": [1, 1600 * f], "dtype": "float32"} for i, f in enumerate((1, 2, 4))],
    "output": {"name": "vocals", "index": 0, "sample_rate": 32000, "factor": 4,
               "shape": [1, 6400], "dtype": "float32"},
    "normalization": "std",
    "channels": "each channel of the song is separated on its own (batch 1)",
    "resampling": "outside the model: song rate -> 8/16/32 kHz, and 32 kHz -> song rate",
}


#: The same model with its inputs in another interpreter order (32, 8, 16 kHz), listed in the
#: file in yet another order: the app must follow "index", not the list or the rates.
FAKE_METADATA_REORDERED = {
    **FAKE_METADATA,
    "inputs": [dict(x, index=(x["index"] + 1) % 3) for x in FAKE_METADATA["inputs"]],
}


def fake_model(inputs: list, factors=(1, 2, 4), out_factor: int = 4) -> np.ndarray:
    """One window of one channel: per input ``(window * factors[i],)`` -> ``(window * out_factor,)``.

    ``out[j] = sum_i w_i * inputs[i][j * factors[i] // out_factor]
               + 0.1 * inputs[0][0] + 1e-3 * j / n``, in float32, in this order
    (Java: ``FakeModel`` in the core's tests).
    """
    n = len(inputs[0]) // factors[0] * out_factor
    j = np.arange(n)
    out = np.zeros(n, np.float32)
    for weight, signal, factor in zip(FAKE_WEIGHTS, inputs, factors):
        out = out + np.float32(weight) * signal[j * factor // out_factor]
    out = out + np.float32(FAKE_START_WEIGHT) * inputs[0][0]
    return out + np.float32(FAKE_RAMP) * j.astype(np.float32) / np.float32(n)


def _fake_segment_fn(factors, out_factor):
    """``apply_chunked``'s ``segment_fn`` around :func:`fake_model`: (n, samples_i) -> (n, 1, samples)."""
    def segment(inputs):
        return np.stack([fake_model([x[k] for x in inputs], factors, out_factor)[None]
                         for k in range(len(inputs[0]))])
    return segment


def chunked(signals, length, chunk, context, overlap, factors, out_factor, align):
    """``apply_chunked`` over one channel's padded signals with the fake model -> (length * out_factor,)."""
    def read(start, stop):
        return [s[None, start * f:stop * f] for s, f in zip(signals, factors)]
    blocks = apply_chunked(_fake_segment_fn(factors, out_factor), read, length, chunk=chunk,
                           context=context, overlap=overlap, factors=factors,
                           out_factor=out_factor, align=align)
    return np.concatenate(list(blocks), axis=-1)[0, 0]


def padded_length(frames: int, rate: int, meta: dict) -> int:
    """Base samples a song is padded to: the longest input rounded up to ``align``, >= ``window``."""
    longest = max(math.ceil(sinc_resample.output_length(frames, rate, x["sample_rate"]) / x["factor"])
                  for x in meta["inputs"])
    length = math.ceil(longest / meta["align"]) * meta["align"]
    return max(length, meta["window"])


def separate_channel(channel: np.ndarray, rate: int, meta: dict, model=fake_model) -> np.ndarray:
    """The contract's per-instrument pipeline for one channel (Java: ``InstrumentSeparator``).

    Resample to each input's rate, divide by each signal's std, pad (see
    :func:`padded_length`), run chunk by chunk, cut to the song's length at the output rate,
    multiply by the std of the input at the output's rate (else the highest-rate one),
    resample back to ``rate`` and the song's length.
    """
    inputs = sorted(meta["inputs"], key=lambda x: x["index"])          # interpreter input order
    factors = [x["factor"] for x in inputs]
    out_factor = meta["output"]["factor"]
    resampled = [sinc_resample.resample(channel, rate, x["sample_rate"]) for x in inputs]
    stds = []
    for signal in resampled:
        std = float(np.std(signal.astype(np.float64)))
        stds.append(std if std > 0 else 1.0)
    length = padded_length(len(channel), rate, meta)
    signals = []
    for signal, std, factor in zip(resampled, stds, factors):
        padded = np.zeros(length * factor, np.float32)
        padded[:len(signal)] = (signal.astype(np.float64) / std).astype(np.float32)
        signals.append(padded)

    def segment(batch):
        return np.stack([model([x[k] for x in batch], factors, out_factor)[None]
                         for k in range(len(batch[0]))])

    def read(start, stop):
        return [s[None, start * f:stop * f] for s, f in zip(signals, factors)]

    output = np.concatenate(list(apply_chunked(
        segment, read, length, chunk=meta["chunk"], context=meta["context"],
        overlap=meta["overlap"], factors=factors, out_factor=out_factor,
        align=meta["align"])), axis=-1)[0, 0]
    keep = min(sinc_resample.output_length(len(channel), rate, meta["output_rate"]), len(output))
    rates = [x["sample_rate"] for x in inputs]
    scale = rates.index(meta["output_rate"]) if meta["output_rate"] in rates else int(np.argmax(rates))
    scaled = (output[:keep].astype(np.float64) * stds[scale]).astype(np.float32)
    back = sinc_resample.resample(scaled, meta["output_rate"], rate)
    result = np.zeros(len(channel), np.float32)
    result[:min(len(back), len(channel))] = back[:len(channel)]
    return result


def pcm16(x: np.ndarray) -> np.ndarray:
    """Float -> int16 as the core's ``Pcm.toPcm16``: floor(x * 32768 + 0.5), clipped."""
    return np.clip(np.floor(x.astype(np.float64) * 32768.0 + 0.5), -32768, 32767).astype(np.int16)


def _music(frames: int, rate: int, channels: int, seed: int) -> np.ndarray:
    """A few decaying tones plus a little noise: (channels, frames) float32, peak ~0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    out = []
    for _ in range(channels):
        x = sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(60, 3000) * t)
                * np.exp(-t * rng.uniform(0.5, 4)) for _ in range(5))
        out.append(x + 0.01 * rng.standard_normal(frames))
    return np.asarray(out, np.float32)


class _Writer:
    def __init__(self, out):
        self.out = out
        os.makedirs(out, exist_ok=True)

    def f32(self, name: str, array) -> str:
        np.ascontiguousarray(array, "<f4").tofile(os.path.join(self.out, name))
        return name


def write_vectors(out: str) -> None:
    w = _Writer(out)
    index = {"about": "Written by android_demo/tools/make_test_vectors.py; do not edit.",
             "fake_model": {"weights": list(FAKE_WEIGHTS), "start_weight": FAKE_START_WEIGHT,
                            "ramp": FAKE_RAMP}}

    # plan_windows / fade_weights ------------------------------------------------------
    cases = [(1000, 300, 50, 60, 20), (1000, 300, 0, 0, 20), (2000, 400, 200, 100, 20),
             (400, 300, 100, 20, 20), (200, 300, 50, 20, 20), (20000, 1280, 2560, 640, 20),
             (1000, 290, 45, 55, 20), (7, 3, 1, 1, 1), (640, 100, 0, 40, 20), (3000, 1000, 300, 200, 20),
             (5020, 400, 100, 140, 20)]
    index["plan_windows"] = [
        {"length": n, "chunk": c, "context": x, "overlap": o, "align": a,
         "windows": [[v.start, v.size, v.keep_start, v.keep_stop, v.fade_in, v.fade_out]
                     for v in plan_windows(n, c, x, o, a)]}
        for n, c, x, o, a in cases]
    index["fade_weights"] = [
        {"size": s, "overlap": o, "fade_in": i, "fade_out": f,
         "weights": [float(v) for v in fade_weights(s, o, i, f)]}
        for s, o, i, f in [(10, 3, True, True), (10, 3, True, False), (10, 3, False, True),
                           (8, 0, True, True), (12, 7, True, True), (400, 240, True, False)]]

    # apply_chunked with the fake model ----------------------------------------------
    rng = np.random.default_rng(6)
    index["apply_chunked"] = []
    for k, (length, chunk, context, overlap) in enumerate(
            [(1500, 400, 200, 100), (1500, 400, 200, 0), (2000, 300, 60, 40), (200, 300, 50, 20),
             (1000, 290, 45, 55)]):
        factors, out_factor, align = [1, 2, 4], 4, 20
        signals = [rng.standard_normal(length * f).astype(np.float32) for f in factors]
        expected = chunked(signals, length, chunk, context, overlap, factors, out_factor, align)
        index["apply_chunked"].append({
            "length": length, "chunk": chunk, "context": context, "overlap": overlap,
            "factors": factors, "out_factor": out_factor, "align": align,
            "inputs": [w.f32(f"chunked{k}_in{i}.f32", s) for i, s in enumerate(signals)],
            "expected": w.f32(f"chunked{k}_out.f32", expected)})

    # resampling -----------------------------------------------------------------------
    index["resample"] = []
    for rate_in, rate_out in [(44100, 8000), (44100, 16000), (44100, 32000), (48000, 8000),
                              (32000, 44100), (32000, 48000), (22050, 32000), (16000, 16000)]:
        x = _music(rate_in // 20, rate_in, 1, rate_in + rate_out)[0]          # 50 ms
        y = sinc_resample.resample(x, rate_in, rate_out)
        index["resample"].append({
            "rate_in": rate_in, "rate_out": rate_out,
            "input": w.f32(f"resample_{rate_in}_{rate_out}_in.f32", x),
            "expected": w.f32(f"resample_{rate_in}_{rate_out}_out.f32", y)})

    # the whole per-instrument pipeline ------------------------------------------------
    for name, meta in [("fake_model.json", FAKE_METADATA),
                       ("fake_model_reordered.json", FAKE_METADATA_REORDERED)]:
        with open(os.path.join(out, name), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
    index["separate"] = []
    for k, (rate, channels, frames, name, meta) in enumerate([
            (22050, 2, 6615, "fake_model.json", FAKE_METADATA),
            (44100, 1, 4410, "fake_model.json", FAKE_METADATA),
            (16000, 1, 5000, "fake_model.json", FAKE_METADATA),
            (48000, 1, 7200, "fake_model_reordered.json", FAKE_METADATA_REORDERED)]):
        song = _music(frames, rate, channels, 100 + k)                          # (C, frames)
        expected = np.stack([separate_channel(c, rate, meta) for c in song])
        index["separate"].append({
            "metadata": name, "rate": rate, "channels": channels, "frames": frames,
            "padded_length": padded_length(frames, rate, meta),
            "input": w.f32(f"separate{k}_in.f32", song),
            "expected": w.f32(f"separate{k}_out.f32", expected)})

    # WAV files and PCM16 ---------------------------------------------------------------
    samples = _music(300, 22050, 2, 7)
    samples[:, :6] = [[1.0, -1.0, 0.99999, 0.5 / 32768, -0.5 / 32768, 1.5 / 32768]] * 2
    sf.write(os.path.join(out, "soundfile_pcm16.wav"), samples.T, 22050, subtype="PCM_16")
    sf.write(os.path.join(out, "soundfile_float32.wav"), samples.T, 22050, subtype="FLOAT")
    ints = pcm16(samples)
    with wave.open(os.path.join(out, "wave_pcm16.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(ints[0].astype("<i2").tobytes())
    index["wav"] = {
        "samples": w.f32("wav_samples.f32", samples), "rate": 22050, "channels": 2,
        "files": [
            {"file": "soundfile_pcm16.wav", "rate": 22050, "channels": 2,
             "expected": w.f32("soundfile_pcm16_expected.f32",
                               sf.read(os.path.join(out, "soundfile_pcm16.wav"), dtype="float32")[0].T)},
            {"file": "soundfile_float32.wav", "rate": 22050, "channels": 2,
             "expected": w.f32("soundfile_float32_expected.f32",
                               sf.read(os.path.join(out, "soundfile_float32.wav"), dtype="float32")[0].T)},
            {"file": "wave_pcm16.wav", "rate": 8000, "channels": 1,
             "expected": w.f32("wave_pcm16_expected.f32", ints[:1] / np.float32(32768))}]}
    edge = np.array([0.0, 1.0, -1.0, 2.0, -2.0, 0.5 / 32768, -0.5 / 32768, 1.5 / 32768,
                     -1.5 / 32768, 0.25, -0.123456, 32767 / 32768, -32768 / 32768], np.float32)
    index["pcm16"] = {"floats": [float(v) for v in edge], "ints": [int(v) for v in pcm16(edge)]}

    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder to write (default: the core's test resources)")
    args = parser.parse_args(argv)
    write_vectors(os.path.normpath(args.out))
    print(f"wrote {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
