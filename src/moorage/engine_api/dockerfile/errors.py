"""The one error of the Dockerfile reader."""

from __future__ import annotations

__all__ = ["DockerfileError"]


class DockerfileError(ValueError):
    """The Dockerfile can't be read the way the engine reads it; the build must be refused."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        text = f"Dockerfile line {line}: {message}" if line is not None else f"Dockerfile: {message}"
        super().__init__(text)


class _InstructionError(Exception):
    """An error in one instruction; its line is added where it is caught."""
