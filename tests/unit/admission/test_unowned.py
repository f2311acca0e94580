"""What a developer may do with an object no team owns."""

from __future__ import annotations

import pytest

from moorage.admission import ownership
from moorage.admission.errors import PolicyRefusal
from moorage.engine_api.endpoints import Operation

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


def _op(kind: str, cls: str) -> Operation:
    return Operation(kind, cls)


@pytest.mark.parametrize(
    ("op", "obj_type", "name", "use", "allowed"),
    [
        (_op("container.inspect", "container.read"), "container", "c", False, False),
        (_op("container.archive.get", "container.read"), "container", "c", False, False),
        (_op("exec.create", "exec"), "container", "c", False, False),
        (ownership.USE, "container", "c", True, False),
        (ownership.USE, "volume", "v", True, False),
        (_op("volume.inspect", "volume.read"), "volume", "v", False, False),
        (ownership.USE, "network", "bridge", True, True),
        (ownership.USE, "network", "none", True, True),
        (ownership.USE, "network", "ops-net", True, False),
        (ownership.USE, "network", "host", True, False),
        (_op("network.connect", "network.write"), "network", "ops-net", True, False),
        (_op("network.inspect", "network.read"), "network", "ops-net", False, True),
        (_op("network.delete", "network.write"), "network", "bridge", False, False),
        (ownership.USE, "image", "busybox", True, True),
        (_op("image.tag", "image.write"), "image", "busybox", True, True),
        (_op("image.delete", "image.write"), "image", "busybox", False, False),
    ],
)
def test_what_a_developer_may_do_with_what_nobody_owns(
    op: Operation, obj_type: str, name: str, use: bool, allowed: bool
) -> None:
    if allowed:
        ownership.check_unowned(op, obj_type, name, name, use)
        return
    with pytest.raises(PolicyRefusal) as err:
        ownership.check_unowned(op, obj_type, name, name, use)
    assert err.value.status == 403 and "belongs to no team" in err.value.message
