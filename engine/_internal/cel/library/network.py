"""kubernetes.net.ip and net.cidr: net/netip semantics on Python's ipaddress."""

from __future__ import annotations

import ipaddress
from typing import Any

from ._common import TAGGED, LibraryError, T, function, kind_of, no_such_overload, overload, tagged, untag

IP_KIND = "ip"
CIDR_KIND = "cidr"
_MAX_LEN = 128  # longer text is never an address; bounds parsing work

Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_addr(raw: str) -> Addr:
    """netip.ParseAddr, then upstream's refusal of zones and IPv4-mapped IPv6."""
    addr: Addr
    try:
        if len(raw) > _MAX_LEN:
            raise ValueError("too long")
        addr = ipaddress.ip_address(raw)
    except ValueError as e:
        raise LibraryError(
            f'IP Address "{raw}" parse error during conversion from string: ParseAddr("{raw}"): {e}'
        ) from e
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id is not None:
            raise LibraryError(f'IP address "{raw}" with zone value is not allowed')
        if addr.ipv4_mapped is not None:
            raise LibraryError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return addr


def _parse_prefix(raw: str) -> tuple[Addr, int]:
    """netip.ParsePrefix: host bits may be set; bits are decimal without leading zeros."""
    head = f'network address parse error during conversion from string: netip.ParsePrefix("{raw}")'
    addr_text, slash, bits_text = raw.rpartition("/")
    if not slash:
        raise LibraryError(f"{head}: no '/'")
    if "%" in addr_text:
        raise LibraryError(f"{head}: IPv6 zones cannot be present in a prefix")
    try:
        if len(addr_text) > _MAX_LEN:
            raise ValueError("too long")
        addr = ipaddress.ip_address(addr_text)
    except ValueError as e:
        raise LibraryError(f'{head}: ParseAddr("{addr_text}"): {e}') from e
    if (
        not bits_text.isascii()
        or not bits_text.isdigit()
        or len(bits_text) > 3
        or (len(bits_text) > 1 and bits_text[0] == "0")
    ):
        raise LibraryError(f'{head}: bad bits after slash: "{bits_text}"')
    bits = int(bits_text)
    if bits > addr.max_prefixlen:
        raise LibraryError(f"{head}: prefix length out of range")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise LibraryError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return addr, bits


def _ip(arg: object, function_name: str) -> Addr:
    return ipaddress.ip_address(untag(arg, IP_KIND, function_name))


def _cidr(arg: object, function_name: str) -> tuple[Addr, int]:
    addr, _, bits = untag(arg, CIDR_KIND, function_name).rpartition("/")
    return ipaddress.ip_address(addr), int(bits)


def _ip_value(addr: Addr) -> dict[str, str]:
    return tagged(IP_KIND, str(addr))


def _cidr_value(addr: Addr, bits: int) -> dict[str, str]:
    return tagged(CIDR_KIND, f"{addr}/{bits}")


def _masked_addr(addr: Addr, bits: int) -> Addr:
    return ipaddress.ip_network((addr, bits), strict=False).network_address


# --- ip -----------------------------------------------------------------------------------


def _string_to_ip(raw: str) -> dict[str, str]:
    return _ip_value(_parse_addr(raw))


def _is_ip(raw: str) -> bool:
    try:
        _parse_addr(raw)
    except LibraryError:
        return False
    return True


def _is_canonical(raw: str) -> bool:
    return str(_parse_addr(raw)) == raw


def _family(arg: object) -> int:
    return _ip(arg, "family").version


def _is_unspecified(arg: object) -> bool:
    return _ip(arg, "isUnspecified").is_unspecified


def _is_loopback(arg: object) -> bool:
    return _ip(arg, "isLoopback").is_loopback


def _is_link_local_multicast(arg: object) -> bool:
    a = _ip(arg, "isLinkLocalMulticast")
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    # netip: ff02::/16 with any flag bits (ff12::, ff32::, ...).
    return (int(a) >> 112) & 0xFF0F == 0xFF02


def _is_link_local_unicast(arg: object) -> bool:
    a = _ip(arg, "isLinkLocalUnicast")
    net = "169.254.0.0/16" if a.version == 4 else "fe80::/10"
    return a in ipaddress.ip_network(net)


