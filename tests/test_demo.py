"""The demo: the bundled song, ``run_demo`` end to end, ``metatasnet demo`` and the default model."""

import json
import os
import struct

import keras
import museval
import numpy as np
import pytest
import soundfile

import tf_metatasnet as tm
from tf_metatasnet import assets
from tf_metatasnet import demo as demo_module
from tf_metatasnet.cli import main
from tf_metatasnet.data.musdb import read_stem_folder
from tf_metatasnet.demo import FIGURE_DPI, FIGURE_INCHES, format_demo_table, render_demo_song, run_demo
from tf_metatasnet.export.tflite.metadata import model_version

SOURCES = ("drums", "bass", "other", "vocals")
STAGES = ["loading", "separating", "scoring", "figure", "tflite"]
#: How far (dB of SDR) the default model must beat the better trivial estimate on the demo
#: song, per instrument (measured: drums 5.4, bass 4.9, other 2.0, vocals 3.2 dB; the
#: README has the test split's scores).
DEMO_MARGIN_DB = 1.5


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A 3 s song rendered like the bundled one, with another seed."""
    folder = tmp_path_factory.mktemp("song")
    render_demo_song(folder, seconds=3, seed=(1, 2, 0))
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tm.save_model(tm.build_model("tiny"), path)
    return str(path)


@pytest.fixture(scope="module")
def demo(song, model_file, tmp_path_factory):
    """``run_demo`` on the tiny model, TFLite included (weights rounded to nearest: GPTQ's
    statistics would double the export time; tests/test_export_tflite.py tests them), its
    progress calls and the ``(estimates, keyword arguments, result)`` of each
    ``museval.evaluate`` call."""
    calls, scored = [], []
    evaluate = museval.evaluate

    def spy(references, estimates, **kwargs):
        result = evaluate(references, estimates, **kwargs)
        scored.append((np.array(estimates), kwargs, result))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(museval, "evaluate", spy)
        result = run_demo(tmp_path_factory.mktemp("demo") / "out", model_file, song,
                          progress=lambda *call: calls.append(call), weight_rounding="nearest")
    return result, calls, scored


def _stems(folder):
    return np.stack([soundfile.read(os.path.join(folder, f"{name}.flac"), dtype="float32",
                                    always_2d=True)[0] for name in SOURCES])  # (S, T, C)


def _medians(values):
    return [float(np.nanmedian(row)) for row in values]


def test_the_shipped_demo_song_is_small_stereo_and_aligned():
    folder = assets.demo_song_dir()
    infos = [soundfile.info(os.path.join(folder, f"{name}.flac")) for name in SOURCES]
    assert all((i.samplerate, i.channels, i.format, i.subtype) == (44100, 2, "FLAC", "PCM_16") for i in infos)
    assert len({i.frames for i in infos}) == 1
    assert infos[0].frames == round(demo_module.DEMO_SECONDS * 44100)
    assert sum(os.path.getsize(os.path.join(folder, f"{name}.flac")) for name in SOURCES) <= 2_000_000


def test_demo_writes_the_mixture_and_stems_at_the_song_format(demo, song):
    result, _, _ = demo
    references = _stems(song)
    mixture, rate = soundfile.read(result.mixture, dtype="float32", always_2d=True)
    assert rate == 44100 and mixture.shape == references.shape[1:] == (3 * 44100, 2)
    np.testing.assert_array_equal(mixture, references.sum(0))
    assert result.seconds == 3.0
    for name in SOURCES:
        assert result.stems[name] == os.path.join(result.output_dir, "stems", f"{name}.wav")
        stem, rate = soundfile.read(result.stems[name], always_2d=True)
        assert rate == 44100 and stem.shape == mixture.shape and np.isfinite(stem).all()
    leftovers = [name for _, _, files in os.walk(result.output_dir) for name in files if name.startswith(".")]
    assert not leftovers


def test_demo_scores_are_museval_of_the_written_stems(demo, song):
    """The model's scores against an independent museval run; the baselines' museval runs
    (three runs per song are slow: those are checked through the demo's calls)."""
    result, _, scored = demo
    references = _stems(song)
    estimates = np.stack([soundfile.read(result.stems[name], dtype="float32", always_2d=True)[0]
                          for name in SOURCES])
    sdr, isr, sir, sar = museval.evaluate(references, estimates, win=44100, hop=44100)
    for metric, values in (("SDR", sdr), ("SIR", sir), ("SAR", sar), ("ISR", isr)):
        assert [result.table[name][metric] for name in SOURCES] == pytest.approx(_medians(values), abs=1e-6)
    mixture = references.sum(0)
    assert len(scored) == 3 and all(kwargs == {"win": 44100, "hop": 44100} for _, kwargs, _ in scored)
    np.testing.assert_array_equal(scored[0][0], estimates)
    for (given, _, (baseline, *_)), (name, gain) in zip(scored[1:], (("mixture", 1.0), ("mixture/4", 0.25))):
        np.testing.assert_array_equal(given, np.stack([mixture * gain] * 4))
        assert [result.table[s][f"SDR {name}"] for s in SOURCES] == pytest.approx(_medians(baseline), abs=1e-6)
    with open(result.scores) as file:
        assert json.load(file) == result.table
    text = format_demo_table(result).splitlines()
    assert text[0].split() == ["source", "SDR", "SIR", "SAR", "ISR", "SDR", "mixture", "SDR", "mixture/4"]
    assert [line.split()[0] for line in text[1:]] == list(SOURCES)
    assert text[1].split()[1] == f"{result.table['drums']['SDR']:.2f}"


def test_demo_figure_is_a_png_of_the_documented_size(demo):
    result, _, _ = demo
    with open(result.figure, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (FIGURE_INCHES[0] * FIGURE_DPI, FIGURE_INCHES[1] * FIGURE_DPI)


def test_demo_exports_loadable_tflite_models(demo, model_file):
    from ai_edge_litert.interpreter import Interpreter

    result, _, _ = demo
    assert [os.path.basename(path) for path in result.tflite] == [f"{s}_dynamic.tflite" for s in SOURCES]
    for path in result.tflite:
        assert os.path.dirname(path) == os.path.join(result.output_dir, "tflite")
        Interpreter(model_path=path).allocate_tensors()
        with open(path[:-7] + ".json") as file:
            metadata = json.load(file)
        assert metadata["quantization"] == "dynamic" and metadata["model_version"] == model_version(model_file)
        assert metadata["weight_rounding"] == "nearest"


def test_demo_reports_every_stage_in_order(demo):
    _, calls, _ = demo
    stages = [stage for stage, _, _ in calls]
    assert sorted(set(stages), key=stages.index) == STAGES
    for stage in STAGES:
        last = [call for call in calls if call[0] == stage][-1]
        assert last[1] == pytest.approx(last[2])


@pytest.mark.slow
def test_cli_demo_with_the_default_model_beats_the_trivial_estimates(tmp_path, capsys):
    """`metatasnet demo` as the README runs it (bundled model and song), without TFLite:
    the trained default model must beat both trivial estimates on every instrument."""
    out = tmp_path / "out"
    assert main(["demo", "-o", str(out), "--no-tflite"]) == 0
    printed = capsys.readouterr()
    with open(out / "scores.json") as file:
        table = json.load(file)
    assert format_demo_table(table) in printed.out
    for path in ("mixture.wav", "spectrograms.png", "scores.json", "stems"):
        assert str(out / path) in printed.out
    assert "tflite" not in os.listdir(out)
    assert "separating" in printed.err  # the progress bars
    assert soundfile.info(str(out / "mixture.wav")).frames == round(demo_module.DEMO_SECONDS * 44100)
    for name in SOURCES:
        floor = max(table[name]["SDR mixture"], table[name]["SDR mixture/4"])
        assert table[name]["SDR"] > floor + DEMO_MARGIN_DB, (name, table[name])


def test_cli_demo_with_a_missing_model_fails_in_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    assert main(["demo", "-o", str(tmp_path / "out"), "--model", str(missing), "--no-tflite"]) != 0
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("metatasnet: error: ") and str(missing) in error


def test_run_demo_rejects_unknown_tflite_settings_before_separating(song, model_file, tmp_path):
    calls = []
    for settings, message in [({"quantization": "int8"}, "exports float32, float16, dynamic"),
                              ({"weight_rounding": "up"}, "unknown weight rounding 'up'")]:
        with pytest.raises(ValueError, match=message):
            run_demo(tmp_path / "out", model_file, song, progress=lambda *call: calls.append(call),
                     **settings)
    assert calls == [] and not (tmp_path / "out").exists()


def test_missing_assets_are_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="default_model.keras: no bundled default model") as error:
        assets.default_model_path(tmp_path)
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)
    with pytest.raises(FileNotFoundError, match=r"drums.flac: no bundled demo song"):
        assets.demo_song_dir(tmp_path)
    (tmp_path / "default_model.keras").write_bytes(b"")
    assert assets.default_model_path(tmp_path) == str(tmp_path / "default_model.keras")
    assert assets.demo_song_dir() == os.path.join(assets.assets_dir(), "demo_song")


