"""Principals, roles, the gateway's PKI, users and tokens."""

from moorage.identity.principal import (
    GLOBAL_ROLES,
    ROLES,
    IdentityError,
    Principal,
    User,
    UserDirectory,
)

__all__ = ["GLOBAL_ROLES", "ROLES", "IdentityError", "Principal", "User", "UserDirectory"]
