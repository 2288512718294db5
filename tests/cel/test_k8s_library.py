"""The Kubernetes CEL libraries, with cases drawn from upstream's *_test.go files."""

from __future__ import annotations

from typing import Any

import pytest
from cel_expr_python import cel
from charter.engine._internal.cel.env import build_env, policy_env

ERR = object()  # marker: the expression must evaluate to a CEL error value


@pytest.fixture(scope="module")
def env() -> Any:
    return build_env({"x": cel.Type.DYN})


def evaluate(env: Any, expr: str, data: dict[str, Any] | None = None) -> tuple[bool, Any]:
    """(is_error, value) for `expr`; compile failures propagate."""
    value = env.compile(expr).eval(data=data or {})
    if value.type() == cel.Type.ERROR:
        return True, str(value.value())
    return False, value.plain_value()


def check(env: Any, expr: str, expected: Any, message: str | None = None) -> None:
    is_error, value = evaluate(env, expr)
    if expected is ERR:
        assert is_error, f"{expr} gave {value!r}, expected an error"
        if message is not None:
            assert message in value
    else:
        assert not is_error, f"{expr} failed: {value}"
        assert value == expected, f"{expr} gave {value!r}"
        assert type(value) is type(expected)


def cases(*rows: tuple[Any, ...]) -> Any:
    return pytest.mark.parametrize(
        ("expr", "expected", "message"), [(*r, None)[:3] for r in rows], ids=[r[0] for r in rows]
    )


@cases(
    ("[1, 2, 3].isSorted()", True),
    ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False),
    ("[1].isSorted()", True),
    ("[].isSorted()", True),
    ("[b'a', b'b'].isSorted()", True),
    ("[timestamp('2020-01-01T00:00:00Z'), timestamp('2019-01-01T00:00:00Z')].isSorted()", False),
    ("[duration('1s'), duration('1m')].isSorted()", True),
    ("[[1], [2]].isSorted()", ERR, "no such overload"),
    ("[1, 'a'].isSorted()", ERR, "no such overload"),
)
def test_is_sorted(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("[1, 3].sum()", 4),
    ("[1.0, 3.0].sum()", 4.0),
    ("[].sum()", 0),
    ("[1u, 2u].sum() == 3u", True),
    ("[9223372036854775807, 1].sum()", ERR, "integer overflow"),
    ("['a'].sum()", ERR, "no such overload"),
    ("[1, 3].min()", 1),
    ("[1, 3].max()", 3),
    ("[1].min()", 1),
    ("['b', 'a', 'c'].max()", "c"),
    ("([0] + x).min()", 0),
    ("[].min()", ERR, "min called on empty list"),
    ("[].max()", ERR, "max called on empty list"),
    ("[duration('1s')].max()", ERR, "not supported"),
    ("[1, 2, 2, 3].indexOf(2)", 1),
    ("['a', 'b', 'b', 'c'].lastIndexOf('b')", 2),
    ("[1.0].indexOf(1.1)", -1),
    ("[].indexOf('string')", -1),
    ("[true, 1].indexOf(1)", 1),
    ("[[1], [2]].lastIndexOf([2])", 1),
)
def test_lists(env: Any, expr: str, expected: Any, message: str | None) -> None:
    if "+ x)" in expr:
        is_error, value = evaluate(env, expr, {"x": []})
        assert not is_error and value == expected
        return
    check(env, expr, expected, message)


