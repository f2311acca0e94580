"""The images a classic-builder Dockerfile reads, found the way Docker Engine 20.10 finds them. Pure.

The modules follow the engine's own stages, in reading order: ``gotext`` (Go's string rules),
``parser`` (lines to instruction nodes), ``instructions`` (the stages and the ARGs before FROM),
``lex`` (variable expansion) and ``dispatch`` (stage resolution, :func:`image_references`).

``POST /build`` with the classic builder (Engine 20.10.24, ``builder/dockerfile/``) reads other
images in two places: the base of every stage (``FROM <image>``, unless the name is an earlier
stage's or ``scratch``) and the source of ``COPY --from=<image>`` (unless the value names an earlier
stage or is a stage index). A tenancy check has to see each of those names exactly as the engine
resolves them, so this module re-implements the engine's reading rather than approximating it:

- the line reader and parser of ``vendor/github.com/moby/buildkit/frontend/dockerfile/parser``
  (parser.go, split_command.go, line_parsers.go): lines, the ``# escape=`` directive, continuation
  lines, comments, instruction flags;
- the instruction checks of ``.../instructions/parse.go`` and ``bflag.go``;
- ``ARG`` before the first ``FROM`` and the build-args query (``builder/dockerfile/buildargs.go``,
  ``builder.go:processMetaArg``), and variable expansion with the shell lexer of
  ``.../shell/lex.go`` (which reads its input with Go's ``text/scanner``);
- stage resolution at dispatch time (``builder/dockerfile/dispatchers.go``, ``evaluator.go``).

Nothing here was checked against a running dockerd; every rule cites the 20.10.24 source it
comes from. Where Moorage can't be sure of the engine's reading (a variable name next to a
non-ASCII character, whose letter class depends on Go's Unicode tables; an expansion whose result
depends on Go's random map order) it raises :class:`DockerfileError`, so the caller refuses the
build instead of guessing.

What this reading can't see, and the caller must handle:

- ``ONBUILD`` triggers stored in a base image run in this build when a stage starts from that
  image (``dispatchers.go:initializeStage`` -> ``dispatchTriggeredOnBuild``); a trigger may be a
  ``COPY --from=<image>``. Only the base image's config shows them.
- ``ONBUILD COPY --from=...`` in this Dockerfile reads nothing now; it reads when another build
  starts from the image built here (the point above).
- BuildKit (``version=2``) reads Dockerfiles differently (predefined platform args, ``RUN
  --mount=from=``, heredocs with a syntax directive); this module is for the classic builder only.
"""

from moorage.engine_api.dockerfile.dispatch import COPY_FROM, FROM, ImageRef, image_references
from moorage.engine_api.dockerfile.errors import DockerfileError

__all__ = ["COPY_FROM", "FROM", "DockerfileError", "ImageRef", "image_references"]
