"""kubernetes.Semver: blang/semver v4 parsing (with the optional normalize flag) and ordering."""

from __future__ import annotations

import re
from typing import Any

from ._common import TAGGED, LibraryError, T, function, overload, tagged, untag

KIND = "semver"
_UINT64_MAX = 2**64 - 1
_ALNUM_DASH = re.compile(r"[0-9A-Za-z-]+")


def _number(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise LibraryError(f'Invalid character(s) found in {what} number "{text}"')
    if len(text) > 1 and text[0] == "0":
        raise LibraryError(f'{what.capitalize()} number must not contain leading zeroes "{text}"')
    n = int(text)
    if n > _UINT64_MAX:
        raise LibraryError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return n


def parse(text: str) -> tuple[int, int, int, list[str]]:
    """(major, minor, patch, prerelease) as semver.Parse reads it; build metadata is validated, then dropped."""
    if not text:
        raise LibraryError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise LibraryError("No Major.Minor.Patch elements found")
    major = _number(parts[0], "major")
    minor = _number(parts[1], "minor")
    rest = parts[2]
    cut = min((i for i in (rest.find("-"), rest.find("+")) if i != -1), default=len(rest))
    patch = _number(rest[:cut], "patch")
    pre: list[str] = []
    pre_at, build_at = rest.find("-"), rest.find("+")
    if pre_at != -1 and (build_at == -1 or pre_at < build_at):
        for p in rest[pre_at + 1 : build_at if build_at != -1 else len(rest)].split("."):
            if not p:
                raise LibraryError("Prerelease is empty")
            if p.isdigit() and p.isascii():
                if len(p) > 1 and p[0] == "0":
                    raise LibraryError(f'Numeric PreRelease version must not contain leading zeroes "{p}"')
            elif not _ALNUM_DASH.fullmatch(p):
                raise LibraryError(f'Invalid character(s) found in prerelease "{p}"')
            pre.append(p)
    if build_at != -1:
        for b in rest[build_at + 1 :].split("."):
            if not b:
                raise LibraryError("Buildversion is empty")
            if not _ALNUM_DASH.fullmatch(b):
                raise LibraryError(f'Invalid character(s) found in build meta data "{b}"')
    return major, minor, patch, pre


def normalize(text: str) -> str:
    """normalizeAndParse's rewriting: drop a 'v', strip leading zeros, fill in minor and patch."""
    text = text.removeprefix("v")
    parts = text.split(".", 2)
    for i, p in enumerate(parts):
        if len(p) > 1:
            p = p.lstrip("0")
            if not p or p[0] not in "0123456789":
                p = "0" + p
            parts[i] = p
    if len(parts) < 3:
        if any(c in parts[-1] for c in "+-"):
            raise LibraryError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _canonical(text: str, do_normalize: bool) -> str:
    # Build metadata does not take part in Version.Equals, so it is left out of the payload.
    major, minor, patch, pre = parse(normalize(text) if do_normalize else text)
    core = f"{major}.{minor}.{patch}"
    return f"{core}-{'.'.join(pre)}" if pre else core


def _semver(text: str, do_normalize: bool = False) -> dict[str, str]:
    return tagged(KIND, _canonical(text, do_normalize))


def _is_semver(text: str, do_normalize: bool = False) -> bool:
    try:
        _canonical(text, do_normalize)
    except LibraryError:
        return False
    return True


def _parts(arg: object, function_name: str) -> tuple[int, int, int, list[str]]:
    return parse(untag(arg, KIND, function_name))


def _pre_key(p: str) -> tuple[int, int, str]:
    return (0, int(p), "") if p.isdigit() else (1, 0, p)


def compare(a: object, b: object, function_name: str) -> int:
    x, y = _parts(a, function_name), _parts(b, function_name)
    if x[:3] != y[:3]:
        return 1 if x[:3] > y[:3] else -1
    xp, yp = x[3], y[3]
    if not xp or not yp:
        return (not xp) - (not yp)
    for p, q in zip(xp, yp, strict=False):
        kp, kq = _pre_key(p), _pre_key(q)
        if kp != kq:
            return 1 if kp > kq else -1
    return (len(xp) > len(yp)) - (len(xp) < len(yp))


def functions() -> list[Any]:
    s = TAGGED
    return [
        function(
            "semver",
            overload("string_to_semver", s, [T.STRING], _semver),
            overload("string_bool_to_semver", s, [T.STRING, T.BOOL], _semver),
        ),
        function(
            "isSemver",
            overload("is_semver_string", T.BOOL, [T.STRING], _is_semver),
            overload("is_semver_string_bool", T.BOOL, [T.STRING, T.BOOL], _is_semver),
        ),
        function("major", overload("semver_major", T.INT, [s], lambda v: _parts(v, "major")[0], member=True)),
        function("minor", overload("semver_minor", T.INT, [s], lambda v: _parts(v, "minor")[1], member=True)),
        function("patch", overload("semver_patch", T.INT, [s], lambda v: _parts(v, "patch")[2], member=True)),
    ]
