"""The backend contract, run the same way through all three backends: Keras in this
process, TF Serving (a real SavedModel behind TF Serving's REST API) and TFLite."""

import numpy as np
import pytest
import soundfile
from tf_serving_stub import start_rest_server

from tf_metatasnet.cli import main
from tf_metatasnet.data.synth.toy import synthesize_track
from tf_metatasnet.export.tflite.export import export_tflite
from tf_metatasnet.export.tflite.options import Chunking
from tf_metatasnet.inference.backends import BACKENDS
from tf_metatasnet.inference.backends.base import Backend
from tf_metatasnet.inference.backends.factory import make_backend
from tf_metatasnet.inference.backends.keras import KerasBackend
from tf_metatasnet.inference.separator import Separator, make_separator

RATE = 22050
#: A window the TFLite model is exported for and the others are given too (base samples).
CHUNKING = dict(chunk_seconds=0.64, context_seconds=0.32, overlap_seconds=0.16)


@pytest.fixture(scope="module")
def targets(tiny_export, tmp_path_factory):
    """``{backend name: what make_backend takes}`` for one seeded tiny model, and the model."""
    model, base = tiny_export
    server, url = start_rest_server({"metatasnet": str(base / "metatasnet"),
                                     "metatasnet_vocals": str(base / "metatasnet_vocals")})
    chunking = Chunking.from_seconds(8000, 20, **CHUNKING)
    folder = tmp_path_factory.mktemp("contract-tflite")
    [tflite] = export_tflite(model, folder, ["vocals"], ["float32"], chunking, version="contract")
    yield model, {"keras": model, "serving": f"{url}/v1/models/metatasnet", "tflite": tflite}
    server.shutdown()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, targets):
    _, found = targets
    options = {"jit_compile": False} if request.param == "keras" else {}
    return make_backend(request.param, found[request.param], **options)


def _inputs(backend, items=2, seed=0):
    """``items`` normalised random windows at each of the backend's rates."""
    window = backend.window or 40 * backend.stride * 4
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((items, window * rate // backend.rates[0])).astype(np.float32)
            for rate in backend.rates]


def test_names_cover_every_backend_and_unknown_ones_fail():
    assert BACKENDS == ("keras", "serving", "tflite")
    with pytest.raises(ValueError, match=r"unknown backend 'onnx' \(choose from keras, serving, tflite\)"):
        make_backend("onnx", None)


def test_a_backend_describes_itself_consistently(backend):
    assert isinstance(backend, Backend) and backend.name in BACKENDS and backend.check() is backend
    # The model's stride, or (TFLite) the windows' alignment, a multiple of it.
    assert backend.rates == (8000, 16000, 32000) and backend.stride % 20 == 0
    assert set(backend.sources) <= {"drums", "bass", "other", "vocals"}
    assert backend.rescale == ("lstsq" if len(backend.sources) > 1 else "std")
    assert backend.window is None or backend.window % backend.stride == 0


def test_a_chunk_gives_one_estimate_per_source_equal_to_the_keras_models(backend, targets):
    model, _ = targets
    inputs = _inputs(backend)
    estimates = backend.separate_chunk(inputs)
    assert estimates.dtype == np.float32 and np.isfinite(estimates).all()
    assert estimates.shape == (2, len(backend.sources), inputs[-1].shape[1])
    np.testing.assert_array_equal(backend(inputs), estimates)      # a segment_fn for apply_chunked
    reference = KerasBackend(model, jit_compile=False).separate_chunk(inputs)
    index = [model.sources.index(name) for name in backend.sources]
    np.testing.assert_allclose(estimates, reference[:, index], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_a_separator_runs_a_song_through_any_backend(backend, targets):
    model, _ = targets
    song = synthesize_track(2.0, RATE, seed=4)["mixture"]          # (frames, 2): several windows
    stems = Separator(backend, **CHUNKING).separate(song, RATE)
    assert list(stems) == list(backend.sources)
    assert all(stem.shape == song.shape and np.isfinite(stem).all() for stem in stems.values())
    local = Separator(model, jit_compile=False, **CHUNKING).separate(song, RATE)
    if backend.rescale == "lstsq":   # the same model and chunks: the same stems
        for name in stems:
            np.testing.assert_allclose(stems[name], local[name], rtol=1e-3, atol=1e-4)


def test_a_separator_by_name_takes_the_tflite_models_own_chunking(targets):
    _, found = targets
    separator = make_separator("tflite", found["tflite"])
    assert separator.sources == ("vocals",) and separator.chunk + 2 * separator.context == separator.backend.window
    with pytest.raises(ValueError, match="windows are fixed by its metadata; chunk_seconds cannot be changed"):
        make_separator("tflite", found["tflite"], chunk_seconds=2.0)
    with pytest.raises(ValueError, match="the serving backend needs a model: the server's URL"):
        make_separator("serving")
    with pytest.raises(TypeError, match="KerasBackend needs a MetaTasNet, got str"):
        Separator("model.keras")


@pytest.mark.slow
def test_the_cli_chooses_the_backend_by_name(targets, tmp_path, capsys):
    _, found = targets
    song = tmp_path / "song.wav"
    soundfile.write(song, synthesize_track(1.0, RATE, seed=5)["mixture"], RATE)
    assert main(["separate", str(song), "-o", str(tmp_path / "tflite"), "--backend", "tflite",
                 "--model", found["tflite"]]) == 0
    assert sorted(p.name for p in (tmp_path / "tflite" / "song").iterdir()) == ["vocals.wav"]
    assert main(["separate", str(song), "-o", str(tmp_path / "served"), "--server", found["serving"],
                 "--chunk-seconds", "0.64", "--context-seconds", "0.32"]) == 0
    assert sorted(p.name for p in (tmp_path / "served" / "song").iterdir()) == [
        "bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    capsys.readouterr()
    for argv, message in [(["--backend", "serving"], "--backend serving needs --server URL"),
                          (["--backend", "tflite"], "--backend tflite needs --model FILE.tflite"),
                          (["--model", found["tflite"]], "a TFLite model; add --backend tflite"),
                          (["--backend", "tflite", "--model", found["tflite"], "--chunk-seconds", "3"],
                           "windows are fixed by its metadata")]:
        assert main(["separate", str(song), "-o", str(tmp_path / "x"), *argv]) == 1
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
