"""kubernetes.quantity: resource.Quantity parsing, comparison and arithmetic."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal, localcontext
from typing import Any

from ...quantity import ERR_FORMAT, Quantity, QuantityError, parse_quantity
from ._common import TAGGED, LibraryError, T, function, overload, tagged, untag

KIND = "quantity"
_NANO = Decimal("1e-9")
_PREC = 200  # enough digits for any parseable quantity plus int64 arithmetic


def _canonical(value: Decimal) -> str:
    return Quantity(value, "DecimalSI").canonical()


def parse(text: str) -> Decimal:
    # resource.ParseQuantity does not trim, and rounds sub-nano precision up.
    if text != text.strip():
        raise QuantityError(ERR_FORMAT)
    value = parse_quantity(text).value
    with localcontext() as ctx:
        ctx.prec = _PREC
        if value != value.quantize(_NANO, rounding=ROUND_UP):
            value = value.quantize(_NANO, rounding=ROUND_UP)
    return value


def _value(arg: object, function_name: str) -> Decimal:
    return Decimal(untag(arg, KIND, function_name))


def _make(value: Decimal) -> dict[str, str]:
    return tagged(KIND, _canonical(value))


def _quantity(text: str) -> dict[str, str]:
    try:
        return _make(parse(text))
    except QuantityError as e:
        raise LibraryError(str(e)) from e


def _is_quantity(text: str) -> bool:
    try:
        parse(text)
    except QuantityError:
        return False
    return True


def _sign(q: object) -> int:
    v = _value(q, "sign")
    return (v > 0) - (v < 0)


def compare(a: object, b: object, function_name: str) -> int:
    x, y = _value(a, function_name), _value(b, function_name)
    return (x > y) - (x < y)


def _as_int(q: object, function_name: str) -> int | None:
    v = _value(q, function_name)
    if v != v.to_integral_value():
        return None
    i = int(v)
    return i if -(2**63) <= i < 2**63 else None


def _as_integer(q: object) -> int:
    i = _as_int(q, "asInteger")
    if i is None:
        raise LibraryError("cannot convert value to integer")
    return i


def _is_integer(q: object) -> bool:
    return _as_int(q, "isInteger") is not None


def _as_float(q: object) -> float:
    return float(_value(q, "asApproximateFloat"))


def _arith(a: object, b: object, name: str, sign: int) -> dict[str, str]:
    x = _value(a, name)
    y = Decimal(b) if isinstance(b, int) and not isinstance(b, bool) else _value(b, name)
    with localcontext() as ctx:
        ctx.prec = _PREC
        return _make(x + sign * y)


def _add(a: object, b: object) -> dict[str, str]:
    return _arith(a, b, "add", 1)


def _sub(a: object, b: object) -> dict[str, str]:
    return _arith(a, b, "sub", -1)


def functions() -> list[Any]:
    q = TAGGED
    return [
        function("quantity", overload("string_to_quantity", q, [T.STRING], _quantity)),
        function("isQuantity", overload("is_quantity_string", T.BOOL, [T.STRING], _is_quantity)),
        # Upstream declares sign as a global function but documents it as a member: accept both.
        function(
            "sign",
            overload("quantity_sign", T.INT, [q], _sign),
            overload("quantity_sign_member", T.INT, [q], _sign, member=True),
        ),
        function("asApproximateFloat", overload("quantity_get_float", T.DOUBLE, [q], _as_float, member=True)),
        function("asInteger", overload("quantity_get_int", T.INT, [q], _as_integer, member=True)),
        function("isInteger", overload("quantity_is_integer", T.BOOL, [q], _is_integer, member=True)),
        function(
            "add",
            overload("quantity_add", q, [q, q], _add, member=True),
            overload("quantity_add_int", q, [q, T.INT], _add, member=True),
        ),
        function(
            "sub",
            overload("quantity_sub", q, [q, q], _sub, member=True),
            overload("quantity_sub_int", q, [q, T.INT], _sub, member=True),
        ),
    ]