def _is_global_unicast(arg: object) -> bool:
    """netip's IsGlobalUnicast, which unlike ipaddress.is_global counts private ranges."""
    a = _ip(arg, "isGlobalUnicast")
    if a.version == 4 and str(a) in ("0.0.0.0", "255.255.255.255"):
        return False
    link_local = ipaddress.ip_network("169.254.0.0/16" if a.version == 4 else "fe80::/10")
    return not (a.is_unspecified or a.is_loopback or a.is_multicast or a in link_local)


def _to_string(arg: object) -> str:
    kind = kind_of(arg)
    if kind not in (IP_KIND, CIDR_KIND):
        raise no_such_overload("string")
    return untag(arg, kind, "string")


# --- cidr ---------------------------------------------------------------------------------


def _string_to_cidr(raw: str) -> dict[str, str]:
    try:
        addr, bits = _parse_prefix(raw)
    except LibraryError as e:
        raise LibraryError(f"network address parse error during conversion from string: {e}") from e
    return _cidr_value(addr, bits)


def _is_cidr(raw: str) -> bool:
    try:
        _parse_prefix(raw)
    except LibraryError:
        return False
    return True


def _contains_ip(arg: object, other: object) -> bool:
    addr, bits = _cidr(arg, "containsIP")
    ip = _parse_addr(other) if isinstance(other, str) else _ip(other, "containsIP")
    return ip.version == addr.version and _masked_addr(ip, bits) == _masked_addr(addr, bits)


def _contains_cidr(arg: object, other: object) -> bool:
    # Upstream as fixed by kubernetes/kubernetes#130450: the inner address is masked too.
    addr, bits = _cidr(arg, "containsCIDR")
    o_addr, o_bits = _cidr(_string_to_cidr(other) if isinstance(other, str) else other, "containsCIDR")
    if o_addr.version != addr.version:
        return False
    return bits <= o_bits and _masked_addr(o_addr, bits) == _masked_addr(addr, bits)


def _cidr_ip(arg: object) -> dict[str, str]:
    return _ip_value(_cidr(arg, "ip")[0])


def _prefix_length(arg: object) -> int:
    return _cidr(arg, "prefixLength")[1]


def _masked(arg: object) -> dict[str, str]:
    addr, bits = _cidr(arg, "masked")
    return _cidr_value(_masked_addr(addr, bits), bits)


def functions() -> list[Any]:
    n = TAGGED
    return [
        function(
            "ip",
            overload("string_to_ip", n, [T.STRING], _string_to_ip),
            overload("cidr_ip", n, [n], _cidr_ip, member=True),
        ),
        function("isIP", overload("is_ip", T.BOOL, [T.STRING], _is_ip)),
        function("ip.isCanonical", overload("ip_is_canonical", T.BOOL, [T.STRING], _is_canonical)),
        function("family", overload("ip_family", T.INT, [n], _family, member=True)),
        function("isUnspecified", overload("ip_is_unspecified", T.BOOL, [n], _is_unspecified, member=True)),
        function("isLoopback", overload("ip_is_loopback", T.BOOL, [n], _is_loopback, member=True)),
        function(
            "isLinkLocalMulticast",
            overload("ip_is_link_local_multicast", T.BOOL, [n], _is_link_local_multicast, member=True),
        ),
        function(
            "isLinkLocalUnicast",
            overload("ip_is_link_local_unicast", T.BOOL, [n], _is_link_local_unicast, member=True),
        ),
        function(
            "isGlobalUnicast", overload("ip_is_global_unicast", T.BOOL, [n], _is_global_unicast, member=True)
        ),
        # string(ip) and string(cidr) share one runtime overload: both are tagged maps.
        function("string", overload("ip_or_cidr_to_string", T.STRING, [n], _to_string)),
        function("cidr", overload("string_to_cidr", n, [T.STRING], _string_to_cidr)),
        function("isCIDR", overload("is_cidr", T.BOOL, [T.STRING], _is_cidr)),
        function(
            "containsIP",
            overload("cidr_contains_ip_string", T.BOOL, [n, T.STRING], _contains_ip, member=True),
            overload("cidr_contains_ip_ip", T.BOOL, [n, n], _contains_ip, member=True),
        ),
        function(
            "containsCIDR",
            overload("cidr_contains_cidr_string", T.BOOL, [n, T.STRING], _contains_cidr, member=True),
            overload("cidr_contains_cidr", T.BOOL, [n, n], _contains_cidr, member=True),
        ),
        function("prefixLength", overload("cidr_prefix_length", T.INT, [n], _prefix_length, member=True)),
        function("masked", overload("cidr_masked", n, [n], _masked, member=True)),
    ]
