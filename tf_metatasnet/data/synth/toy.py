"""Synthetic songs from pure NumPy: music-like stems for tests and smoke runs.

Each song is varied by its seed (tempo, key, chord progression, patterns, timbres): drums
are kick/snare/hi-hat/crash hits on a sixteenth-note grid, bass a low line on the chord
roots, other the chords (pads, arpeggios or stabs of harmonic partials), vocals a melody
with glides, vibrato, vowel formants, gaps between notes and silent phrases. Instruments
drop out in some two-bar sections, as in real songs, but every stem sounds somewhere in
every song. ``tf_metatasnet.data.synth.dataset`` writes such songs as a MUSDB18.
"""

from __future__ import annotations

import math

import numpy as np

from tf_metatasnet.data.synth.patterns import BASS, HATS, KICKS, MAJOR, MINOR, PROGRESSIONS, SNARES
from tf_metatasnet.sources import SOURCES, STEMS

#: Vowels as (F1, F2, F3) formant frequencies in Hz.
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))


def _midi_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _pan_gains(position):
    """Constant-power (left, right) gains for a position in [-1, 1] (-1: left)."""
    angle = (position + 1.0) * math.pi / 4.0
    return np.array([math.cos(angle), math.sin(angle)])


def _pan(signal, position):
    """Mono ``(n,)`` to stereo ``(n, 2)``."""
    return signal[:, None] * _pan_gains(position)


def _add(buffer, start, signal):
    """Adds ``signal`` into ``buffer`` (both ``(n, 2)``) from sample ``start``, cut at the end."""
    start = max(int(start), 0)
    length = min(len(signal), len(buffer) - start)
    if length > 0:
        buffer[start:start + length] += signal[:length]


