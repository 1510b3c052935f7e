"""FluidSynth songs (``tf_metatasnet.data.synth.midi_songs``), rendered by the real fluidsynth program."""

import os

import mido
import numpy as np
import pytest

from tf_metatasnet.cli import main
from tf_metatasnet.data.synth import dataset, midi_songs
from tf_metatasnet.sources import SOURCES, STEMS


def _notes(midi):
    """(channel, note) of every note-on with a velocity in a MIDI file."""
    return [(m.channel, m.note) for m in midi if m.type == "note_on" and m.velocity > 0]


def _programs(midi):
    return {m.channel: m.program for m in midi if m.type == "program_change"}


def test_compose_writes_one_gm_part_per_instrument_on_the_right_channels():
    for seed in range(6):
        parts = midi_songs.compose(12.0, seed=seed)
        assert set(parts) == set(SOURCES)
        drums, = parts["drums"]
        assert {channel for channel, _ in _notes(drums)} == {midi_songs.DRUM_CHANNEL}
        assert _programs(drums)[midi_songs.DRUM_CHANNEL] in midi_songs._DRUM_KITS
        assert {note for _, note in _notes(drums)} >= {midi_songs._KICK}
        bass, = parts["bass"]
        assert set(_programs(bass).values()) <= set(midi_songs._BASSES)
        assert max(note for _, note in _notes(bass)) < 60  # a bass line, below middle C
        vocals, = parts["vocals"]
        assert set(_programs(vocals).values()) <= set(midi_songs._VOICE_PROGRAMS)
        # A monophonic lead: no two voice notes overlap.
        time, sounding = 0, 0
        for message in vocals.tracks[0]:
            time += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding += 1
                assert sounding == 1, f"seed {seed}: overlapping voice notes at tick {time}"
            elif message.type in ("note_off", "note_on"):
                sounding -= 1
        assert 1 <= len(parts["other"]) <= 2
        accompaniment = set().union(midi_songs._PAD_PROGRAMS, midi_songs._STAB_PROGRAMS,
                                    midi_songs._ARPEGGIO_PROGRAMS)
        for part in parts["other"]:
            assert set(_programs(part).values()) <= accompaniment
            assert _notes(part)
    # No voice-like patch in the accompaniment: the choir pad and the synth leads.
    assert not accompaniment & ({91} | set(range(80, 88)) | set(midi_songs._VOICE_PROGRAMS))


def test_active_rms_counts_only_the_frames_that_play():
    rate = 1000
    rng = np.random.default_rng(0)
    playing = rng.normal(0.0, 0.3, (2000, 2))
    audio = np.concatenate([playing, np.zeros((3000, 2)), 1e-6 * playing[:500]])  # a rest, a whisper
    expected = np.sqrt(np.mean(playing ** 2))  # frames of 0.1 s: 20 playing frames out of 55
    assert midi_songs.active_rms(audio, rate) == pytest.approx(expected, rel=1e-12)
    assert midi_songs.active_rms(np.zeros((100, 2)), rate) == 0.0
    # Shorter than a frame: the whole signal is one frame.
    assert midi_songs.active_rms(playing[:37], rate) == pytest.approx(np.sqrt(np.mean(playing[:37] ** 2)))


def test_level_stems_sets_each_loudness_while_playing_from_its_range():
    rate = 1000
    rng = np.random.default_rng(3)
    stems = {name: rng.normal(0.0, scale, (4000, 2)) for name, scale in zip(SOURCES, (1.0, 0.01, 3.0, 0.2))}
    stems["other"][:2000] = 0.0  # "other" rests for half the song: its level is while it plays
    draws = np.random.default_rng(9)
    levelled = midi_songs.level_stems(stems, rate, np.random.default_rng(9))
    for name in SOURCES:  # one draw per source, in SOURCES order
        low, high = midi_songs.LEVELS_DB[name]
        expected_db = draws.uniform(low, high)
        assert 20 * np.log10(midi_songs.active_rms(levelled[name], rate)) == pytest.approx(expected_db, abs=1e-9)
        gain = levelled[name][-1, 0] / stems[name][-1, 0]
        np.testing.assert_allclose(levelled[name], stems[name] * gain, rtol=1e-12)  # a pure gain
    silent = dict(stems, bass=np.zeros((4000, 2)))
    assert not np.any(midi_songs.level_stems(silent, rate, np.random.default_rng(0))["bass"])


def test_compose_is_deterministic_and_varies_with_the_seed():
    def signature(seed):
        parts = midi_songs.compose(10.0, seed=seed)
        return [(name, [(m.type, m.bytes()) for m in part]) for name in SOURCES for part in parts[name]]

    assert signature((1, 2)) == signature((1, 2))
    assert signature((1, 2)) != signature((1, 3))
    tempi = {round(mido.tempo2bpm(next(m.tempo for m in midi_songs.compose(5.0, seed=s)["bass"][0]
                                        if m.type == "set_tempo"))) for s in range(8)}
    assert len(tempi) >= 5


