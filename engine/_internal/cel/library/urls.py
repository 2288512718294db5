"""kubernetes.urls: Go net/url's ParseRequestURI (validation) and Parse (components)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from ._common import TAGGED, LibraryError, T, function, overload, tagged, untag

KIND = "url"
MAX_URL = 1 << 16
_HEX = "0123456789abcdefABCDEF"
_PATH_SAFE = frozenset("-_.~$&+,/:;=@")
_VALID_ENCODED_EXTRA = frozenset("-_.~$&+,/:;=@!'()*[]")
_HOST_OK = frozenset("-_.~!$&'()*+,;=:[]<>\"")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


class _URL:
    __slots__ = ("host", "raw_path", "raw_query", "scheme")

    def __init__(self, scheme: str, host: str, raw_path: str, raw_query: str) -> None:
        self.scheme, self.host, self.raw_path, self.raw_query = scheme, host, raw_path, raw_query


def _unescape(s: str, host: bool) -> str:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise ValueError(f'invalid URL escape "{s[i : i + 3]}"')
            i += 3
            continue
        if host and ord(c) < 0x80 and not (c.isalnum() or c in _HOST_OK):
            raise ValueError(f'invalid character "{c}" in host name')
        i += 1
    return unquote_plus(s.replace("+", "%2B"))


def _valid_port(colon_port: str) -> bool:
    return colon_port == "" or (
        colon_port[0] == ":" and colon_port[1:].isascii() and colon_port[1:].isdigit()
    )


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise ValueError("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise ValueError(f'invalid port "{host[end + 1 :]}" after host')
    else:
        colon = host.rfind(":")
        if colon != -1 and not _valid_port(host[colon:]):
            raise ValueError(f'invalid port "{host[colon:]}" after host')
    _unescape(host, host=True)
    return host


def _parse(raw: str, via_request: bool) -> _URL:
    """net/url.parse, keeping what the getters need; ValueError carries Go's reason."""
    if len(raw) > MAX_URL:
        raise ValueError("URL too long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    rest = raw
    if not via_request:
        rest = rest.split("#", 1)[0]
    if via_request and rest == "":
        raise ValueError("empty url")
    if rest == "*":
        return _URL("", "", "*", "")
    scheme = ""
    m = _SCHEME.match(rest)
    if m and rest[m.end() : m.end() + 1] == ":":
        scheme, rest = m.group().lower(), rest[m.end() + 1 :]
    elif rest.startswith(":"):
        raise ValueError("missing protocol scheme")
    query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    elif "?" in rest:
        rest, query = rest.split("?", 1)
    if not rest.startswith("/"):
        if scheme:
            return _URL(scheme, "", "", query)  # opaque, e.g. mailto:x
        if via_request:
            raise ValueError("invalid URI for request")
    host = ""
    if (scheme and rest.startswith("//")) or (not via_request and rest.startswith("//")):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        at = authority.rfind("@")
        host = _parse_host(authority[at + 1 :])
    _unescape(rest, host=False)
    return _URL(scheme, host, rest, query)


def _reason(raw: str, e: ValueError) -> str:
    return f'URL parse error during conversion from string: parse "{raw}": {e}'


def _url(raw: str) -> dict[str, str]:
    try:
        _parse(raw, via_request=True)
        _parse(raw, via_request=False)
    except ValueError as e:
        raise LibraryError(_reason(raw, e)) from e
    return tagged(KIND, raw)


def _is_url(raw: str) -> bool:
    try:
        _parse(raw, via_request=True)
    except ValueError:
        return False
    return True


def _get(arg: object, name: str) -> _URL:
    return _parse(untag(arg, KIND, name), via_request=False)


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.rfind("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(host: str) -> str:
    tail = host[host.rfind("]") + 1 :] if host.startswith("[") else host
    return tail.rpartition(":")[2] if ":" in tail else ""


def _escape_path(path: str) -> str:
    out = []
    for b in path.encode():
        c = chr(b)
        out.append(c if (c.isascii() and c.isalnum()) or c in _PATH_SAFE else f"%{b:02X}")
    return "".join(out)


def _escaped_path(raw_path: str) -> str:
    """URL.EscapedPath: the path as written when that is validly encoded, else re-escaped."""
    valid = all(c == "%" or (c.isascii() and c.isalnum()) or c in _VALID_ENCODED_EXTRA for c in raw_path)
    return raw_path if valid else _escape_path(unquote_plus(raw_path.replace("+", "%2B")))


def _query(raw_query: str) -> dict[str, list[str]]:
    """url.ParseQuery, which skips pairs with ';' or a bad escape."""
    out: dict[str, list[str]] = {}
    for pair in raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            _unescape(key, host=False)
            _unescape(value, host=False)
        except ValueError:
            continue
        out.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return out


def functions() -> list[Any]:
    u = TAGGED
    return [
        function("url", overload("string_to_url", u, [T.STRING], _url)),
        function("isURL", overload("is_url_string", T.BOOL, [T.STRING], _is_url)),
        function(
            "getScheme",
            overload("url_get_scheme", T.STRING, [u], lambda a: _get(a, "getScheme").scheme, member=True),
        ),
        function(
            "getHost", overload("url_get_host", T.STRING, [u], lambda a: _get(a, "getHost").host, member=True)
        ),
        function(
            "getHostname",
            overload(
                "url_get_hostname",
                T.STRING,
                [u],
                lambda a: _hostname(_get(a, "getHostname").host),
                member=True,
            ),
        ),
        function(
            "getPort",
            overload("url_get_port", T.STRING, [u], lambda a: _port(_get(a, "getPort").host), member=True),
        ),
        function(
            "getEscapedPath",
            overload(
                "url_get_escaped_path",
                T.STRING,
                [u],
                lambda a: _escaped_path(_get(a, "getEscapedPath").raw_path),
                member=True,
            ),
        ),
        function(
            "getQuery",
            overload(
                "url_get_query",
                T.Map(T.STRING, T.List(T.STRING)),
                [u],
                lambda a: _query(_get(a, "getQuery").raw_query),
                member=True,
            ),
        ),
    ]
