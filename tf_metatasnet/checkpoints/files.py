"""Model files are untrusted input: checked as files, and their configuration read and
bounded, before anything is built from them."""

from __future__ import annotations

import json
import os
import stat
import zipfile

from tf_metatasnet.config import MetaTasNetConfig

#: A ``.keras`` archive's configuration is small; a larger one is refused unread.
MAX_CONFIG_BYTES = 1 << 20
#: What this project's ``.keras`` files hold.
KERAS_CLASS = "MetaTasNet"


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


def check_model_file(path: str, what: str = "model file") -> None:
    """Raises unless ``path`` is a regular file (or a link to one), without opening it:
    ``FileNotFoundError`` if there is nothing, ``ModelFileError`` for a folder, a FIFO or a
    device, which reading would hang on or misread."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"{path}: is not a regular file (a FIFO, socket or device)")


def read_keras_config(path: str) -> MetaTasNetConfig:
    """The ``MetaTasNetConfig`` inside a ``.keras`` archive, read without building anything.

    Raises:
        ModelFileError: not a zip archive (or truncated), no configuration, a configuration
            that is not JSON, too large, or not a ``MetaTasNet``, or fields out of bounds
            (the message names the file and says which).
    """
    check_model_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                member = archive.getinfo("config.json")
            except KeyError:
                raise ModelFileError(f"{path}: a zip archive without config.json, not a .keras model") from None
            if member.file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{path}: its config.json is {member.file_size:,} bytes, more than a "
                                     f"Meta-TasNet configuration can be ({MAX_CONFIG_BYTES:,})")
            text = archive.read(member)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ModelFileError(f"{path}: not a readable .keras archive, truncated or not a zip file "
                             f"({error})") from None
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: its config.json is not JSON") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: its config.json is a {type(config).__name__}, not a model configuration")
    if config.get("class_name") != KERAS_CLASS:
        raise ModelFileError(f"{path}: holds a {config.get('class_name')!r} model, not a Meta-TasNet")
    inner = config.get("config")
    fields = inner.get("config") if isinstance(inner, dict) else None
    if not isinstance(fields, dict):
        raise ModelFileError(f"{path}: its Meta-TasNet configuration is missing or not a mapping")
    try:
        return MetaTasNetConfig.from_dict(fields)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: {error}") from None
