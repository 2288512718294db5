"""Loading what a command needs (policies, exceptions, cluster, context) with every error collected."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.engine import CharterError, ContextObjects, Engine, PolicySet, load_context, load_policy_set
from charter.engine.dispatcher import ProvenanceProvider
from charter.engine.documents import read_documents
from charter.engine.errors import ContextError, Location, UsageError
from charter.engine.loader import add_context, build_policy_set


def bundled_policies() -> str:
    """The policy packs shipped inside the installed package."""
    import charter.policies

    return str(Path(charter.policies.__file__).parent)


@dataclass
class Session:
    policies: PolicySet
    context: ContextObjects
    errors: list[CharterError] = field(default_factory=list)
    provenance: ProvenanceProvider | None = None

    def engine(self) -> Engine:
        return Engine(self.policies, self.context, provenance=self.provenance)


def _provenance(
    trust_policy: str, context: Sequence[str], ctx: ContextObjects, errors: list[CharterError]
) -> ProvenanceProvider | None:
    from charter.provenance import (
        ModelAttestationProvider,
        TrustPolicyError,
        load_attestations,
        load_trust_policy,
    )

    try:
        trust = load_trust_policy(trust_policy)
    except TrustPolicyError as e:
        errors.append(ContextError(str(e), Location(file=trust_policy)))
        return None
    cluster = ctx.cluster.view() if ctx.cluster is not None else None
    return ModelAttestationProvider(trust, load_attestations(context), cluster)


def load_session(
    policies: Sequence[str],
    *,
    cluster: str | None = None,
    context: Sequence[str] = (),
    exceptions: Sequence[str] = (),
    trust_policy: str | None = None,
) -> Session:
    errors: list[CharterError] = []
    pset, ctx, load_errors = load_policy_set(policies or [bundled_policies()])
    errors.extend(load_errors)
    if exceptions:
        read = read_documents(exceptions)
        errors.extend(read.errors)
        extra, others = build_policy_set(read.documents, errors)
        if extra.policies:
            errors.append(
                UsageError(
                    "--exceptions files may hold only PolicyException documents; put policies under --policies",
                    Location(file=exceptions[0]),
                )
            )
        pset.exceptions.extend(extra.exceptions)
        add_context(ctx, others, errors)
    if cluster is not None:
        if not Path(cluster).is_file():
            errors.append(ContextError("cluster profile not found", Location(file=cluster)))
        else:
            before = ctx.cluster
            ctx.cluster = None
            read = read_documents([cluster])
            errors.extend(read.errors)
            add_context(ctx, read.documents, errors, keep_resources=False)
            if ctx.cluster is None and not read.errors:
                errors.append(
                    ContextError(
                        "no ClusterProfile (apiVersion charter.dev/v1alpha1) in this file",
                        Location(file=cluster),
                    )
                )
                ctx.cluster = before
    if context:
        load_context(context, ctx, errors)
    provider = _provenance(trust_policy, context, ctx, errors) if trust_policy else None
    return Session(pset, ctx, errors, provider)
