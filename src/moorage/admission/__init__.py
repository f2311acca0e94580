"""The pipeline for one request: identity, RBAC, tenancy, facts, policy, mutations, audit."""

from moorage.admission.interface import (
    Admission,
    AdmissionError,
    AdmissionRequest,
    Decision,
    UnsafeAllowAll,
)

__all__ = ["Admission", "AdmissionError", "AdmissionRequest", "Decision", "UnsafeAllowAll"]
