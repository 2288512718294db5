"""Model provenance: offline verification of model signatures against a trust policy.

See provenance/README.md for the trust policy, ModelAttestation documents and the facts
exposed to CEL as `provenance`.
"""

from __future__ import annotations

from .provider import (
    Attestation,
    ModelAttestationProvider,
    VerificationCache,
    attestation_from_document,
    load_attestations,
)
from .trust import TrustPolicy, TrustPolicyError, load_trust_policy
from .verifier import Verification, verify_bundle, verify_model

__all__ = [
    "Attestation",
    "ModelAttestationProvider",
    "TrustPolicy",
    "TrustPolicyError",
    "Verification",
    "VerificationCache",
    "attestation_from_document",
    "load_attestations",
    "load_trust_policy",
    "verify_bundle",
    "verify_model",
]
