"""``moorage lab``: private Docker engines, a Swarm and a registry on one machine.

It serves people trying Moorage (as kind serves Kubernetes) and the test suite,
whose fixtures use the same code.
"""

from moorage.lab.images import ImageArchive, ImageBuildError, build_busybox, build_debian, load_into
from moorage.lab.lab import Lab, LabError, LabStatus, NodeStatus, cleanup_stale, list_labs

__all__ = [
    "ImageArchive",
    "ImageBuildError",
    "Lab",
    "LabError",
    "LabStatus",
    "NodeStatus",
    "build_busybox",
    "build_debian",
    "cleanup_stale",
    "list_labs",
    "load_into",
]