@cases(
    ("'abc 123'.find('[0-9]+')", "123"),
    ("'abc 123'.find('[0-9]*')", ""),
    ("'abc 123'.find('xyz')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'123 abc 456'.findAll('[0-9]*')", ["123", "", "", "", "", "456"]),
    ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('[0-9]+', 0)", []),
    ("'123 abc 456'.findAll('[0-9]+', -1)", ["123", "456"]),
    ("'123 abc 456'.findAll('xyz')", []),
    ("'abc'.find('[')", ERR, "Illegal regex: error parsing regexp"),
    ("'aa'.find('(a)\\\\1')", ERR, "Illegal regex"),
    ("'ab'.findAll('a(?=b)')", ERR, "Illegal regex"),
    ("'ab'.find('(?<!a)b')", ERR, "Illegal regex"),
)
def test_regex(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


def test_regex_bounds_input(env: Any) -> None:
    is_error, value = evaluate(env, "x.find('a')", {"x": "b" * ((1 << 20) + 1)})
    assert is_error and "too large" in value


@cases(
    ("isURL('https://user:pass@example.com:80/path?query=val#fragment')", True),
    ("isURL('/absolute-path')", True),
    ("isURL('https://a:b:c/')", False),
    ("isURL('../relative-path')", False),
    ("isURL('')", False),
    ("url('https://a:b:c/')", ERR, 'URL parse error during conversion from string: parse "https://a:b:c/"'),
    ("url('../relative-path')", ERR, "invalid URI for request"),
    ("url('/path').getScheme()", ""),
    ("url('https://example.com/').getScheme()", "https"),
    ("url('https://example.com:80/').getHost()", "example.com:80"),
    ("url('https://example.com/').getHost()", "example.com"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"),
    ("url('https://[::1]/').getHost()", "[::1]"),
    ("url('/path').getHost()", ""),
    ("url('https://example.com:80/').getHostname()", "example.com"),
    ("url('https://127.0.0.1:80/').getHostname()", "127.0.0.1"),
    ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('/path').getHostname()", ""),
    ("url('https://example.com:80/').getPort()", "80"),
    ("url('https://example.com/').getPort()", ""),
    ("url('/path').getPort()", ""),
    ("url('https://example.com/path').getEscapedPath()", "/path"),
    ("url('https://example.com/path with spaces/').getEscapedPath()", "/path%20with%20spaces/"),
    ("url('https://example.com').getEscapedPath()", ""),
    ("url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()", {"k1": ["a"], "k2": ["b", "c"]}),
    (
        "url('https://example.com/path?key with spaces=value with spaces').getQuery()",
        {"key with spaces": ["value with spaces"]},
    ),
    ("url('https://example.com/path?').getQuery()", {}),
    ("url('https://example.com/path').getQuery()", {}),
    ("url('https://example.com/path#frag').getEscapedPath()", "/path"),
)
def test_urls(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("quantity('12Mi') == quantity('12582912')", True),
    ("quantity('10Mo')", ERR, "quantities must match the regular expression"),
    ("quantity('10Mm')", ERR, "unable to parse quantity's suffix"),
    ("quantity('200K')", ERR, "unable to parse quantity's suffix"),
    ("quantity(' 1')", ERR, "quantities must match the regular expression"),
    ("isQuantity('20')", True),
    ("isQuantity('20M')", True),
    ("isQuantity('20Mi')", True),
    ("isQuantity('20Mo')", False),
    ("isQuantity('10Mm')", False),
    ("isQuantity('1,3G')", False),
    ("quantity('200M') == quantity('200M')", True),
    ("quantity('200M') == quantity('0.2G') && quantity('0.2G') == quantity('200M')", True),
    (
        "quantity('2M') == quantity('0.002G') && quantity('2000k') == quantity('2M') && "
        "quantity('0.002G') == quantity('2000k')",
        True,
    ),
    ("quantity('200M') == quantity('0.3G')", False),
    ("quantity('1.5n') == quantity('2n')", True),
    ("quantity('50M').isLessThan(quantity('50Mi'))", True),
    ("quantity('50M').isLessThan(quantity('100M'))", True),
    ("quantity('100M').isLessThan(quantity('50M'))", False),
    ("quantity('50Mi').isGreaterThan(quantity('50M'))", True),
    ("quantity('150Mi').isGreaterThan(quantity('100Mi'))", True),
    ("quantity('50M').isGreaterThan(quantity('100M'))", False),
    ("quantity('200M').compareTo(quantity('0.2G'))", 0),
    ("quantity('50M').compareTo(quantity('50Mi'))", -1),
    ("quantity('50Mi').compareTo(quantity('50M'))", 1),
    ("quantity('50k').add(quantity('20')) == quantity('50.02k')", True),
    ("quantity('50k').add(20).isLessThan(quantity('50020'))", False),
    ("quantity('50k').sub(quantity('20')) == quantity('49.98k')", True),
    ("quantity('50k').sub(20) == quantity('49980')", True),
    ("quantity('50k').add(20).sub(quantity('100k')).asInteger()", -49980),
    ("quantity('50k').add(20).sub(quantity('100k')).sub(-50000).asInteger()", 20),
    ("quantity('50k').asInteger()", 50000),
    (
        "quantity('9999999999999999999999999999999999999G').asInteger()",
        ERR,
        "cannot convert value to integer",
    ),
    ("quantity('1.5').asInteger()", ERR, "cannot convert value to integer"),
    ("quantity('9999999999999999999999999999999999999G').isInteger()", False),
    ("quantity('50').isInteger()", True),
    ("quantity('50000000G').isInteger()", True),
    ("quantity('50.703k').asApproximateFloat()", 50703.0),
    ("quantity('50k').sub(20000).asApproximateFloat() == 30000.0", True),
    ("quantity('-5').sign()", -1),
    ("sign(quantity('0'))", 0),
    ("quantity('5Gi').sign()", 1),
    ("quantity('1').isGreaterThan(semver('1.0.0'))", ERR, "no such overload"),
)
def test_quantity(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("semver('1.2.3') == semver('1.2.3')", True),
    ("semver('v1.0')", ERR, "No Major.Minor.Patch elements found"),
    ("semver('01.0.0')", ERR, 'Major number must not contain leading zeroes "01"'),
    ("semver('1.0.0-')", ERR, "Prerelease is empty"),
    ("isSemver('1.2.3-beta.1+build.1')", True),
    ("isSemver('')", False),
    ("isSemver('v1.0.0')", False),
    ("isSemver(' 1.0.0')", False),
    ("isSemver('1. 0.0')", False),
    ("isSemver('1.0.0 ')", False),
    ("isSemver('01.01.01')", False),
    ("isSemver('1')", False),
    ("isSemver('1.1')", False),
    ("isSemver('', true)", False),
    ("isSemver(' 1.0.0', true)", False),
    ("isSemver('1. 0.0', true)", False),
    ("isSemver('1.0.0 ', true)", False),
    ("isSemver('v1.0.0', true)", True),
    ("isSemver('01.01.01', true)", True),
    ("isSemver('1', true)", True),
    ("isSemver('1.1', true)", True),
    ("isSemver('1.1-alpha', true)", False),
    ("semver('1.1-alpha', true)", ERR, "short version cannot contain PreRelease/Build meta data"),
    ("semver('v01.01', true) == semver('1.1.0')", True),
    ("semver('1.0', true) == semver('1.0.0')", True),
    ("semver('1.2.3') == semver('1.0.0')", False),
    ("semver('1.0.0+a') == semver('1.0.0+b')", True),
    ("semver('1.0.0').isLessThan(semver('1.2.3'))", True),
    ("semver('1.0.0').isLessThan(semver('1.0.0'))", False),
    ("semver('1.2.3').isGreaterThan(semver('1.0.0'))", True),
    ("semver('1.0.0').isGreaterThan(semver('1.0.0'))", False),
    ("semver('1.2.3').compareTo(semver('1.2.3'))", 0),
    ("semver('1.0.0').compareTo(semver('1.2.3'))", -1),
    ("semver('1.2.3').compareTo(semver('1.0.0'))", 1),
    ("semver('1.0.0-alpha').compareTo(semver('1.0.0'))", -1),
    ("semver('1.0.0-alpha.1').compareTo(semver('1.0.0-alpha.beta'))", -1),
    ("semver('1.0.0-beta.11').compareTo(semver('1.0.0-beta.2'))", 1),
    ("semver('1.0.0-rc.1').compareTo(semver('1.0.0-rc.1.1'))", -1),
    ("semver('1.2.3').major()", 1),
    ("semver('1.2.3').minor()", 2),
    ("semver('1.2.3').patch()", 3),
)
def test_semver(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("ip('127.0.0.1') == ip('127.0.0.1')", True),
    ("ip('2001:db8::abcd') == ip('2001:DB8::ABCD')", True),
    ("ip('127.0.0.256')", ERR, 'IP Address "127.0.0.256" parse error during conversion from string'),
    ("ip(':::1')", ERR, "parse error during conversion from string"),
    ("ip('fe80::1%eth0')", ERR, 'IP address "fe80::1%eth0" with zone value is not allowed'),
    ("ip('::ffff:1.2.3.4')", ERR, 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'),
    ("ip('01.2.3.4')", ERR, "parse error"),
    ("isIP('127.0.0.1')", True),
    ("isIP('::1')", True),
    ("isIP('127.0.0.256')", False),
    ("isIP(':::1')", False),
    ("isIP('::ffff:1.2.3.4')", False),
    ("ip.isCanonical('127.0.0.1')", True),
    ("ip.isCanonical('2001:db8::abcd')", True),
    ("ip.isCanonical('2001:DB8::ABCD')", False),
    ("ip.isCanonical('2001:db8::0:0:0:abcd')", False),
    ("ip.isCanonical('bad')", ERR, "parse error"),
    ("ip('127.0.0.1').family()", 4),
    ("ip('::1').family()", 6),
    ("ip('0.0.0.0').isUnspecified()", True),
    ("ip('127.0.0.1').isUnspecified()", False),
    ("ip('::').isUnspecified()", True),
    ("ip('::1').isUnspecified()", False),
    ("ip('127.0.0.1').isLoopback()", True),
    ("ip('192.168.0.1').isLoopback()", False),
    ("ip('::1').isLoopback()", True),
    ("ip('2001:db8::abcd').isLoopback()", False),
    ("ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ip('224.0.1.1').isLinkLocalMulticast()", False),
    ("ip('ff02::1').isLinkLocalMulticast()", True),
    ("ip('fd00::1').isLinkLocalMulticast()", False),
    ("ip('169.254.169.254').isLinkLocalUnicast()", True),
    ("ip('192.168.0.1').isLinkLocalUnicast()", False),
    ("ip('fe80::1').isLinkLocalUnicast()", True),
    ("ip('fd80::1').isLinkLocalUnicast()", False),
    ("ip('192.168.0.1').isGlobalUnicast()", True),
    ("ip('255.255.255.255').isGlobalUnicast()", False),
    ("ip('2001:db8::abcd').isGlobalUnicast()", True),
    ("ip('ff00::1').isGlobalUnicast()", False),
    ("string(ip('2001:DB8::1'))", "2001:db8::1"),
)
def test_ip(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


_BAD_BITS = (
    "network address parse error during conversion from string: network address parse error during "
    'conversion from string: netip.ParsePrefix("{}"): bad bits after slash: ""'
)


@cases(
    ("cidr(dyn('192.168.0.0/24')) == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.0/')", ERR, _BAD_BITS.format("192.168.0.0/")),
    ("cidr('2001:db8::/')", ERR, _BAD_BITS.format("2001:db8::/")),
    ("cidr('192.168.0.0/33')", ERR, "prefix length out of range"),
    ("cidr('::1/129')", ERR, "prefix length out of range"),
    ("cidr('::ffff:1.2.3.4/24')", ERR, "IPv4-mapped IPv6 address"),
    ("isCIDR('192.168.0.0/16')", True),
    ("isCIDR('::1/128')", True),
    ("isCIDR('192.168.0.0/33')", False),
    ("isCIDR('::1/129')", False),
    ("isCIDR('192.168.0.0')", False),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))", False),
    ("cidr('192.168.0.0/24').containsIP('192.168.0.1')", True),
    ("cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
    ("cidr('192.168.0.0/24').containsIP('bad')", ERR, "parse error"),
    ("cidr('0.0.0.0/0').containsIP('::1')", False),
    ("cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/25'))", True),
    ("cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/23'))", False),
    ("cidr('192.168.0.0/24').containsCIDR('192.168.0.0/25')", True),
    ("cidr('192.168.0.0/24').containsCIDR('192.168.0.0/23')", False),
    ("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))", True),
    ("cidr('192.168.0.0/16').containsCIDR('192.168.0.1/32')", True),
    ("cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')", False),
    ("cidr('192.168.1.0/24').containsCIDR('bad')", ERR, "network address parse error"),
    ("cidr('2001:db8::/32').containsIP(ip('2001:db8::1'))", True),
    ("cidr('2001:db8::/32').containsIP(ip('2001:dc8::1'))", False),
    ("cidr('2001:db8::/32').containsCIDR(cidr('2001:db8::/33'))", True),
    ("cidr('2001:db8::/32').containsCIDR(cidr('2001:db8::/31'))", False),
    ("cidr('192.168.0.0/24').ip() == ip('192.168.0.0')", True),
    ("cidr('192.168.0.1/24').ip().family()", 4),
    ("cidr('2001:db8::/32').ip() == ip('2001:db8::')", True),
    ("cidr('192.168.0.0/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.1/24') == cidr('192.168.0.1/24').masked()", False),
    ("cidr('2001:db8:1::/32').masked() == cidr('2001:db8::/32')", True),
    ("cidr('192.168.0.0/24').prefixLength()", 24),
    ("cidr('2001:db8::/32').prefixLength()", 32),
    ("string(cidr('192.168.0.0/24'))", "192.168.0.0/24"),
)
def test_cidr(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("sets.contains([], [])", True),
    ("sets.contains([1, 2, 3], [])", True),
    ("sets.contains([1, 2, 3], [3, 1])", True),
    ("sets.contains([1, 2, 3], [4])", False),
    ("sets.contains([1, 2.0, 3u], [1.0, 2u, 3])", True),
    ("sets.contains([true, 'x'], [1])", False),
    ("sets.contains([[1], [2, 3]], [[2, 3]])", True),
    ("sets.equivalent([], [])", True),
    ("sets.equivalent([1], [1, 1])", True),
    ("sets.equivalent([1, 2], [2, 1, 1])", True),
    ("sets.equivalent([1, 2, 3], [1, 2])", False),
    ("sets.intersects([1], [])", False),
    ("sets.intersects([1], [1, 2])", True),
    ("sets.intersects([[1], [2, 3]], [[1, 2], [2, 3.0]])", True),
    ("sets.intersects(['a'], ['b'])", False),
)
def test_sets(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@cases(
    ("'%s/%s'.format(['ns', 'name'])", "ns/name"),
    ("'%d items'.format([3])", "3 items"),
    ("'%.2f'.format([1.2345])", "1.23"),
    ("'%x'.format([255])", "ff"),
    ("'%s'.format([[1, 2]])", "[1, 2]"),
    ("'%d'.format(['a'])", ERR, None),
    ("optional.of(1).hasValue()", True),
    ("optional.none().orValue(5)", 5),
    ("{'a': 1}.?b.orValue(0)", 0),
    ("{'a': 1}[?'a'].value()", 1),
    ("optional.none().value()", ERR, None),
    ("base64.encode(b'hello')", "aGVsbG8="),
    ("base64.decode('aGVsbG8=') == b'hello'", True),
    ("base64.decode('!!')", ERR, None),
)
def test_bundled_extensions(env: Any, expr: str, expected: Any, message: str | None) -> None:
    check(env, expr, expected, message)


@pytest.mark.parametrize(
    "expr",
    [
        "quantity(1)",
        "quantity('1', '2')",
        "isQuantity(1)",
        "isQuantity([1, 2, 3])",
        "semver(1)",
        "isSemver([1, 2, 3])",
        "isSemver('1.0.0', 'true')",
        "cidr(192168)",
        "ip(1)",
        "isIP(1)",
        "isCIDR(1)",
        "url(1)",
        "isURL(1)",
        "'a'.find(1)",
        "'a'.findAll('a', 'b')",
        "'a'.findAll('a', 1, 2)",
        "quantity('1').add('1')",
        "quantity('1').add(1.0)",
        "quantity('1').isGreaterThan(1)",
        "semver('1.0.0').compareTo('1.0.0')",
        "cidr('10.0.0.0/8').containsIP(1)",
        "cidr('10.0.0.0/8').containsCIDR(1)",
        "ip.isCanonical(1)",
        "'a'.isSorted()",
        "1.sum()",
        "[1].indexOf()",
        "sets.contains([1], 1)",
        "sets.intersects([1])",
        "sets.contains([true], [1])",
        "url('/a').getHost(1)",
    ],
)
def test_misuse_is_a_compile_error(env: Any, expr: str) -> None:
    with pytest.raises(RuntimeError, match=r"no matching overload|undeclared reference"):
        env.compile(expr)


def test_policy_env_has_the_libraries() -> None:
    is_error, value = evaluate(
        policy_env(),
        "object.spec.containers.all(c, quantity(c.resources.limits.memory).isLessThan(quantity('1Gi')))",
        {"object": {"spec": {"containers": [{"resources": {"limits": {"memory": "512Mi"}}}]}}},
    )
    assert not is_error and value is True


def test_errors_stay_errors_under_negation(env: Any) -> None:
    # A failing library call must never read as `false` to a policy.
    is_error, _ = evaluate(env, "!quantity('bad').isInteger()")
    assert is_error
    is_error, _ = evaluate(env, "quantity('bad').isInteger() == false")
    assert is_error


def test_unknown_map_is_no_such_overload(env: Any) -> None:
    check(env, "{'a': 'b'}.isGreaterThan({'a': 'b'})", ERR, "no such overload")
    check(env, "{'__k8s': 'ip', 'v': '1.2.3.4'}.masked()", ERR, "no such overload")


# cel-go ext.Lists sort() and distinct(), which charter adds for deterministic messages and fast dedupe.
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[3, 1, 2].sort()", [1, 2, 3]),
        ("['b', 'a', 'c'].sort()", ["a", "b", "c"]),
        ("[].sort()", []),
        ("{'b': 1, 'a': 2}.map(k, k).sort().join(',')", "a,b"),
        ("[1, 2, 1, 3, 2].distinct()", [1, 2, 3]),
        ("['x', 'y', 'x'].distinct()", ["x", "y"]),
        ("[1, 1.0, 1u].distinct().size()", 1),
    ],
)
def test_ext_lists_sort_distinct(expr: str, expected: object) -> None:
    value = policy_env().compile(expr).eval(data={})
    assert value.plain_value() == expected


def test_sort_of_mixed_types_is_an_error() -> None:
    value = policy_env().compile("[1, 'a'].sort()").eval(data={})
    assert (
        "no such overload" in str(value.value()).lower() or "no_such_overload" in str(value.value()).lower()
    )
