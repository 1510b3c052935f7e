"""``metatasnet prepare``: the toy MUSDB18 resampled once into the ``musdb_multirate`` TFDS dataset.

Everything is real: the conftest's toy datasets read by the ``musdb`` package, soxr, TFDS
building and reading files under ``tmp_path``. References are computed here independently
(musdb + ``soxr.resample``), not through the code under test.
"""

import json
import os
import shutil

import musdb
import numpy as np
import pytest
import soundfile
import soxr
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_metatasnet.audio import resample
from tf_metatasnet.cli import main
from tf_metatasnet.data.cache import PreparedDataset, PrepareError, open_prepared
from tf_metatasnet.data.musdb_multirate import config_name, segment_starts
from tf_metatasnet.data.prepare import prepare_musdb

SOURCES = ("drums", "bass", "other", "vocals")
RATES = (8000, 16000, 32000)
SOURCE_RATE = 44100
CROP = 1.0  # s: 6-s tracks give several segments
CROP_FRAMES = 8000
SEGMENT = 16000
MUSDB_SPLITS = {"train": {"subsets": "train", "split": "train"},
                "valid": {"subsets": "train", "split": "valid"},
                "test": {"subsets": "test"}}


def _musdb_tracks(root, is_wav, split):
    return list(musdb.DB(root=str(root), is_wav=is_wav, **MUSDB_SPLITS[split]).tracks)


def _reference(track):
    """``{rate: (frames, 4, 2) float64}``: each source through soxr, cut/padded to the spec'd length."""
    audio = [np.asarray(track.sources[name].audio, np.float64) for name in SOURCES]  # (n, 2) each
    base = round(len(audio[0]) * RATES[0] / SOURCE_RATE)
    out = {}
    for rate in RATES:
        frames = base * rate // RATES[0]
        block = np.zeros((frames, 4, 2))
        for index, source in enumerate(audio):
            converted = soxr.resample(source, SOURCE_RATE, rate, quality="VHQ")
            count = min(frames, len(converted))
            block[:count, index] = converted[:count]
        out[rate] = block
    return out


