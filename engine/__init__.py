"""charter's policy engine: load and compile policies, evaluate requests, report decisions.

This is the one evaluation path; the admission webhook and the CLI are shells over it.
"""

from .dispatcher import Engine
from .errors import (
    CharterError,
    CompileError,
    ContextError,
    EvaluationError,
    InputError,
    PolicyLoadError,
    UsageError,
)
from .loader import ContextObjects, PolicySet, load_policy_set
from .offline import CheckRun, ResourceDecision, check_paths, load_context
from .request import Attributes, Source, attributes_for_object
from .results import Decision, Finding, PolicyOutcome

__all__ = [
    "Attributes",
    "CharterError",
    "CheckRun",
    "CompileError",
    "ContextError",
    "ContextObjects",
    "Decision",
    "Engine",
    "EvaluationError",
    "Finding",
    "InputError",
    "PolicyLoadError",
    "PolicyOutcome",
    "PolicySet",
    "ResourceDecision",
    "Source",
    "UsageError",
    "attributes_for_object",
    "check_paths",
    "load_context",
    "load_policy_set",
]
