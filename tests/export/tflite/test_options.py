"""How a song is cut for a fixed-window TFLite model (export/tflite/options.py)."""

import pytest

from tf_metatasnet.export.tflite.options import Chunking


def test_default_crossfade_is_one_second_or_a_quarter_of_a_short_chunk():
    align = 1280   # 8 kHz, stride 20: windows start on 0.16-s units
    assert Chunking.from_seconds(8000, 20).overlap == 8960          # 1 s, rounded up to units
    short = Chunking.from_seconds(8000, 20, chunk_seconds=2, overlap_seconds=None)
    assert (short.chunk, short.overlap) == (16640, 5120)             # 0.5 s, rounded up
    tiny = Chunking.from_seconds(8000, 20, chunk_seconds=0.16, overlap_seconds=None)
    assert (tiny.chunk, tiny.overlap) == (align, 0)                  # never past half the chunk


def test_a_crossfade_longer_than_half_the_chunk_is_refused():
    with pytest.raises(ValueError, match="at least twice the overlap"):
        Chunking.from_seconds(8000, 20, chunk_seconds=2, overlap_seconds=1)
