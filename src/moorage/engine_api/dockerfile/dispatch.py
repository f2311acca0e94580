"""Stage resolution at dispatch time: which names are images, in the engine's order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from moorage.engine_api.dockerfile.errors import DockerfileError
from moorage.engine_api.dockerfile.gotext import _go_equal_fold_ascii, _go_lower, _go_parse_int
from moorage.engine_api.dockerfile.instructions import _instructions
from moorage.engine_api.dockerfile.lex import _Env, _expand
from moorage.engine_api.dockerfile.parser import _parse

__all__ = ["COPY_FROM", "FROM", "ImageRef", "image_references"]

FROM = "FROM"
"""The ``instruction`` of an :class:`ImageRef` for a stage's base image."""
COPY_FROM = "COPY --from"
"""The ``instruction`` of an :class:`ImageRef` for the source of ``COPY --from``."""


@dataclass(frozen=True)
class ImageRef:
    """An image a build reads: the name as the engine resolves it, after ARG expansion.

    ``ref`` may be anything the engine's image lookup accepts (``daemon/images/image.go:GetImage``):
    a name with tag or digest, a full or short image ID, a ``sha256:`` digest. ``line`` is the
    1-based line where the instruction starts; ``instruction`` is ``"FROM"`` or ``"COPY --from"``.
    """

    ref: str
    line: int
    instruction: str


# Characters that can appear in anything distribution/reference.ParseAnyReference accepts.
_RE_REFERENCE_CHARS = re.compile(r"[A-Za-z0-9._:/@+-]+")
# builder/dockerfile/buildargs.go: builtinAllowedBuildArgs, visible to FROM without an ARG.
_BUILTIN_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
)


def _visible_args(meta: Mapping[str, str | None], build_args: Mapping[str, str | None]) -> _Env:
    """buildargs.go: getAllFromMapping over the ARGs before FROM plus the builtin proxy args.

    A build arg overrides a value only when it is not null (``getBuildArg``: ``ok && v != nil``);
    a null one (the CLI's ``--build-arg NAME`` with NAME unset in its environment) leaves the
    default. An ARG without a default and without a build arg is unset, not empty.
    """
    values: dict[str, str] = {}
    for key in [*meta, *(k for k in _BUILTIN_ARGS if k not in meta)]:
        override = build_args.get(key)
        if override is not None:
            values[key] = override
        elif (default := meta.get(key)) is not None:
            values[key] = default
    return _Env(values)


def _check_ref(ref: str, line: int, what: str) -> str:
    """A name no image lookup can accept (``ParseAnyReference`` and then the pull both refuse it)
    fails the build; say so now rather than hand the caller something that isn't a name."""
    if not _RE_REFERENCE_CHARS.fullmatch(ref):
        raise DockerfileError(f"{what} {ref!r} is not an image reference the engine can read", line)
    return ref


def image_references(
    dockerfile: bytes, build_args: Mapping[str, str | None], *, target: str = ""
) -> list[ImageRef]:
    """Every image a classic-builder build of ``dockerfile`` reads, in the engine's order.

    ``build_args`` is the decoded ``buildargs`` query (a ``null`` value is ``None``); ``target``
    is the ``target`` query, which makes the engine build only the stages up to that one. Stage
    references (by name, case-insensitively, or by index for ``COPY --from``) and ``scratch``
    are not images and are left out. Raises :class:`DockerfileError` wherever the engine would
    fail the build while reading names, or where Moorage can't be sure how the engine reads one.
    """
    nodes, escape = _parse(dockerfile)
    meta_instructions, stages = _instructions(nodes, escape)

    # builder.go: build: a target truncates the stages (instructions.HasStage uses EqualFold).
    if target:
        for position, stage in enumerate(stages):
            if _go_equal_fold_ascii(target, stage.name) and stage.name:
                stages = stages[: position + 1]
                break
        else:
            raise DockerfileError(f"failed to reach build target {target} in Dockerfile")

    # builder.go: processMetaArg. Every name and value of one ARG is expanded with the args
    # visible before it; then they are added in order, and ``ARG X`` resets X's default.
    meta: dict[str, str | None] = {}
    for pairs, line in meta_instructions:
        env = _visible_args(meta, build_args)
        expanded = [
            (
                _expand(key, escape, env, line, "ARG"),
                None if value is None else _expand(value, escape, env, line, "ARG"),
            )
            for key, value in pairs
        ]
        for key, value in expanded:
            meta[key] = value
    env = _visible_args(meta, build_args)  # dispatchers.go: getExpandedString (GetAllMeta)

    refs: list[ImageRef] = []
    names: set[str] = set()  # evaluator.go: stagesBuildResults.indexed (lower-cased names)
    built = 0  # len(stagesBuildResults.flat)
    for stage in stages:
        if stage.name and stage.name in names:
            raise DockerfileError(f"{stage.name} stage name already used", stage.line)
        # dispatchers.go: initializeStage. An empty platform after expansion fails platforms.Parse.
        if stage.platform and not _expand(stage.platform, escape, env, stage.line, "FROM --platform"):
            raise DockerfileError(
                f"failed to parse platform {stage.platform!r}: it expands to nothing", stage.line
            )
        base = _expand(stage.base, escape, env, stage.line, "FROM")
        if base == "":  # dispatchers.go: getFromImage
            raise DockerfileError(f"base name ({stage.base}) should not be blank", stage.line)
        # dispatchers.go: getImageOrStage: an earlier stage's name first, then scratch (exactly).
        if _go_lower(base) not in names and base != "scratch":
            refs.append(ImageRef(_check_ref(base, stage.line, FROM), stage.line, FROM))
        for copy in stage.copies:
            # dispatchers.go: dispatchCopy -> getImageMount -> stagesBuildResults.get
            if copy.source == "" or _go_lower(copy.source) in names:
                continue
            index = _go_parse_int(copy.source)
            if index is None:
                refs.append(ImageRef(_check_ref(copy.source, copy.line, COPY_FROM), copy.line, COPY_FROM))
            elif index == built:
                message = f"invalid from flag value {copy.source}: refers to current build stage"
                raise DockerfileError(message, copy.line)
            elif not 0 <= index < built:
                message = f"invalid from flag value {copy.source}: index out of bounds"
                raise DockerfileError(message, copy.line)
        if stage.name:
            names.add(stage.name)
        built += 1
    return refs