def _band_noise(rng, n, rate, low, high):
    """White noise band-limited to ``[low, high]`` Hz (FFT mask with soft edges), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    high = min(high, 0.45 * rate)
    gain = 1.0 / (1.0 + (low / np.maximum(freqs, 1.0)) ** 4) / (1.0 + (freqs / high) ** 4)
    noise = np.fft.irfft(spectrum * gain, n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _envelope(n, rate, attack, release, decay=None, sustain=1.0):
    """Attack-decay-sustain-release envelope over ``n`` samples (times in seconds)."""
    t = np.arange(n) / rate
    env = np.ones(n)
    if decay is not None:
        env = sustain + (1.0 - sustain) * np.exp(-t / decay)
    attack_n = max(int(attack * rate), 1)
    env[:attack_n] *= np.arange(1, min(attack_n, n) + 1)[:n] / attack_n
    release_n = min(max(int(release * rate), 1), n)
    env[n - release_n:] *= np.linspace(1.0, 0.0, release_n)
    return env


def _partials(freq, n, rate, amplitudes, phases, detune_cents=0.0):
    """A harmonic tone ``sum_k a_k sin(2 pi k f t + phi_k)``, partials above 0.45 rate left out."""
    t = np.arange(n) / rate
    freq = freq * 2.0 ** (detune_cents / 1200.0)
    tone = np.zeros(n)
    for k, (amplitude, phase) in enumerate(zip(amplitudes, phases), start=1):
        if k * freq >= 0.45 * rate:
            break
        tone += amplitude * np.sin(2.0 * np.pi * k * freq * t + phase)
    return tone


def _box_smooth(x, width):
    """Moving average of ``x`` over ``width`` samples, twice (a triangular smoother), same length."""
    width = max(int(width), 1)
    for _ in range(2):
        padded = np.concatenate([np.full(width // 2, x[0]), x, np.full(width - width // 2, x[-1])])
        cumulative = np.concatenate([[0.0], np.cumsum(padded)])
        x = (cumulative[width:] - cumulative[:-width])[:len(x)] / width
    return x


class _Song:
    """One track's musical plan: tempo, key, chords, arrangement, all drawn from ``rng``."""

    def __init__(self, rng, samples, rate):
        self.rng, self.samples, self.rate = rng, samples, rate
        self.beat = 60.0 / rng.uniform(84.0, 140.0)  # seconds
        self.bar = 4 * self.beat
        self.tonic = int(rng.integers(12))  # pitch class
        self.mode = "major" if rng.random() < 0.6 else "minor"
        self.scale = MAJOR if self.mode == "major" else MINOR
        progressions = PROGRESSIONS[self.mode]
        self.progression = progressions[int(rng.integers(len(progressions)))]
        self.bars_per_chord = 1 if rng.random() < 0.7 else 2
        seconds = samples / rate
        self.bars = max(1, math.ceil(seconds / self.bar))
        sections = math.ceil(self.bars / 2)
        # A section is eligible to carry a stem for sure when a full bar of it lies in the track.
        eligible = [s for s in range(sections) if 2 * s * self.bar <= seconds - self.bar] or [0]
        probability = {"drums": 0.8, "bass": 0.85, "other": 0.85, "vocals": 0.7}
        self.active = {}
        for name in SOURCES:
            active = rng.random(sections) < probability[name]
            if not active[eligible].any():
                active[eligible[int(rng.integers(len(eligible)))]] = True
            self.active[name] = np.repeat(active, 2)[:self.bars]

    def chord(self, bar):
        """The chord of a bar as (root pitch class, pitch classes of its tones)."""
        degree = self.progression[(bar // self.bars_per_chord) % len(self.progression)]
        tones = [self.scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4)]
        return (self.tonic + tones[0]) % 12, [(self.tonic + tone) % 12 for tone in tones]

    def seconds_to_sample(self, seconds, jitter=0.004):
        return int(round((seconds + self.rng.uniform(-jitter, jitter)) * self.rate))


def _drums(song, rng):
    rate, n = song.rate, song.samples
    out = np.zeros((n + rate * 2, 2))
    kick_pattern = KICKS[int(rng.integers(len(KICKS)))]
    snare_pattern = SNARES[int(rng.integers(len(SNARES)))]
    hat_pattern = HATS[int(rng.integers(len(HATS)))]
    kick_high, kick_low = rng.uniform(100, 170), rng.uniform(42, 62)
    kick_sweep, kick_decay = rng.uniform(0.02, 0.05), rng.uniform(0.12, 0.3)
    snare_tone, snare_decay = rng.uniform(160, 240), rng.uniform(0.05, 0.12)
    hat_decay, hat_pan = rng.uniform(0.012, 0.03), rng.uniform(-0.5, 0.5)
    step = song.beat / 4

    def kick(velocity):
        t = np.arange(int(0.45 * rate)) / rate
        freq = kick_low + (kick_high - kick_low) * np.exp(-t / kick_sweep)
        body = np.sin(2 * np.pi * np.cumsum(freq) / rate) * np.exp(-t / kick_decay)
        click = 0.3 * rng.standard_normal(len(t)) * np.exp(-t / 0.002)
        return _pan(velocity * (body + click), 0.0)

    def snare(velocity):
        m = int(0.3 * rate)
        t = np.arange(m) / rate
        tone = np.sin(2 * np.pi * snare_tone * t) * np.exp(-t / 0.04)
        noise = _band_noise(rng, m, rate, 1200, 9000) * np.exp(-t / snare_decay)
        return _pan(velocity * (0.5 * tone + 0.35 * noise), 0.1)

    def hat(velocity, open_):
        m = int((0.4 if open_ else 0.1) * rate)
        t = np.arange(m) / rate
        noise = _band_noise(rng, m, rate, 6000, 16000) * np.exp(-t / (0.15 if open_ else hat_decay))
        return _pan(0.18 * velocity * noise, hat_pan)

    def crash():
        m = int(1.6 * rate)
        t = np.arange(m) / rate
        decay = np.exp(-t / 0.45)
        left, right = (_band_noise(rng, m, rate, 3000, 16000) * decay for _ in range(2))
        return 0.12 * np.stack([left, right], axis=1)  # independent noise: a wide cymbal

    for bar in range(song.bars):
        if not song.active["drums"][bar]:
            continue
        start = bar * song.bar
        if bar % 2 == 0 and (bar == 0 or not song.active["drums"][bar - 1] or rng.random() < 0.3):
            _add(out, song.seconds_to_sample(start), crash())
        for s in kick_pattern:
            _add(out, song.seconds_to_sample(start + s * step), kick(rng.uniform(0.8, 1.0)))
        for s in snare_pattern:
            _add(out, song.seconds_to_sample(start + s * step), snare(rng.uniform(0.8, 1.0)))
        if rng.random() < 0.3:  # a ghost note
            _add(out, song.seconds_to_sample(start + int(rng.choice([7, 9, 14, 15])) * step), snare(0.3))
        for s in hat_pattern:
            accent = 1.0 if s % 4 == 0 else rng.uniform(0.5, 0.8)
            _add(out, song.seconds_to_sample(start + s * step), hat(accent, s == 14 and rng.random() < 0.3))
    return out[:n]


def _bass(song, rng):
    rate, n = song.rate, song.samples
    out = np.zeros((n + rate * 2, 2))
    rhythm, intervals = BASS[int(rng.integers(len(BASS)))]
    tilt = rng.uniform(1.6, 2.4)  # partial amplitudes 1/k**tilt: a dark, filtered saw
    amplitudes = [k ** -tilt for k in range(1, 9)]
    decay, pan = rng.uniform(0.15, 0.5), rng.uniform(-0.15, 0.15)
    for bar in range(song.bars):
        if not song.active["bass"][bar]:
            continue
        root = 31 + (song.chord(bar)[0] - 7) % 12  # G1 .. F#2
        for (onset, length), interval in zip(rhythm, intervals):
            m = int(length * song.beat * 0.92 * rate)
            freq = float(_midi_hz(root + interval))
            env = _envelope(m, rate, 0.006, 0.03, decay=decay, sustain=0.5)
            phases = [rng.uniform(0, 2 * np.pi, 8) for _ in range(2)]
            phases[1][0] = phases[0][0]  # same fundamental, decorrelated upper partials
            left, right = (_partials(freq, m, rate, amplitudes, p) * env for p in phases)
            tone = np.stack([left, right], axis=1) * rng.uniform(0.85, 1.0)
            tone *= _pan_gains(pan)
            _add(out, song.seconds_to_sample(bar * song.bar + onset * song.beat), tone)
    return out[:n]


def _voicing(pitch_classes):
    """MIDI notes of a chord between G3 (55) and F#5 (78)."""
    return sorted(55 + (pc - 7) % 12 for pc in pitch_classes)


def _other(song, rng):
    rate, n = song.rate, song.samples
    out = np.zeros((n + rate * 2, 2))
    style = ("pad", "arpeggio", "stabs")[int(rng.integers(3))]
    tilt = rng.uniform(0.9, 1.6)
    amplitudes = [k ** -tilt for k in range(1, 13)]
    spread = rng.uniform(0.3, 0.8)
    for bar in range(song.bars):
        if not song.active["other"][bar]:
            continue
        notes = _voicing(song.chord(bar)[1])
        if rng.random() < 0.4:
            notes.append(notes[0] + 12)
        start = bar * song.bar
        if style == "pad":
            events = [(0.0, 4.0, notes)]
        elif style == "arpeggio":
            step = 0.5 if rng.random() < 0.6 else 0.25
            order = notes + notes[-2:0:-1]
            events = [(i * step, step, [order[i % len(order)]]) for i in range(int(4 / step))]
        else:
            events = [(onset, 0.4, notes) for onset in (0.0, 1.5, 2.5, 3.5)]
        for onset, length, chord in events:
            m = int(length * song.beat * rate)
            if style == "pad":
                env = _envelope(m, rate, rng.uniform(0.08, 0.25), 0.15)
            else:
                env = _envelope(m, rate, 0.004, 0.02, decay=rng.uniform(0.12, 0.35), sustain=0.0)
            for i, note in enumerate(chord):
                freq = float(_midi_hz(note))
                if len(chord) > 1:  # chord tones spread across the stereo image
                    position = spread * (2 * i / (len(chord) - 1) - 1)
                else:  # arpeggio notes alternate sides
                    position = spread * (0.5 if round(onset / length) % 2 else -0.5)
                phases = rng.uniform(0, 2 * np.pi, 12)
                channels = [_partials(freq, m, rate, amplitudes, phases, detune)
                            for detune in (-2.0, 2.0)]  # slightly detuned channels: a chorus
                stereo = np.stack(channels, axis=1) * env[:, None] / len(chord) ** 0.5
                stereo *= _pan_gains(position)
                _add(out, song.seconds_to_sample(start + onset * song.beat), 0.5 * stereo)
    return out[:n]


def _melody(song, rng):
    """The vocal line as (onset seconds, sounding seconds, MIDI note) tuples."""
    center = int(rng.integers(57, 70))
    low, high = center - 7, center + 7
    degrees = [d + 12 * o for o in range(-2, 4) for d in song.scale]
    pitches = [song.tonic + d + 36 for d in degrees if low <= song.tonic + d + 36 <= high]
    index = len(pitches) // 2
    notes = []
    first = True
    for bar in range(song.bars):
        if not song.active["vocals"][bar]:
            continue
        breath = float(rng.choice([0.5, 1.0, 1.5]))  # every bar ends with a rest: a breath
        beat = 0.0 if first or rng.random() < 0.6 else 0.5
        first = False
        chord = song.chord(bar)[1]
        while beat < 4.0 - breath:
            length = min(float(rng.choice([0.5, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0])), 4.0 - breath - beat)
            if notes and rng.random() < 0.15:  # a rest
                beat += length
                continue
            index = int(np.clip(index + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
            if beat % 2 == 0:  # strong beats land on a chord tone
                tones = [i for i, p in enumerate(pitches) if p % 12 in chord]
                if tones:
                    index = min(tones, key=lambda i: abs(i - index))
            sounding = length * song.beat * rng.uniform(0.75, 0.92)
            notes.append((bar * song.bar + beat * song.beat, sounding, pitches[index]))
            beat += length
    return notes


def _vocals(song, rng):
    rate, n = song.rate, song.samples
    total = n + rate
    notes = _melody(song, rng)
    target = np.full(total, np.nan)  # log2 of the intended f0, held between notes
    amplitude = np.zeros(total)
    vibrato_ramp = np.zeros(total)
    vowel = np.zeros((total, 3))
    vowel_index = int(rng.integers(len(_VOWELS)))
    attack, release = rng.uniform(0.02, 0.06), rng.uniform(0.04, 0.08)
    for onset, sounding, note in notes:
        start = max(song.seconds_to_sample(onset, jitter=0.01), 0)
        m = min(int(sounding * rate), total - start)
        if m <= 0:
            continue
        target[start:] = math.log2(float(_midi_hz(note)))
        env = _envelope(m, rate, attack, release, decay=rng.uniform(0.3, 1.0), sustain=rng.uniform(0.6, 0.9))
        amplitude[start:start + m] = env * rng.uniform(0.7, 1.0)
        vibrato_ramp[start:start + m] = np.clip((np.arange(m) / rate - 0.12) / 0.25, 0.0, 1.0)
        if rng.random() < 0.5:
            vowel_index = int(rng.integers(len(_VOWELS)))
        vowel[start:] = _VOWELS[vowel_index]
    if not notes:
        return np.zeros((n, 2))
    first = np.flatnonzero(~np.isnan(target))
    target[:first[0]] = target[first[0]]
    log_f0 = _box_smooth(target, 0.035 * rate)  # glides between notes
    t = np.arange(total) / rate
    depth, speed = rng.uniform(0.2, 0.5), rng.uniform(4.5, 6.5)  # vibrato in semitones and Hz
    drift = _box_smooth(rng.standard_normal(total), 0.05 * rate) * 0.4  # slow pitch wander, ~cents
    log_f0 = log_f0 + (depth * vibrato_ramp * np.sin(2 * np.pi * speed * t) + drift) / 12.0
    f0 = 2.0 ** log_f0
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = np.stack([_box_smooth(vowel[:, i], 0.05 * rate) for i in range(3)], axis=1)
    hop = 64  # formant weights vary slowly: computed every 64 samples and interpolated
    control = np.arange(0, total, hop)
    voice = np.zeros(total)
    for k in range(1, int(min(6000.0, 0.45 * rate) / f0.min()) + 1):
        partial = k * f0[control]
        weight = 0.08 + sum(gain * np.exp(-0.5 * ((partial - formants[control, i]) / width) ** 2)
                            for i, (gain, width) in enumerate(((1.0, 90.0), (0.6, 130.0), (0.35, 170.0))))
        weight = weight / k * (partial < 0.45 * rate)
        voice += np.interp(t, t[control], weight) * np.sin(k * phase)
    voice *= amplitude
    delay = int(rng.integers(1, 4))  # a few samples between the channels: a little width
    right = np.concatenate([np.zeros(delay), voice[:-delay]])
    stereo = np.stack([voice, right], axis=1) * _pan_gains(rng.uniform(-0.1, 0.1))
    return stereo[:n]


def synthesize_track(seconds: float, rate: int = 44100, seed=0) -> dict[str, np.ndarray]:
    """One synthetic song: the four stems and their mixture.

    Args:
        seconds: length (> 0).
        rate: sample rate in Hz (default 44100).
        seed: anything ``np.random.default_rng`` takes (an int, a sequence of ints, a
            ``SeedSequence``); the same seed gives the same song.

    Returns:
        ``{"mixture", "drums", "bass", "other", "vocals"}`` to float32 ``(samples, 2)``
        arrays on the 16-bit grid (integers / 32768), so the mixture is exactly the sum of
        the stems also after writing 16-bit PCM; the largest peak is between 0.5 and 0.8.
    """
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    if int(rate) != rate or rate < 8000:
        raise ValueError(f"rate must be an integer of at least 8000 Hz, got {rate!r}")
    rate = int(rate)
    rng = np.random.default_rng(seed)
    samples = max(int(round(seconds * rate)), 1)
    song = _Song(rng, samples, rate)
    stems = {"drums": _drums(song, rng), "bass": _bass(song, rng), "other": _other(song, rng),
             "vocals": _vocals(song, rng)}
    return level_and_quantize(stems, rng)


def level_and_quantize(stems: dict, rng) -> dict[str, np.ndarray]:
    """Levels four rendered stems like a mix and puts them on the 16-bit grid.

    Each stem is peak-normalised and given a random level (per-stem levels vary between
    tracks, as between real mixes); the whole song then gets a peak between 0.5 and 0.8.

    Args:
        stems: ``{source: (samples, 2) array}`` for the four ``SOURCES``.
        rng: a ``np.random.Generator``.

    Returns:
        ``{"mixture", *SOURCES}`` to float32 ``(samples, 2)`` arrays of integers / 32768,
        the mixture exactly the sum of the stems.
    """
    gains = {"drums": rng.uniform(0.7, 1.0), "bass": rng.uniform(0.6, 1.0), "other": rng.uniform(0.4, 0.8),
             "vocals": rng.uniform(0.6, 1.0)}
    stems = {name: stems[name] / (np.max(np.abs(stems[name])) + 1e-12) * gains[name] for name in SOURCES}
    return mix_and_quantize(stems, rng)


def mix_and_quantize(stems: dict, rng) -> dict[str, np.ndarray]:
    """Scales levelled stems together to a random peak and puts them on the 16-bit grid.

    The song (and every stem) is scaled by one factor so that the largest peak of the
    mixture and the stems is between 0.5 and 0.8; the stems are rounded to 16-bit
    integers and the mixture is their sum, so it stays exact after writing 16-bit PCM.

    Args:
        stems: ``{source: (samples, 2) array}`` for the four ``SOURCES``, already levelled.
        rng: a ``np.random.Generator`` (draws the peak).

    Returns:
        ``{"mixture", *SOURCES}`` to float32 ``(samples, 2)`` arrays of integers / 32768.
    """
    mixture = sum(stems[name] for name in SOURCES)
    peak = max(np.max(np.abs(x)) for x in [mixture, *stems.values()])
    scale = rng.uniform(0.5, 0.8) / peak * 32768.0
    quantized = {name: np.round(stems[name] * scale) for name in SOURCES}
    quantized["mixture"] = sum(quantized[name] for name in SOURCES)
    return {name: (quantized[name] / 32768.0).astype(np.float32) for name in STEMS}
