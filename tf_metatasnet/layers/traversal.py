"""Finding the layers inside a layer, through its public attributes.

Keras 3 has no public recursive traversal of a layer's sublayers. Every layer of this
package keeps its sublayers in public attributes (a layer, or a list or dict of them), in
the order it makes them, so :func:`sublayers` walks those.
"""

from __future__ import annotations

from typing import Iterator

import keras


def _children(value) -> Iterator[keras.Layer]:
    """The layers in an attribute's value: a layer, or a list, tuple or dict of them."""
    if isinstance(value, keras.Layer):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _children(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _children(item)


def sublayers(layer: keras.Layer) -> list[keras.Layer]:
    """Every layer inside ``layer`` (not ``layer`` itself), depth first, in the order each
    layer made them; each once."""
    found, seen = [], {id(layer)}

    def visit(parent):
        for name, value in vars(parent).items():
            if name.startswith("_"):
                continue
            for child in _children(value):
                if id(child) not in seen:
                    seen.add(id(child))
                    found.append(child)
                    visit(child)

    visit(layer)
    return found
