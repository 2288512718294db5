"""Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource).

Parsed into an exact Decimal so that `"500m"`, `0.5` and `"0.5"` compare equal, as
they do in the apiserver. Shared by workload normalization and the CEL quantity
library, so both read a quantity the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# Same grammar as resource.ParseQuantity: a signed decimal number, then one suffix.
_QUANTITY_RE = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_UPSTREAM_FORMAT_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
ERR_FORMAT = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
ERR_NUMERIC = "unable to parse quantity's numeric part"
ERR_SUFFIX = "unable to parse quantity's suffix"
_MAX_LEN = 64  # longer strings are not quantities; bounds Decimal work on hostile input
_MAX_EXPONENT = 1000


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


@dataclass(frozen=True)
class Quantity:
    value: Decimal
    format: str  # BinarySI | DecimalSI | DecimalExponent, as in resource.Format

    def is_integer(self) -> bool:
        return self.value == self.value.to_integral_value()

    def as_float(self) -> float:
        return float(self.value)

    def as_int(self) -> int:
        """The value as int64, or QuantityError if it is fractional or out of range."""
        if not self.is_integer():
            raise QuantityError("cannot convert value to integer")
        i = int(self.value)
        if not -(2**63) <= i < 2**63:
            raise QuantityError("cannot convert value to integer")
        return i

    def canonical(self) -> str:
        """A stable text for the value: equal quantities give equal text."""
        v = self.value.normalize()
        if v == 0:
            return "0"
        with localcontext() as ctx:
            ctx.prec = 80
            text = format(v, "f")
        return text


def parse_quantity(raw: str | int | float) -> Quantity:
    """Parse a quantity given as a string or, as in CRDs written by hand, a number."""
    if isinstance(raw, bool):
        raise QuantityError(f"{raw!r} is not a quantity")
    if isinstance(raw, int):
        return Quantity(Decimal(raw), "DecimalSI")
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise QuantityError(f"{raw!r} is not a quantity")
        return Quantity(Decimal(repr(raw)), "DecimalSI")
    if not isinstance(raw, str):
        raise QuantityError(f"{type(raw).__name__} is not a quantity")
    text = raw.strip()
    if not text or len(text) > _MAX_LEN:
        raise QuantityError(f"{raw!r} is not a quantity")
    m = _QUANTITY_RE.match(text)
    if m is None:
        # resource.ParseQuantity's two messages: the text's shape, then its suffix.
        shape = _UPSTREAM_FORMAT_RE.match(text)
        if shape is None:
            raise QuantityError(ERR_FORMAT)
        if not re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", shape.group(1).lstrip("+-")):
            raise QuantityError(ERR_NUMERIC)
        raise QuantityError(ERR_SUFFIX)
    number, suffix = m.group(1), m.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as e:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{raw!r} is not a quantity") from e
    if suffix in _BINARY:
        return Quantity(base * _BINARY[suffix], "BinarySI")
    if suffix in _DECIMAL:
        return Quantity(base * _DECIMAL[suffix], "DecimalSI")
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise QuantityError(f"{raw!r}: exponent out of range")
    return Quantity(base.scaleb(exponent), "DecimalExponent")


def try_count(raw: object) -> tuple[int | None, str | None]:
    """A device count (GPUs, TPUs, ...): (count, None) or (None, why it is not one).

    Device-plugin resources are integers; a placeholder such as `${GPU_LIMIT:-1}`
    left by an unrendered template is reported, not guessed at.
    """
    if raw is None:
        return None, "missing"
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        return None, f"{raw!r} is not a quantity"
    try:
        q = parse_quantity(raw)
    except QuantityError as e:
        return None, str(e)
    if not q.is_integer():
        return None, f"{raw!r} is not a whole number of devices"
    return int(q.value), None
