"""The four sources, in the order every part of the project uses (the authors' order).

This module is the one home of the names: the model's outputs, the CLI's choices, the
synthetic songs' stems, the datasets' sources and the exported models all read them from
here. It imports nothing, so ``metatasnet --help`` can list them without TensorFlow.
"""

#: The sources a model separates, in the order of its outputs.
SOURCES: tuple[str, ...] = ("drums", "bass", "other", "vocals")

#: The stems of a MUSDB18 track: the mixture, then the sources.
STEMS: tuple[str, ...] = ("mixture",) + SOURCES
