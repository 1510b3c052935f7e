"""Music-like multitrack songs: generated MIDI rendered by FluidSynth with a GM SoundFont.

The pure-NumPy songs of ``tf_metatasnet.data.synth.toy`` are enough to exercise the pipeline, but
they sound like test signals. A model that should show on a demo song what separation
does needs sampled instruments, so this module composes a song as MIDI (one file per
source) and renders each source with the ``fluidsynth`` program and a General MIDI
SoundFont (Debian: ``apt-get install fluidsynth fluid-soundfont-gm``):

* **drums**: a GM drum kit (standard, room, power, electronic, 808, jazz, brush) on the
  percussion channel: kick/snare/hi-hat or ride patterns, crashes on section starts, tom
  fills at the end of four-bar phrases;
* **bass**: one of the eight GM basses, a line on the chord roots (octaves and fifths);
* **other**: one or two of pianos, organs, guitars, strings, brass, pads and mallets, playing the
  chords as held pads, rhythmic stabs or arpeggios;
* **vocals**: a lead "voice" patch (choir aahs, voice oohs, synth voice, lead voice)
  singing a melody of phrases with rests, on chord tones at strong beats.

Tempo, key, mode, progression, instruments, patterns, velocities, panning and reverb are
drawn per song from the seed; each source also drops out of some two-bar sections, as in
real songs. The four sources are rendered separately (FluidSynth's reverb is linear, so
their sum is the song), then levelled by their loudness while they play (``LEVELS_DB``:
no source is quieter by design) and quantised as ``toy.synthesize_track`` does, so the
mixture is the sample-wise sum of the stems also after writing 16-bit PCM.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile

import mido
import numpy as np
import soundfile

from tf_metatasnet.data.synth import patterns, toy
from tf_metatasnet.programs import find_program
from tf_metatasnet.sources import SOURCES

#: Where Debian's ``fluid-soundfont-gm`` and similar packages put a GM SoundFont.
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
#: Ticks per quarter note of the generated MIDI files.
TICKS_PER_BEAT = 480
#: MIDI channel of the percussion (GM channel 10, 0-based 9).
DRUM_CHANNEL = 9
#: Each source's loudness while it plays (:func:`active_rms`), drawn per song uniformly
#: in this range of dB relative to a common reference. The ranges overlap and no source
#: is quieter by design, as in a mix where no part is buried, the vocals a little in
#: front. (Peak-normalising, as ``toy.level_and_quantize`` does, left "other" 8 dB below
#: the mixture, median over a test split, and down to 18 dB below it.)
LEVELS_DB = {"drums": (-3.0, 1.0), "bass": (-3.0, 1.0), "other": (-3.0, 1.0), "vocals": (-2.0, 2.0)}
#: :func:`active_rms`: frame length in seconds, and how far below the loudest frame a
#: frame may be and still count as playing, in dB.
ACTIVE_FRAME_SECONDS = 0.1
ACTIVE_FLOOR_DB = 40.0

#: GM drum kits (program numbers on the percussion channel; bank 128 of FluidR3_GM).
_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)
#: GM drum notes.
_KICK, _SNARE, _SNARE2, _CLOSED_HAT, _OPEN_HAT, _RIDE, _CRASH = 36, 38, 40, 42, 46, 51, 49
_TOMS = (50, 48, 47, 45, 43, 41)
#: GM basses: acoustic, finger, pick, fretless, slap 1/2, synth 1/2.
_BASSES = tuple(range(32, 40))
#: "Other" instruments by playing style.
#: No voice-like patch (the choir pad 91, the synth leads 80-87) is among them, so that
#: "other" is never a second lead voice that only the mix engineer could tell apart.
_PAD_PROGRAMS = (16, 17, 19, 48, 49, 50, 51, 88, 89, 90, 92, 94)  # organs, strings, pads
_STAB_PROGRAMS = (0, 1, 2, 4, 5, 24, 25, 27, 29, 61, 62)  # pianos, e-pianos, guitars, brass
_ARPEGGIO_PROGRAMS = (0, 4, 6, 8, 11, 12, 24, 25, 46)  # piano, e-piano, harpsichord, celesta, vibes, marimba, guitars, harp
#: Lead "voice" patches: choir aahs, voice oohs, synth voice, lead 6 (voice).
_VOICE_PROGRAMS = (52, 53, 54, 85)


def find_soundfont(path: "str | os.PathLike | None" = None) -> str:
    """The SoundFont to render with: ``path`` if given, else the first installed GM one."""
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: SoundFont not found")
        with open(path, "rb") as file:
            header = file.read(12)
        # A SoundFont 2 file is a RIFF file of form type "sfbk". FluidSynth itself only
        # warns about other files and renders silence with exit status 0.
        if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
            raise OSError(f"{path}: not a SoundFont 2 file (no RIFF 'sfbk' header)")
        return path
    for candidate in SOUNDFONT_CANDIDATES:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"{SOUNDFONT_CANDIDATES[0]}: no General MIDI SoundFont installed "
                            f"(e.g. apt-get install fluid-soundfont-gm), or pass one")


def find_fluidsynth() -> str:
    """The ``fluidsynth`` executable, or a one-line error saying how to install it."""
    return find_program("fluidsynth", "the fluidsynth renderer")


class _Plan:
    """One song's shared musical plan: tempo, key, chords, sections, drawn from ``rng``."""

    def __init__(self, rng, seconds):
        self.bpm = float(rng.uniform(80.0, 150.0))
        self.beat = 60.0 / self.bpm  # seconds
        self.tonic = int(rng.integers(12))
        self.mode = "major" if rng.random() < 0.6 else "minor"
        self.scale = patterns.MAJOR if self.mode == "major" else patterns.MINOR
        progressions = patterns.PROGRESSIONS[self.mode]
        self.progression = progressions[int(rng.integers(len(progressions)))]
        self.bars_per_chord = 1 if rng.random() < 0.7 else 2
        # One bar more than needed, so that release tails run past the end and are cut.
        self.bars = max(1, math.ceil(seconds / (4 * self.beat))) + 1
        sections = math.ceil(self.bars / 2)
        playable = max(1, math.floor(seconds / (8 * self.beat)))  # sections fully inside
        probability = {"drums": 0.85, "bass": 0.85, "other": 0.85, "vocals": 0.75}
        self.active = {}
        for name in SOURCES:
            active = rng.random(sections) < probability[name]
            if not active[:playable].any():
                active[int(rng.integers(playable))] = True
            self.active[name] = np.repeat(active, 2)[:self.bars]

    def chord(self, bar):
        """(root pitch class, [pitch classes]) of a bar's triad."""
        degree = self.progression[(bar // self.bars_per_chord) % len(self.progression)]
        tones = [self.scale[(degree + step) % 7] for step in (0, 2, 4)]
        return (self.tonic + tones[0]) % 12, [(self.tonic + tone) % 12 for tone in tones]

    def scale_notes(self, low, high):
        """MIDI notes of the key's scale in ``[low, high]``."""
        classes = {(self.tonic + step) % 12 for step in self.scale}
        return [note for note in range(low, high + 1) if note % 12 in classes]


class _Part:
    """Notes of one instrument as (start beat, length in beats, note, velocity)."""

    def __init__(self, channel, program, volume, pan, reverb):
        self.channel, self.program = channel, program
        self.volume, self.pan, self.reverb = volume, pan, reverb
        self.notes = []

    def add(self, start, length, note, velocity):
        self.notes.append((float(start), float(length), int(note), int(np.clip(velocity, 1, 127))))

    def to_midi(self, bpm):
        """A type-0 ``mido.MidiFile`` of this part at ``bpm``."""
        events = []  # (tick, order, message): note-offs before note-ons at the same tick
        for start, length, note, velocity in self.notes:
            on = int(round(start * TICKS_PER_BEAT))
            off = max(on + 1, int(round((start + length) * TICKS_PER_BEAT)))
            events.append((on, 1, mido.Message("note_on", channel=self.channel, note=note, velocity=velocity)))
            events.append((off, 0, mido.Message("note_off", channel=self.channel, note=note, velocity=0)))
        events.sort(key=lambda event: (event[0], event[1]))
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
        track.append(mido.Message("program_change", channel=self.channel, program=self.program, time=0))
        for control, value in ((7, self.volume), (10, self.pan), (91, self.reverb), (93, 0)):
            track.append(mido.Message("control_change", channel=self.channel, control=control,
                                      value=int(value), time=0))
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
        midi.tracks.append(track)
        return midi


def _controls(rng, center=64, spread=30):
    """Random (volume, pan, reverb send) for a part."""
    return (int(rng.integers(95, 120)), int(np.clip(center + rng.integers(-spread, spread + 1), 0, 127)),
            int(rng.integers(10, 60)))


def _drums(plan, rng):
    part = _Part(DRUM_CHANNEL, int(rng.choice(_DRUM_KITS)), *_controls(rng, spread=0))
    kicks = patterns.KICKS[int(rng.integers(len(patterns.KICKS)))]
    snares = patterns.SNARES[int(rng.integers(len(patterns.SNARES)))]
    hats = patterns.HATS[int(rng.integers(len(patterns.HATS)))]
    cymbal = _RIDE if rng.random() < 0.25 else _CLOSED_HAT
    snare = _SNARE if rng.random() < 0.7 else _SNARE2
    for bar in range(plan.bars):
        if not plan.active["drums"][bar]:
            continue
        beat0 = 4 * bar
        if bar % 2 == 0 and (bar == 0 or not plan.active["drums"][bar - 1] or rng.random() < 0.3):
            part.add(beat0, 2, _CRASH, rng.integers(90, 120))
        fill = bar % 4 == 3 and rng.random() < 0.4
        for step in range(16):
            at = beat0 + step / 4
            if fill and step >= 12:
                part.add(at, 0.25, _TOMS[(step - 12) % len(_TOMS)], rng.integers(85, 120))
                continue
            if step in kicks:
                part.add(at, 0.25, _KICK, rng.integers(95, 125))
            if step in snares:
                part.add(at, 0.25, snare, rng.integers(90, 125))
            if step in hats:
                accent = 20 if step % 4 == 0 else 0
                note = _OPEN_HAT if (cymbal == _CLOSED_HAT and step == 14 and rng.random() < 0.3) else cymbal
                part.add(at, 0.25, note, rng.integers(50, 85) + accent)
    return part


def _bass(plan, rng):
    part = _Part(0, int(rng.choice(_BASSES)), *_controls(rng, spread=8))
    rhythm, intervals = patterns.BASS[int(rng.integers(len(patterns.BASS)))]
    low = 28 + int(rng.integers(0, 8))  # lowest root: E1..B1
    for bar in range(plan.bars):
        if not plan.active["bass"][bar]:
            continue
        root, _ = plan.chord(bar)
        base = low + (root - low) % 12
        for (onset, length), interval in zip(rhythm, intervals):
            part.add(4 * bar + onset, length * 0.9, base + interval, rng.integers(80, 115))
    return part


def _other(plan, rng):
    """One or two accompaniment parts on two channels."""
    parts = []
    styles = ["pad", "stab", "arpeggio"]
    count = 1 if rng.random() < 0.5 else 2
    chosen = [styles[i] for i in rng.permutation(3)[:count]]
    for channel, style in enumerate(chosen, start=1):
        programs = {"pad": _PAD_PROGRAMS, "stab": _STAB_PROGRAMS, "arpeggio": _ARPEGGIO_PROGRAMS}[style]
        part = _Part(channel, int(rng.choice(programs)), *_controls(rng))
        octave = 48 + 12 * int(rng.integers(0, 2))
        stab_beats = ((0, 1, 2, 3), (0, 1.5, 2, 3.5), (0.5, 1.5, 2.5, 3.5), (0, 2))[int(rng.integers(4))]
        arpeggio_step = 0.5 if rng.random() < 0.6 else 0.25
        for bar in range(plan.bars):
            if not plan.active["other"][bar]:
                continue
            _, classes = plan.chord(bar)
            voicing = sorted(octave + (c - octave) % 12 for c in classes)
            if style == "pad":
                for note in voicing:
                    part.add(4 * bar, 3.95, note, rng.integers(60, 90))
            elif style == "stab":
                for onset in stab_beats:
                    velocity = rng.integers(65, 105)
                    for note in voicing:
                        part.add(4 * bar + onset, 0.4, note, velocity)
            else:
                order = voicing + [voicing[0] + 12, voicing[1] + 12] if rng.random() < 0.5 else voicing
                for i in range(int(round(4 / arpeggio_step))):
                    part.add(4 * bar + i * arpeggio_step, arpeggio_step * 0.95,
                             order[i % len(order)], rng.integers(60, 100))
        parts.append(part)
    return parts


def _vocals(plan, rng):
    part = _Part(5, int(rng.choice(_VOICE_PROGRAMS)), *_controls(rng, spread=6))
    notes = plan.scale_notes(57, 79)
    position = int(rng.integers(len(notes) // 3, 2 * len(notes) // 3))
    lengths = (0.5, 0.5, 1.0, 1.0, 1.5, 2.0)
    for bar in range(0, plan.bars, 2):
        if not plan.active["vocals"][bar]:
            continue
        # A phrase of up to two bars, then a rest of at least half a beat.
        beat, end = 4 * bar + float(rng.choice((0.0, 0.5, 1.0))), 4 * bar + 8 - 0.5
        while beat < end - 0.25:
            length = min(float(rng.choice(lengths)), end - beat)
            _, classes = plan.chord(int(beat // 4))
            if beat % 1 == 0:  # strong beats: move to a nearby chord tone
                near = [i for i, n in enumerate(notes) if n % 12 in classes and abs(i - position) <= 3]
                position = int(rng.choice(near)) if near else position
            else:
                position = int(np.clip(position + rng.choice((-2, -1, -1, 1, 1, 2)), 0, len(notes) - 1))
            part.add(beat, length * 0.95, notes[position], rng.integers(75, 115))
            beat += length
            if rng.random() < 0.12:
                beat += 0.5  # a breath
    return part


def compose(seconds: float, seed=0) -> dict:
    """The MIDI of one song: ``{source: [mido.MidiFile, ...]}``, one file per part.

    Args:
        seconds: the length the song must cover (it runs a bar longer).
        seed: anything ``np.random.default_rng`` takes; the same seed gives the same song.
    """
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    return _compose(np.random.default_rng(seed), float(seconds))


def _compose(rng, seconds):
    plan = _Plan(rng, seconds)
    parts = {"drums": [_drums(plan, rng)], "bass": [_bass(plan, rng)], "other": _other(plan, rng),
             "vocals": [_vocals(plan, rng)]}
    return {name: [part.to_midi(plan.bpm) for part in parts[name]] for name in SOURCES}


def render_midi(midi_files, rate: int = 44100, soundfont=None, gain: float = 0.4) -> np.ndarray:
    """Renders MIDI files with FluidSynth, each on its own, and returns their sum.

    Args:
        midi_files: ``mido.MidiFile`` objects.
        rate: output sample rate in Hz.
        soundfont: a ``.sf2`` path; default: ``find_soundfont()``.
        gain: FluidSynth's master gain (float output, so nothing clips).

    Returns:
        float64 ``(samples, 2)``: the longest render's length, shorter ones zero-padded.
    """
    program, soundfont = find_fluidsynth(), find_soundfont(soundfont)
    renders = []
    with tempfile.TemporaryDirectory(prefix="metatasnet-fluidsynth-") as folder:
        for index, midi in enumerate(midi_files):
            midi_path = os.path.join(folder, f"part{index}.mid")
            wav_path = os.path.join(folder, f"part{index}.wav")
            midi.save(midi_path)
            command = [program, "-ni", "-q", "-R", "1", "-C", "0", "-g", str(gain), "-r", str(int(rate)),
                       "-o", "synth.cpu-cores=1", "-T", "wav", "-O", "float", "-F", wav_path,
                       soundfont, midi_path]
            result = subprocess.run(command, capture_output=True, text=True)
            errors = [line for line in (result.stderr or "").splitlines() if "error" in line.lower()]
            if result.returncode != 0 or errors or not os.path.isfile(wav_path):
                message = errors or (result.stderr or result.stdout).strip().splitlines()
                raise OSError(f"{soundfont}: fluidsynth failed "
                                   f"({message[-1] if message else f'exit status {result.returncode}'})")
            audio, _ = soundfile.read(wav_path, dtype="float64", always_2d=True)
            renders.append(audio)
    length = max(len(audio) for audio in renders)
    total = np.zeros((length, 2))
    for audio in renders:
        total[:len(audio)] += audio[:, :2] if audio.shape[1] >= 2 else np.repeat(audio, 2, axis=1)
    return total


def render_track(seconds: float, rate: int = 44100, seed=0, soundfont=None) -> dict[str, np.ndarray]:
    """One FluidSynth song: the four stems and their mixture, like ``toy.synthesize_track``.

    Returns:
        ``{"mixture", "drums", "bass", "other", "vocals"}`` to float32 ``(samples, 2)``
        arrays on the 16-bit grid, the mixture the exact sum of the stems.
    """
    if int(rate) != rate or rate < 8000:
        raise ValueError(f"rate must be an integer of at least 8000 Hz, got {rate!r}")
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    samples = max(int(round(seconds * rate)), 1)
    rng = np.random.default_rng(seed)
    midi = _compose(rng, float(seconds))
    stems = {}
    for name in SOURCES:
        audio = render_midi(midi[name], int(rate), soundfont=soundfont)[:samples]
        stems[name] = np.pad(audio, ((0, samples - len(audio)), (0, 0)))
    return toy.mix_and_quantize(level_stems(stems, int(rate), rng), rng)


def active_rms(audio: np.ndarray, rate: int) -> float:
    """A stem's RMS while it plays: over the frames within ``ACTIVE_FLOOR_DB`` of its loudest.

    Sources drop out of whole sections, so the plain RMS would call a part that plays
    half the song 3 dB quieter than it sounds.

    Args:
        audio: ``(samples, channels)``.
        rate: its sample rate in Hz (frames are ``ACTIVE_FRAME_SECONDS`` long).

    Returns:
        the RMS over all channels of the playing frames (a signal shorter than a frame
        is one frame); 0.0 for silence.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size == 0:
        return 0.0
    frame = min(max(int(round(ACTIVE_FRAME_SECONDS * rate)), 1), len(audio))
    count = len(audio) // frame  # a last partial frame is left out
    frames = audio[:count * frame].reshape(count, frame, -1)  # (frames, frame, channels)
    power = np.mean(frames ** 2, axis=(1, 2))  # (frames,)
    if not np.max(power) > 0:
        return 0.0
    playing = power >= np.max(power) * 10.0 ** (-ACTIVE_FLOOR_DB / 10.0)
    return float(np.sqrt(np.mean(power[playing])))


def level_stems(stems: dict, rate: int, rng) -> dict[str, np.ndarray]:
    """Gives each stem a loudness while it plays drawn from ``LEVELS_DB``, as in a mix.

    Args:
        stems: ``{source: (samples, 2) array}`` for the four sources.
        rate: their sample rate in Hz.
        rng: a ``np.random.Generator`` (one draw per source, in ``SOURCES`` order).

    Returns:
        the levelled stems, float64; a silent stem stays silent.
    """
    levelled = {}
    for name in SOURCES:
        low, high = LEVELS_DB[name]
        gain = 10.0 ** (rng.uniform(low, high) / 20.0)
        rms = active_rms(stems[name], rate)
        levelled[name] = np.asarray(stems[name], dtype=np.float64) * (gain / rms if rms > 0 else 0.0)
    return levelled
