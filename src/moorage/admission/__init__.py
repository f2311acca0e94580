"""The pipeline for one request: identity, RBAC, tenancy, facts, policy, mutations, audit."""
