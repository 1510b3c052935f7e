"""The package's import surface: ``metatasnet --help`` without TensorFlow, lazy public names."""

import subprocess
import sys

import pytest

import tf_metatasnet as tm

CHECK = """
import contextlib, io, sys
import tf_metatasnet
from tf_metatasnet import cli
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    cli.main(["--help"])
assert "separate" in out.getvalue() and "demo" in out.getvalue(), out.getvalue()
for command in (["separate"], ["evaluate"], ["train"], ["demo"], ["export", "tflite"], ["prepare"]):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        cli.main([*command, "--help"])
    assert "usage: metatasnet " + " ".join(command) in out.getvalue(), out.getvalue()
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("heavy:", heavy)
"""


def test_help_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_lazy_public_names_are_the_modules_objects():
    from tf_metatasnet.checkpoints import saving
    from tf_metatasnet.checkpoints.pretrained import from_preset
    from tf_metatasnet.inference.separator import Separator
    from tf_metatasnet.models import metatasnet as model

    assert tm.load_model is saving.load_model and tm.save_model is saving.save_model
    assert tm.MetaTasNet is model.MetaTasNet and tm.build_model is model.build_model
    assert tm.from_preset is from_preset and tm.Separator is Separator
    assert set(tm.__all__) <= set(dir(tm))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tm.nothing