def test_separate_without_model_uses_the_default_and_says_when_it_is_missing(tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setattr(assets, "assets_dir", lambda: str(tmp_path))
    status = main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(error) == 1
    assert error[0].startswith("metatasnet: error: ") and "default_model.keras" in error[0]


@pytest.mark.slow
def test_the_bundled_default_model_loads_and_is_small():
    path = assets.default_model_path()
    assert os.path.getsize(path) <= 5_000_000
    model = tm.load_model(path)
    assert tuple(model.sources) == SOURCES
    assert os.path.isfile(os.path.join(assets.assets_dir(), assets.DEFAULT_MODEL_CONFIG))


def test_spectrogram_db_puts_a_sine_in_its_bin():
    rate = 44100
    frequency = 46 * rate / demo_module.N_FFT  # on bin 46 (about 990 Hz): no scalloping
    t = np.arange(rate) / rate
    audio = np.stack([np.sin(2 * np.pi * frequency * t)] * 2, axis=1)  # (frames, channels)
    values = demo_module.spectrogram_db(audio)
    assert values.shape == (demo_module.N_FFT // 2 + 1, 1 + rate // demo_module.HOP)
    middle = values[:, values.shape[1] // 2]
    assert int(np.argmax(middle)) == 46
    # np.hanning(N) sums to (N - 1) / 2, so a unit sine gives |X| = (N - 1) / 4 at its bin.
    assert middle.max() == pytest.approx(20 * np.log10((demo_module.N_FFT - 1) / 4), abs=0.01)


def test_render_demo_song_reproduces_the_shipped_song(tmp_path):
    render_demo_song(tmp_path)
    shipped = assets.demo_song_dir()
    for name in SOURCES:
        a = soundfile.read(os.path.join(shipped, f"{name}.flac"), dtype="int16")[0]
        b = soundfile.read(tmp_path / f"{name}.flac", dtype="int16")[0]
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_read_stem_folder_errors_name_the_folder_or_file(tmp_path):
    render_demo_song(tmp_path, seconds=1.0)
    soundfile.write(tmp_path / "bass.flac", np.zeros((100, 2), "float32"), 44100, subtype="PCM_16")
    with pytest.raises(ValueError, match="differ in rate, length or channels"):
        read_stem_folder(tmp_path)
    (tmp_path / "bass.flac").write_bytes(b"not audio")
    with pytest.raises(OSError, match="bass.flac: cannot read"):
        read_stem_folder(tmp_path)
