"""The Android demo's plain-Java core (android_demo/core): compiled with javac and tested
with JUnit 4 against test vectors that Python writes, so Java and Python agree sample for
sample. Needs a JDK and JUnit 4: ``apt-get install openjdk-17-jdk-headless junit4``."""

import importlib.util
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from locations import REPO

ROOT = str(REPO)
CORE = os.path.join(ROOT, "android_demo", "core")
VECTORS = os.path.join(CORE, "src", "test", "resources", "vectors")
JARS = ["/usr/share/java/junit4.jar", "/usr/share/java/hamcrest-core.jar"]
INSTALL = "apt-get install openjdk-17-jdk-headless junit4"


def _load_vector_tool():
    path = os.path.join(ROOT, "android_demo", "tools", "make_test_vectors.py")
    spec = importlib.util.spec_from_file_location("make_test_vectors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_are_what_python_writes_now(tmp_path):
    """The vectors cannot go stale: regenerated from the current Python code, they equal
    the committed ones (arrays to float32 rounding, to allow for another machine's libm)."""
    _load_vector_tool().write_vectors(str(tmp_path))
    committed, fresh = sorted(os.listdir(VECTORS)), sorted(os.listdir(tmp_path))
    assert committed == fresh, "run python android_demo/tools/make_test_vectors.py"
    for name in fresh:
        ours, theirs = os.path.join(VECTORS, name), os.path.join(tmp_path, name)
        if name.endswith(".f32"):
            np.testing.assert_allclose(np.fromfile(ours, "<f4"), np.fromfile(theirs, "<f4"),
                                       rtol=1e-6, atol=1e-7, err_msg=name)
        elif name.endswith(".wav"):
            for a, b in zip(sf.read(ours, dtype="float32", always_2d=True),
                            sf.read(theirs, dtype="float32", always_2d=True)):
                np.testing.assert_array_equal(a, b, err_msg=name)
            assert sf.info(ours).subtype == sf.info(theirs).subtype, name
        else:
            with open(ours) as a, open(theirs) as b:
                assert json.load(a) == json.load(b), f"{name} differs: run make_test_vectors.py"


@pytest.fixture(scope="module")
def junit_run(tmp_path_factory):
    """Compiles the core and its tests with javac and runs them all with JUnit 4."""
    missing = [tool for tool in ("javac", "java") if shutil.which(tool) is None]
    missing += [jar for jar in JARS if not os.path.exists(jar)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found; install them with `{INSTALL}`", pytrace=False)
    work = tmp_path_factory.mktemp("android_core")
    classes, wav_out = work / "classes", work / "wav"
    classes.mkdir()
    wav_out.mkdir()
    sources = sorted(os.path.join(folder, name) for source_root in ("main", "test")
                     for folder, _, names in os.walk(os.path.join(CORE, "src", source_root, "java"))
                     for name in names if name.endswith(".java"))
    classpath = os.pathsep.join(JARS)
    compiled = subprocess.run(["javac", "-encoding", "UTF-8", "-Xlint:all", "-Werror", "--release", "17",
                               "-d", str(classes), "-cp", classpath, *sources],
                              capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stdout}{compiled.stderr}"
    tests = [os.path.relpath(path, os.path.join(CORE, "src", "test", "java"))[:-5].replace(os.sep, ".")
             for path in sources if path.endswith("Test.java")]
    runtime = os.pathsep.join([str(classes), os.path.join(CORE, "src", "test", "resources"), *JARS])
    run = subprocess.run(["java", f"-Dtfmetatasnet.wavOut={wav_out}", "-cp", runtime,
                          "org.junit.runner.JUnitCore", *tests],
                         capture_output=True, text=True, timeout=300)
    return run, tests, wav_out


def test_java_core_passes_its_junit_tests(junit_run):
    run, tests, _ = junit_run
    assert len(tests) >= 6
    assert run.returncode == 0 and "OK (" in run.stdout, f"JUnit failed:\n{run.stdout}{run.stderr}"


@pytest.mark.parametrize("encoding", ["pcm16", "float32"])
def test_java_written_wav_reads_back_in_soundfile(junit_run, encoding):
    _, _, wav_out = junit_run
    with open(os.path.join(VECTORS, "index.json")) as f:
        spec = json.load(f)["wav"]
    samples = np.fromfile(os.path.join(VECTORS, spec["samples"]), "<f4").reshape(spec["channels"], -1)
    path = os.path.join(wav_out, f"java_{encoding}.wav")
    assert os.path.exists(path), "the JUnit run wrote no WAV files"
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames) == (spec["rate"], *samples.shape)
    if encoding == "float32":
        assert info.subtype == "FLOAT"
        np.testing.assert_array_equal(sf.read(path, dtype="float32")[0].T, samples)
    else:
        assert info.subtype == "PCM_16"
        tool = _load_vector_tool()
        np.testing.assert_array_equal(sf.read(path, dtype="int16")[0].T, tool.pcm16(samples))