def test_render_track_gives_exact_sum_on_the_16_bit_grid():
    audio = midi_songs.render_track(6.0, 22050, seed=5)
    assert set(audio) == set(STEMS)
    for name, stem in audio.items():
        assert stem.shape == (6 * 22050, 2) and stem.dtype == np.float32
        assert np.array_equal(stem * 32768.0, np.round(stem * 32768.0)), name
    np.testing.assert_array_equal(audio["mixture"], sum(audio[name] for name in SOURCES))
    peak = np.max(np.abs(audio["mixture"]))
    assert 0.5 - 1e-4 <= max(np.max(np.abs(x)) for x in audio.values()) <= 0.8 + 1e-4 and peak > 0.1
    for name in SOURCES:  # every instrument sounds
        assert np.sqrt(np.mean(audio[name].astype(np.float64) ** 2)) > 1e-3, name
    # Levelled by loudness while playing: any two sources within the ranges' spread.
    loudness = {name: 20 * np.log10(midi_songs.active_rms(audio[name], 22050)) for name in SOURCES}
    for a in SOURCES:
        for b in SOURCES:
            spread = midi_songs.LEVELS_DB[a][1] - midi_songs.LEVELS_DB[b][0]
            assert loudness[a] - loudness[b] <= spread + 0.1, (a, b, loudness)
    again = midi_songs.render_track(6.0, 22050, seed=5)
    for name in STEMS:
        np.testing.assert_array_equal(audio[name], again[name])


def test_rendered_instruments_have_their_register():
    """Bass energy sits low and drums are broadband: checks the render, not the MIDI."""
    for seed in (0, 7):
        audio = midi_songs.render_track(8.0, 16000, seed=seed)

        def spectrum(name):
            x = audio[name].mean(axis=1).astype(np.float64)
            return np.fft.rfftfreq(len(x), 1 / 16000), np.abs(np.fft.rfft(x)) ** 2

        def centroid(name):
            frequencies, power = spectrum(name)
            return float(np.sum(power * frequencies) / np.sum(power))

        def above_2khz(name):
            frequencies, power = spectrum(name)
            return float(np.sum(power[frequencies > 2000]) / np.sum(power))

        assert centroid("bass") < 400
        assert centroid("bass") < min(centroid("drums"), centroid("vocals"), centroid("other"))
        assert above_2khz("drums") > 0.08 > 0.02 > above_2khz("bass")


@pytest.mark.slow
def test_make_toy_dataset_with_fluidsynth_reads_back_through_musdb(tmp_path):
    import musdb

    root = tmp_path / "fs"
    paths = dataset.make_toy_dataset(root, tracks=2, test_tracks=1, seconds=2.0, renderer="fluidsynth", seed=1)
    assert len(paths) == 3
    db = musdb.DB(root=str(root), is_wav=True, subsets="test")
    track, = db.tracks
    assert track.audio.shape == (88200, 2)
    expected = midi_songs.render_track(2.0, 44100, seed=(1, 1, 0))
    np.testing.assert_allclose(track.targets["vocals"].audio, expected["vocals"], atol=1e-6)
    np.testing.assert_allclose(track.audio, expected["mixture"], atol=1e-6)


def test_cli_renderer_option_and_clear_errors(tmp_path, monkeypatch, capsys):
    assert main(["make-toy-dataset", "-o", str(tmp_path / "a"), "--tracks", "1", "--test-tracks", "0",
                 "--seconds", "1", "--renderer", "fluidsynth"]) == 0
    assert (tmp_path / "a" / "train").is_dir()
    capsys.readouterr()
    missing = tmp_path / "none.sf2"
    assert main(["make-toy-dataset", "-o", str(tmp_path / "b"), "--tracks", "1", "--renderer", "fluidsynth",
                 "--soundfont", str(missing)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and str(missing) in errors[0] and "SoundFont not found" in errors[0]
    # Without the program on PATH (a real condition, not a mock of it).
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install fluidsynth"):
        dataset.make_toy_dataset(tmp_path / "c", tracks=1, renderer="fluidsynth")
    with pytest.raises(ValueError, match="renderer must be one of"):
        dataset.make_toy_dataset(tmp_path / "d", tracks=1, renderer="timidity")
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_a_soundfont_fluidsynth_cannot_load_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(os.urandom(64))
    with pytest.raises(OSError, match="broken.sf2: not a SoundFont 2 file"):
        midi_songs.render_track(1.0, 8000, seed=0, soundfont=bad)
    # One that passes the header check but that fluidsynth rejects (it then renders
    # silence with exit status 0, so its error messages must be caught).
    truncated = tmp_path / "truncated.sf2"
    truncated.write_bytes(b"RIFF" + (1000).to_bytes(4, "little") + b"sfbk" + bytes(20))
    with pytest.raises(OSError, match="truncated.sf2: fluidsynth failed"):
        midi_songs.render_track(1.0, 8000, seed=0, soundfont=truncated)
