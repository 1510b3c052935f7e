"""The TF Serving client separates songs through a server like a local separation."""

import json
import urllib.request

import numpy as np
import pytest
from tf_serving_stub import start_grpc_server, start_rest_server

from tf_metatasnet.data.synth.toy import synthesize_track
from tf_metatasnet.inference.backends.serving import RestBackend, ServingError, serving_backend
from tf_metatasnet.inference.separator import Separator, make_separator

CHUNKING = dict(chunk_seconds=1.28, context_seconds=0.32, overlap_seconds=0.32)


@pytest.fixture(scope="module")
def servers(tiny_export):
    model, base = tiny_export
    models = {"metatasnet": str(base / "metatasnet"), "metatasnet_vocals": str(base / "metatasnet_vocals")}
    rest, url = start_rest_server(models)
    grpc_server, target = start_grpc_server(models)
    yield model, url, target
    rest.shutdown()
    grpc_server.stop(None)


@pytest.fixture(scope="module")
def song():
    return synthesize_track(4.0, 22050, seed=3)["mixture"]   # (frames, 2): several windows


@pytest.mark.slow
def test_rest_client_separates_a_song_like_the_local_separator(servers, song):
    model, url, _ = servers
    local = Separator(model, jit_compile=False, **CHUNKING).separate(song, 22050)
    served = make_separator("serving", f"{url}/v1/models/metatasnet/versions/3", **CHUNKING).separate(song, 22050)
    assert list(served) == ["drums", "bass", "other", "vocals"]
    for name in local:
        assert served[name].shape == song.shape
        np.testing.assert_allclose(served[name], local[name], rtol=1e-3, atol=1e-4)


def test_grpc_client_gives_the_rest_clients_result(servers, song):
    _, url, target = servers
    rest = make_separator("serving", f"{url}/v1/models/metatasnet_vocals", **CHUNKING).separate(song, 22050)
    grpc = make_separator("serving", f"grpc://{target}/metatasnet_vocals", **CHUNKING).separate(song, 22050)
    assert list(rest) == list(grpc) == ["vocals"]                   # one instrument: scaled by std
    np.testing.assert_allclose(grpc["vocals"], rest["vocals"], rtol=1e-5, atol=1e-6)


def test_requests_follow_tf_servings_json_format(servers):
    _, url, _ = servers
    window = {f"mixture_{rate}": np.zeros((1, 2560 * rate // 8000)).tolist() for rate in (8000, 16000, 32000)}
    columnar = json.dumps({"signature_name": "serving_default", "inputs": window}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/models/metatasnet:predict", columnar)) as r:
        outputs = json.loads(r.read())["outputs"]
    assert sorted(outputs) == ["bass", "drums", "other", "vocals"] and np.shape(outputs["vocals"]) == (1, 10240)
    rows = json.dumps({"instances": [{name: value[0] for name, value in window.items()}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/models/metatasnet:predict", rows)) as r:
        predictions = json.loads(r.read())["predictions"]
    np.testing.assert_allclose(predictions[0]["drums"], outputs["drums"][0], atol=1e-6)


def test_backend_choice_and_errors(servers):
    _, url, _ = servers
    assert serving_backend(f"{url}/v1/models/metatasnet_bass").sources == ("bass",)
    assert serving_backend(f"{url}/v1/models/metatasnet").rescale == "lstsq"
    with pytest.raises(ValueError, match="must start with"):
        serving_backend("ftp://host/metatasnet")
    missing = RestBackend(f"{url}/v1/models/nothing")
    with pytest.raises(ServingError, match="HTTP 404"):
        missing([np.zeros((1, 2560), np.float32), np.zeros((1, 5120), np.float32),
                 np.zeros((1, 10240), np.float32)])


def test_separate_command_uses_the_server(servers, song, tmp_path):
    import soundfile

    from tf_metatasnet.cli import main

    _, url, _ = servers
    soundfile.write(tmp_path / "song.wav", song, 22050, subtype="FLOAT")
    assert main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out"),
                 "--server", f"{url}/v1/models/metatasnet_vocals", "--chunk-seconds", "1.28",
                 "--context-seconds", "0.32", "--overlap-seconds", "0.32"]) == 0
    written, rate = soundfile.read(tmp_path / "out" / "song" / "vocals.wav")
    expected = make_separator("serving", f"{url}/v1/models/metatasnet_vocals", **CHUNKING).separate(song, 22050)
    assert rate == 22050 and written.shape == song.shape
    np.testing.assert_allclose(written, expected["vocals"], atol=1e-6)
    assert main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "x"),
                 "--model", str(tmp_path / "none.keras")]) == 1  # a missing model
