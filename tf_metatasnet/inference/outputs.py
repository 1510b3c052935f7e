"""Where the separator writes: every output path planned and checked before anything is
written, the folders made and checked before any work, removed again if a song fails.

:func:`plan_outputs` turns inputs, an output folder and a filename template into one path
per stem and refuses the whole plan, with one line naming the problem, if a path would
leave the output folder, land on an input, or be planned twice. Paths that hold an
earlier run's stems are fine: those are replaced, as demucs and spleeter do.
"""

from __future__ import annotations

import os
import string
import tempfile
from typing import Iterable, Sequence

#: The fields of a filename template.
TEMPLATE_FIELDS = ("track", "stem", "ext")


class OutputError(ValueError):
    """Outputs that cannot be written as asked; the message names the file or the template
    and the problem."""


def check_template(template: str) -> None:
    """Raises :class:`OutputError` unless ``template`` names a file from ``{track}``,
    ``{stem}`` and ``{ext}`` alone (no other field, attribute, index or format)."""
    if not template or not template.strip():
        raise OutputError("--filename: the template is empty")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise OutputError(f"--filename {template!r}: not a template ({error})") from None
    fields = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            raise OutputError(f"--filename {template!r}: unknown field {{{field}}} "
                              f"(use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)})")
        fields.add(field)
    if "stem" not in fields:
        raise OutputError(f"--filename {template!r}: has no {{stem}}, so every stem would go to one file")


def track_name(path: str) -> str:
    """The ``{track}`` of an input: its file name without the extension (and ``.stem``)."""
    track = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return track[:-len(".stem")] if track.endswith(".stem") else track


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def plan_outputs(inputs: Sequence[str], output_dir: str, stems: Sequence[str], template: str,
                 ext: str) -> dict[str, dict[str, str]]:
    """``{input: {stem: output path}}`` for every input, checked as a whole.

    Raises:
        OutputError: a bad template, a track name that cannot name files (``.``, ``..``,
            empty), a path outside ``output_dir``, an output that is one of the inputs, or
            two outputs on one path; nothing has been written then.
    """
    check_template(template)
    folder = _real(output_dir)
    real_inputs = {_real(path): path for path in inputs}
    planned: dict[str, tuple[str, str]] = {}       # real output path -> (input, stem)
    plan = {}
    for path in inputs:
        track = track_name(path)
        if track in ("", ".", "..") or os.sep in track or (os.altsep and os.altsep in track):
            raise OutputError(f"{path}: its name gives the track name {track!r}, which cannot name "
                              f"output files; rename the file")
        targets = {}
        for stem in stems:
            name = template.format(track=track, stem=stem, ext=ext)
            target = os.path.normpath(os.path.join(os.fspath(output_dir), name))
            real = _real(target)
            if os.path.isabs(name) or not _inside(real, folder) or real == folder:
                raise OutputError(f"{path}: --filename {template!r} puts the {stem} stem at {target}, "
                                  f"outside the output folder {output_dir}")
            if real in real_inputs:
                raise OutputError(f"{real_inputs[real]}: --filename {template!r} would write the "
                                  f"{stem} stem of {path} over this input")
            if real in planned:
                other, other_stem = planned[real]
                raise OutputError(f"{target}: both the {other_stem} stem of {other} and the {stem} "
                                  f"stem of {path} would be written there; give --filename a "
                                  f"{{track}} (and {{stem}})")
            if os.path.isdir(target):
                raise OutputError(f"{target}: is a folder; the {stem} stem of {path} cannot be written there")
            planned[real] = (path, stem)
            targets[stem] = target
        plan[path] = targets
    return plan


def check_writable(paths: Iterable[str]) -> list[str]:
    """Fails early, before any work, when an output folder cannot be written.

    Returns the folders it created (deepest last), to be removed again if the song fails.
    """
    created = []
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        missing, parent = [], directory
        while not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        try:
            os.makedirs(directory, exist_ok=True)
            created.extend(reversed(missing))
        except OSError as error:
            raise OutputError(f"{directory}: cannot create the output folder ({error.strerror})") from None
        try:
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            raise OutputError(f"{directory}: the output folder is not writable ({error.strerror})") from None
    return created


def remove_empty(folders) -> None:
    """Removes folders this run created, deepest first, where they are still empty."""
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass
