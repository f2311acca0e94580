"""Groups and claims to teams and roles: precedence, no role no login, file errors."""

from __future__ import annotations

import pytest

from moorage.identity.interface import Identity, LoginRefused
from moorage.identity.mapping import Grant, Mapping
from moorage.identity.principal import IdentityError

DOC = {
    "groups": {
        "payments-dev": {"teams": ["payments"], "roles": ["developer"]},
        "payments-ops": {"teams": ["payments"], "roles": ["operator"]},
        "search-dev": {"teams": ["search"], "roles": ["developer"]},
        "auditors": {"roles": ["viewer"]},
    },
    "claims": {"department=security": {"teams": ["security"], "roles": ["security-officer"]}},
    "lifetime": "8h",
    "max_lifetime": "12h",
}


def who(*groups: str, **claims: object) -> Identity:
    return Identity("ldap", "uid=pat", "pat", tuple(groups), claims)


def test_groups_map_in_file_order_and_roles_unite() -> None:
    m = Mapping.from_dict(DOC)
    assert m.grant(who("search-dev", "payments-dev")) == Grant(("payments", "search"), ("developer",))
    assert m.grant(who("payments-dev", "payments-ops")) == Grant(("payments",), ("developer", "operator"))
    assert m.grant(who(department=["it", "security"])).roles == ("security-officer",)
    assert m.lifetime == 8 * 3600 and m.max_lifetime == 12 * 3600


def test_someone_in_no_mapped_group_gets_nothing() -> None:
    with pytest.raises(LoginRefused):
        Mapping.from_dict(DOC).grant(who("everyone"))


@pytest.mark.parametrize(
    "doc",
    [
        {"groups": {"x": {"roles": ["root"]}}},
        {"groups": {"x": {"teams": "payments", "colour": "red"}}},
        {"claims": {"no-equals-sign": {"roles": ["viewer"]}}},
        {"lifetime": "forever"},
        {"lifetime": "2d", "max_lifetime": "1d"},
        {"group": {}},
        ["not", "a", "mapping"],
    ],
)
def test_a_wrong_mapping_file_says_where(doc: object) -> None:
    with pytest.raises(IdentityError):
        Mapping.from_dict(doc)