def _expected_starts(length, train):
    """The spec's segment starts, written out independently of ``segment_starts``."""
    if length <= SEGMENT:
        return [0]
    if not train:
        return [SEGMENT * k for k in range(-(-length // SEGMENT))]
    starts, start = [], 0
    while start + SEGMENT <= length:
        starts.append(start)
        start += CROP_FRAMES
    if starts[-1] + SEGMENT < length:
        starts.append(length - SEGMENT)
    return starts


def _snr(reference, estimate):
    return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2))


# Writing and reading the AAC stems costs about 20 s: that layout runs with the slow tests.
@pytest.fixture(scope="module", params=["wav", pytest.param("stem", marks=pytest.mark.slow)])
def prepared(request, tmp_path_factory):
    """``(layout, musdb root, PreparedDataset, progress calls)`` for both MUSDB18 layouts."""
    layout = request.param
    root = request.getfixturevalue(f"toy_musdb_{layout}")
    calls = []
    dataset = prepare_musdb(root, tmp_path_factory.mktemp(f"cache-{layout}"), is_wav=layout == "wav",
                            crop_seconds=CROP, progress=lambda *args: calls.append(args))
    return layout, root, dataset, calls


@pytest.fixture(scope="module")
def examples(prepared):
    """``{split: [example as NumPy dict]}`` read back through ``as_dataset``."""
    _, _, dataset, _ = prepared
    return {split: list(tfds.as_numpy(dataset.as_dataset(split))) for split in dataset.splits}


@pytest.fixture(scope="module")
def references(prepared):
    """``{split: {track: {rate: (frames, 4, 2)}}}``, from musdb and soxr directly."""
    layout, root, _, _ = prepared
    return {split: {track.name: _reference(track) for track in _musdb_tracks(root, layout == "wav", split)}
            for split in MUSDB_SPLITS}


def test_segment_starts_and_config_names():
    assert segment_starts(48000, 8000, 16000, overlap=True) == [0, 8000, 16000, 24000, 32000]
    assert segment_starts(48185, 8000, 16000, overlap=True) == [0, 8000, 16000, 24000, 32000, 32185]
    assert segment_starts(48185, 8000, 16000, overlap=False) == [0, 16000, 32000, 48000]
    assert segment_starts(9000, 8000, 16000, overlap=True) == [0]
    assert segment_starts(16000, 8000, 16000, overlap=False) == [0]
    assert config_name((11025, 22050, 44100), 2.25) == "r11025-22050-44100_crop2p25"
    assert config_name(RATES, 8.0) == "r8000-16000-32000_crop8"
    assert config_name((8000, 16000), 0.5) == "r8000-16000_crop0p5"


def test_splits_hold_musdbs_tracks(prepared, examples):
    layout, root, dataset, calls = prepared
    cache = dataset.cache_dir
    for split in MUSDB_SPLITS:
        names = sorted(track.name for track in _musdb_tracks(root, layout == "wav", split))
        assert dataset.splits[split] == names
        assert dataset.segments[split] == len(examples[split]) > len(names)
        assert dataset.track_segments[split] == {
            name: sum(example["track"].decode() == name for example in examples[split]) for name in names}
    assert [len(dataset.splits[split]) for split in MUSDB_SPLITS] == [2, 1, 2]
    assert (dataset.rates, dataset.crop_frames, dataset.segment_frames) == (RATES, CROP_FRAMES, SEGMENT)
    assert dataset.config_name == "r8000-16000-32000_crop1"
    assert os.path.isfile(os.path.join(dataset.dataset_dir, "dataset_info.json"))
    assert dataset.dataset_dir == os.path.join(cache, "musdb_multirate", dataset.config_name, "1.0.0")
    assert not os.path.exists(os.path.join(cache, "resampled"))  # deleted after the build
    assert sorted(os.listdir(cache)) == ["musdb_multirate", "prepared.json"]  # no temporaries left
    assert open_prepared(cache) == dataset
    with open(os.path.join(cache, "prepared.json"), encoding="utf-8") as file:
        record = json.load(file)
    assert record["format_version"] == 1 and record["rates"] == list(RATES)
    assert record["splits"]["valid"]["tfds_split"] == "validation"
    # The builder is a plain TFDS builder: TFDS reads it back on its own too.
    builder = tfds.builder_from_directory(dataset.dataset_dir)
    assert builder.name == "musdb_multirate"
    assert {name: info.num_examples for name, info in builder.info.splits.items()} == {
        "train": dataset.segments["train"], "validation": dataset.segments["valid"],
        "test": dataset.segments["test"]}
    # Progress: every track once in each phase, ending at the total.
    for stage in ("resample", "build"):
        done = [call[1:] for call in calls if call[0] == stage]
        assert done[0] == (0, 5) and done[-1] == (5, 5)


def test_every_example_has_the_right_shapes_dtypes_and_starts(prepared, examples, references):
    _, _, dataset, _ = prepared
    for split, found in examples.items():
        seen = {}
        for example in found:
            assert isinstance(example["track"], bytes)
            name = example["track"].decode()
            assert dataset.splits[split][example["track_id"]] == name
            for key, dtype in [("track_id", np.int32), ("segment", np.int32), ("track_segments", np.int32),
                               ("start", np.int64), ("num_frames", np.int32), ("scale", np.float32)]:
                assert example[key].dtype == dtype and example[key].shape == (), key
            assert example["mixture_std"].dtype == np.float32 and example["mixture_std"].shape == (3,)
            assert example["scale"] > 0
            for rate in RATES:
                sources = example[f"sources_{rate}"]
                assert sources.dtype == np.float32 and sources.shape == (SEGMENT * rate // 8000, 4, 2)
                # Past num_frames: zero padding.
                assert not np.any(sources[example["num_frames"] * rate // 8000:])
            seen.setdefault(name, {})[int(example["segment"])] = example
        assert sorted(seen) == dataset.splits[split]
        for name, segments in seen.items():
            length = len(references[split][name][8000])
            starts = _expected_starts(length, train=split == "train")
            assert sorted(segments) == list(range(len(starts)))
            assert [int(segments[i]["start"]) for i in range(len(starts))] == starts
            for index, start in enumerate(starts):
                assert segments[index]["track_segments"] == len(starts)
                assert segments[index]["num_frames"] == min(SEGMENT, length - start)
    # Train segments overlap by half (hop = crop), the others tile the track.
    assert any(int(example["start"]) == CROP_FRAMES for example in examples["train"])
    assert all(int(example["start"]) % SEGMENT == 0 for example in examples["test"])


def test_sources_equal_soxr_resampling_of_the_musdb_track(prepared, examples, references):
    for split, found in examples.items():
        for example in found:
            reference = references[split][example["track"].decode()]
            peak = max(np.max(np.abs(block)) for block in reference.values())
            assert example["scale"] == pytest.approx(peak, rel=1e-5)  # the track's peak, all rates
            step = example["scale"] / 32767
            for rate in RATES:
                factor = rate // 8000
                start, count = int(example["start"]) * factor, int(example["num_frames"]) * factor
                stored = example[f"sources_{rate}"][:count]
                np.testing.assert_allclose(stored, reference[rate][start:start + count],
                                           rtol=0, atol=0.5 * step + 1e-6)  # int16 precision


def test_rates_are_aligned(examples):
    margin = 400  # frames at 8 kHz (50 ms) left out at each end: resampler edge effects
    checked = 0
    for found in examples.values():
        for example in found:
            count = int(example["num_frames"])
            if count < 4 * margin:
                continue
            low = example["sources_8000"][:count].reshape(count, 8)  # (frames, sources x channels)
            for rate in RATES[1:]:
                high = example[f"sources_{rate}"][:count * rate // 8000].reshape(-1, 8)
                down = resample(high, rate, 8000)[:count]
                snr = _snr(low[margin:-margin], down[margin:-margin])
                assert snr > 30, (example["track"], int(example["start"]), rate, snr)
                checked += 1
    assert checked >= 30


def test_mixture_std_is_the_std_of_the_mono_mixture(examples, references):
    for split, found in examples.items():
        for example in found:
            reference = references[split][example["track"].decode()]
            expected = [np.std(reference[rate].sum(axis=1).mean(axis=1)) for rate in RATES]
            np.testing.assert_allclose(example["mixture_std"], expected, rtol=1e-4)


def test_as_dataset_splits_for_input_pipelines_and_keeps_int16(prepared, examples):
    _, _, dataset, _ = prepared
    keys = sorted((example["track"], int(example["segment"])) for example in examples["train"])
    parts = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline)
        parts.append([(example["track"], int(example["segment"])) for example in tfds.as_numpy(
            dataset.as_dataset("train", shuffle_files=True, seed=0, input_context=context))])
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == keys
    raw = next(iter(tfds.as_numpy(dataset.as_dataset("validation", decode=False))))
    assert raw["sources_8000"].dtype == np.int16
    decoded = [example for example in examples["valid"]
               if example["track"] == raw["track"] and example["segment"] == raw["segment"]][0]
    np.testing.assert_allclose(raw["sources_8000"] * raw["scale"] / np.float32(32767),
                               decoded["sources_8000"], rtol=1e-6, atol=1e-9)  # float32 rounding
    with pytest.raises(PrepareError, match="unknown split 'training'"):
        dataset.as_dataset("training")


def _mtimes(folder):
    """``{path relative to folder: mtime in ns}`` of everything under ``folder``."""
    paths = [os.path.join(parent, name) for parent, dirs, files in os.walk(folder) for name in dirs + files]
    return {os.path.relpath(path, folder): os.stat(path).st_mtime_ns for path in paths}


@pytest.mark.slow
def test_rerunning_skips_finished_work_and_redoes_interrupted_tracks(toy_musdb_wav, tmp_path):
    cache = tmp_path / "cache"
    first = prepare_musdb(toy_musdb_wav, cache, is_wav=True, crop_seconds=CROP, keep_resampled=True)
    resampled = cache / "resampled"
    tracks = sorted(str(path.relative_to(resampled)) for path in resampled.glob("*/*"))
    assert len(tracks) == 5
    meta = json.loads((resampled / tracks[0] / "meta.json").read_text())
    assert set(meta) >= {"track", "split", "source_rate", "rates", "scale", "mixture_std", "frames"}
    assert meta["rates"] == list(RATES) and meta["source_rate"] == SOURCE_RATE
    assert meta["frames"] == [48000 * rate // 8000 for rate in RATES]  # 6 s at each rate, exactly
    stored = np.load(resampled / tracks[0] / "32000.npy")
    assert stored.dtype == np.int16 and stored.shape == (6 * 32000, 4, 2)
    assert np.abs(stored).max() <= 32767
    before = _mtimes(cache)

    # The same arguments again: nothing is read, resampled or rebuilt.
    calls = []
    again = prepare_musdb(toy_musdb_wav, cache, is_wav=True, crop_seconds=CROP, keep_resampled=True,
                          progress=lambda *args: calls.append(args))
    assert again == first and calls == []
    assert _mtimes(cache) == before

    # An interrupted run: prepared.json not written yet, one track only in a temporary folder.
    redone = tracks[-1]
    original = (resampled / redone / "16000.npy").read_bytes()
    (cache / "prepared.json").unlink()
    shutil.rmtree(resampled / redone)
    leftover = resampled / os.path.dirname(redone) / ".tmp-interrupted"
    leftover.mkdir()
    (leftover / "8000.npy").write_bytes(b"half a file")
    calls = []
    third = prepare_musdb(toy_musdb_wav, cache, is_wav=True, crop_seconds=CROP, keep_resampled=True,
                          progress=lambda *args: calls.append(args))
    assert third == first
    assert [call for call in calls if call[0] == "build"][-1] == ("build", 5, 5)  # rebuilt
    assert not leftover.exists()
    assert (resampled / redone / "16000.npy").read_bytes() == original
    after = _mtimes(resampled)
    for track in tracks[:-1]:  # the finished tracks were not rewritten
        for name in ("meta.json", "8000.npy", "16000.npy", "32000.npy"):
            key = os.path.join("resampled", track, name)
            assert after[os.path.relpath(key, "resampled")] == before[key]
    assert len(list(tfds.as_numpy(third.as_dataset("test")))) == first.segments["test"]

    # Without keep_resampled, a built cache drops resampled/ and keeps the dataset.
    prepare_musdb(toy_musdb_wav, cache, is_wav=True, crop_seconds=CROP)
    assert not resampled.exists() and open_prepared(cache) == first


def _write_wav_track(folder, broken=()):
    folder.mkdir(parents=True)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (4410, 2))
    for stem in ("mixture",) + SOURCES:
        if stem in broken:
            (folder / f"{stem}.wav").write_bytes(b"RIFF not really a wav file")
        else:
            soundfile.write(folder / f"{stem}.wav", audio, SOURCE_RATE, subtype="PCM_16")


@pytest.mark.parametrize("case, match", [
    ("missing root", r"nowhere: no such MUSDB18 folder"),
    ("wav without --is-wav", r"no tracks found in the train split .*use --is-wav"),
    pytest.param("stem with --is-wav", r"no tracks found in the train split .*drop --is-wav", marks=pytest.mark.slow),
    ("no valid tracks", r"no tracks found in the valid split"),
    ("unreadable stem file", r"track 'Broken - Song' \(train split\) is unreadable"),
    ("unreadable wav source", r"track 'Broken - Song' \(test split\) is unreadable"),
    ("rates not multiples", r"rates 8000, 12000: they must be increasing and each a multiple of the first"),
    ("rates decreasing", r"rates 16000, 8000: they must be increasing"),
    ("crop zero", r"crop_seconds must be positive"),
    ("crop negative", r"crop_seconds must be positive"),
    ("unknown split", r"splits must be among train, valid, test, got training"),
])
def test_errors_are_one_line_and_say_what_is_wrong(case, match, toy_musdb_wav, tmp_path, request):
    root, kwargs = toy_musdb_wav, {"is_wav": True}
    if case == "missing root":
        root = tmp_path / "nowhere"
    elif case == "wav without --is-wav":
        kwargs = {}
    elif case == "stem with --is-wav":
        root = request.getfixturevalue("toy_musdb_stem")
    elif case == "no valid tracks":
        root = tmp_path / "musdb"
        _write_wav_track(root / "train" / "Some - Song")
        kwargs["splits"] = ("valid",)
    elif case == "unreadable stem file":
        root, kwargs = tmp_path / "musdb", {"splits": ("train",)}
        (root / "train").mkdir(parents=True)
        (root / "train" / "Broken - Song.stem.mp4").write_bytes(bytes(range(256)) * 16)
    elif case == "unreadable wav source":
        root = tmp_path / "musdb"
        _write_wav_track(root / "test" / "Broken - Song", broken=("drums",))
        kwargs["splits"] = ("test",)
    elif case.startswith("rates"):
        kwargs["rates"] = (8000, 12000) if case == "rates not multiples" else (16000, 8000)
    elif case.startswith("crop"):
        kwargs["crop_seconds"] = 0.0 if case == "crop zero" else -1.0
    else:
        kwargs["splits"] = ("training",)
    with pytest.raises(PrepareError, match=match) as raised:
        prepare_musdb(root, tmp_path / "cache", **kwargs)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "cache" / "prepared.json").exists()


def test_open_prepared_says_to_run_prepare(tmp_path):
    with pytest.raises(PrepareError, match=r"prepared.json is missing; run metatasnet prepare"):
        open_prepared(tmp_path)


def test_cli_prepare(toy_musdb_wav, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["prepare", "--musdb", str(toy_musdb_wav), "--is-wav", "-o", str(cache),
                 "--crop-seconds", "1", "--splits", "valid,test"]) == 0
    out = capsys.readouterr().out
    assert "valid: 1 track(s), 3 segment(s) of 2 s" in out and "test: 2 track(s), 6 segment(s)" in out
    assert f"data: {{cache_dir: {cache}}}" in out
    dataset = open_prepared(cache)
    assert isinstance(dataset, PreparedDataset) and sorted(dataset.splits) == ["test", "valid"]

    assert main(["prepare", "--musdb", str(tmp_path / "nowhere"), "-o", str(cache)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("metatasnet: error: ") and "no such MUSDB18 folder" in err[-1]
