"""``export saved-model`` never deletes what it did not write, and takes only safe names."""

import pytest
from snapshot import leftovers, one_line_error, snapshot

from tf_metatasnet.cli import main


def _export(tiny_model_file, base, *extra):
    return main(["export", "saved-model", "--model", str(tiny_model_file), "-o", str(base), "--instrument", *extra])


@pytest.mark.slow  # four exports of the tiny model (about 19 s)
def test_an_existing_version_is_refused_and_only_a_savedmodel_is_replaced(tiny_model_file, tmp_path, capsys):
    base = tmp_path / "serving"
    mine = base / "metatasnet" / "1"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(base)
    assert _export(tiny_model_file, base) == 1
    assert "already exists; --overwrite replaces it" in one_line_error(capsys, mine)
    assert _export(tiny_model_file, base, "--overwrite") == 1
    assert "is not a SavedModel (no saved_model.pb); it is not replaced" in one_line_error(capsys, mine)
    assert snapshot(base) == before and not leftovers(tmp_path)

    (mine / "notes.txt").unlink()
    mine.rmdir()
    assert _export(tiny_model_file, base) == 0
    (mine / "marker").write_text("from the first export")
    capsys.readouterr()
    assert _export(tiny_model_file, base) == 1                  # the SavedModel stays without --overwrite
    assert "already exists" in one_line_error(capsys, mine)
    assert _export(tiny_model_file, base, "--overwrite") == 0
    assert (mine / "saved_model.pb").is_file() and not (mine / "marker").exists()   # replaced whole
    assert not leftovers(tmp_path)


def test_a_foreign_models_config_is_not_replaced(tiny_model_file, tmp_path, capsys):
    base = tmp_path / "serving"
    base.mkdir()
    (base / "models.config").write_text("# my own server's config\n")
    assert _export(tiny_model_file, base) == 1
    assert "is not a TF Serving model config; it is not replaced" in one_line_error(capsys, base / "models.config")
    assert sorted(p.name for p in base.iterdir()) == ["models.config"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", ".hidden", "with space"])
def test_names_are_single_safe_folder_names(name, tiny_model_file, tmp_path, capsys):
    assert _export(tiny_model_file, tmp_path / "serving", "--name", name) == 1
    assert f"--name {name!r}: a model name is letters" in one_line_error(capsys)
    assert not (tmp_path / "serving").exists() and not (tmp_path / "escape").exists()
