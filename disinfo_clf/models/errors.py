"""The error every model-loading step raises."""
from __future__ import annotations


class ModelDirectoryError(FileNotFoundError):
    """A model directory that is missing, incomplete or corrupt; the message names the file."""
