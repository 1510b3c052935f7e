"""Musical material shared by both song generators (NumPy synthesis and MIDI): scales,
chord progressions, drum and bass patterns."""

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
#: Chord progressions as 0-based scale degrees.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (5, 3, 0, 4), (0, 3, 0, 4), (1, 4, 0, 0)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2)),
}
#: Kick, snare and hi-hat patterns as sixteenth-note steps of a bar (the kick always has step 0).
KICKS = ((0, 8), (0, 8, 10), (0, 6, 8), (0, 3, 8, 11), (0, 7, 10), (0, 10))
SNARES = ((4, 12), (4, 12, 14), (4, 12, 15), (8,))
HATS = (tuple(range(0, 16, 2)), tuple(range(16)), (2, 6, 10, 14), (0, 2, 4, 6, 8, 10, 12, 13, 14))
#: Bass rhythms as (onset, length) in beats, and the interval above the root of each note.
BASS = (
    (((0, 1), (1, 1), (2, 1), (3, 1)), (0, 0, 0, 0)),
    (tuple((i / 2, 0.5) for i in range(8)), (0, 0, 12, 0, 0, 0, 12, 0)),
    (((0, 1.5), (1.5, 0.5), (2, 1.5), (3.5, 0.5)), (0, 7, 0, 12)),
    (((0, 0.75), (0.75, 0.75), (1.5, 1), (2.5, 0.5), (3, 1)), (0, 0, 7, 12, 7)),
    (((0, 2), (2, 1.5), (3.5, 0.5)), (0, 0, 7)),
)
