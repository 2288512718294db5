"""Offline verification of a whole log: every signature, every index, the tree, every checkpoint.

Records are verified by a process pool (forked where the platform allows), so verification uses
every core: each worker streams its own contiguous ranges straight from the store (guided: large
ranges first, small ones last so the workers finish together), checks charter's own envelope
layout by slicing bytes (falling back to full JSON parsing for anything else) and sends back only
the leaf hashes and the failures. While the workers verify, the parent checks the checkpoints'
signatures and grows the tree (every level kept) from the leaf hashes in index order; each
checkpoint's root and the consistency of successive checkpoints are then read from that tree.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .crypto import (
    PAYLOAD_TYPE,
    EnvelopeError,
    NoteError,
    key_ids,
    open_checkpoint,
    parse_checkpoint_body,
    raw_public,
    split_note,
    verify_envelope,
)
from .merkle import Tree, verify_consistency
from .record import PREDICATE_TYPE, STATEMENT_TYPE
from .store import Store, open_store


@dataclass(frozen=True, slots=True)
class Failure:
    index: int  # the first log index the failure concerns (for a checkpoint: its size - 1)
    kind: str  # signature|malformed|payload|index-mismatch|leaf-hash|missing|truncated|checkpoint-*|...
    detail: str

    def __str__(self) -> str:
        return f"index {self.index}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class Report:
    records: int = 0
    checkpoints: int = 0
    tree_size: int = 0
    root: bytes = b""
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first(self) -> Failure | None:
        return min(self.failures, key=lambda f: f.index) if self.failures else None


def check_record(
    index: int, envelope: bytes, pub: Ed25519PublicKey, ids: frozenset[str] | None = None
) -> Failure | None:
    """Signature over the payload bytes as received; then the signed index must be the row's."""
    try:
        payload = verify_envelope(envelope, pub, ids=ids)
    except EnvelopeError as e:
        return Failure(index, e.kind, e.detail)
    signed = _signed_index(payload)
    if signed is not None:
        return None if signed == index else _mismatch(index, signed)
    try:
        st = json.loads(payload)
        signed = st["predicate"]["logIndex"]
        ok_type = st["_type"] == STATEMENT_TYPE and st["predicateType"] == PREDICATE_TYPE
    except (ValueError, KeyError, TypeError) as e:
        return Failure(index, "payload", f"not a charter decision statement: {e}")
    if not ok_type:
        return Failure(index, "payload", "not a charter decision statement")
    if signed != index:
        return _mismatch(index, signed)
    return None


def _mismatch(index: int, signed: object) -> Failure:
    return Failure(index, "index-mismatch", f"record signed for index {signed} is stored at index {index}")


_PREFIX = b'{"_type":"' + STATEMENT_TYPE.encode() + b'","predicate":{'
_PTYPE = b'},"predicateType":"' + PREDICATE_TYPE.encode() + b'","subject":['
_INDEX = re.compile(rb'"decisionId":"[0-9a-f-]{36}","logIndex":(\d{1,15}),"policySetDigest":"')
_KEY = b'"logIndex":'
_BEFORE_KEY = len(b'"decisionId":"') + 36 + len(b'",')


def _signed_index(payload: bytes, start: int = 0) -> int | None:
    """The signed log index, read from charter's own canonical statement without parsing it all.

    Only a JSON key can contain `"logIndex":` with its quotes unescaped, and charter's statements
    have exactly one such key, right after `decisionId`. Anything else (another producer or
    layout) returns None and is parsed in full. The statement is `payload[start:]`."""
    k = payload.find(_KEY, start)
    if k < start + _BEFORE_KEY or payload.find(_KEY, k + len(_KEY)) >= 0:  # absent, or not once
        return None
    # predicateType comes after the predicate, just before the short subject list: searched from
    # the end (the same answer as `_PTYPE in payload`, without scanning the predicate)
    if not payload.startswith(_PREFIX, start) or payload.rfind(_PTYPE, start) < 0:
        return None
    m = _INDEX.match(payload, k - _BEFORE_KEY)  # the one place a match can start
    return int(m.group(1)) if m else None


# charter's own envelopes, byte for byte as `sign_envelope` writes them:
#   {"payload":"<b64>","payloadType":"<type>","signatures":[{"keyid":"<hex>","sig":"<b64>"}]}
# The payload and signature are decoded with strict base64 (no quote, backslash or any other
# character outside the alphabet passes), and the keyid must be one of the key's ids (hex), so
# no JSON escape can occur and these slices are exactly what `json.loads` would return. Any
# other layout goes through `check_record` (full JSON parsing).
_ENV_HEAD = b'{"payload":"'
_ENV_MID = b'","payloadType":"' + PAYLOAD_TYPE.encode() + b'","signatures":[{"keyid":"'
_ENV_SIG = b'","sig":"'
_ENV_TAIL = b'"}]}'
_PAE_PREFIX = b"DSSEv1 %d %b " % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode())


def _decode_fast(envelope: bytes, ids: frozenset[bytes]) -> tuple[bytes, bytes, int] | None:
    """(signature, PAE message, where the payload starts in it) of charter's own envelope layout,
    strictly decoded; None for any other layout or anything not strict base64 (the full check
    then decides)."""
    # Found from the end: the signature (88 characters) and keyid (64) are short, the payload
    # long. A payload that held these bytes is not strict base64 and goes to the full check.
    cut = envelope.rfind(_ENV_SIG)
    mid = envelope.rfind(_ENV_MID, 0, cut)
    if (
        mid < len(_ENV_HEAD)
        or cut + len(_ENV_SIG) > len(envelope) - len(_ENV_TAIL)
        or not envelope.startswith(_ENV_HEAD)
        or not envelope.endswith(_ENV_TAIL)
        or envelope[mid + len(_ENV_MID) : cut] not in ids
    ):
        return None
    view = memoryview(envelope)  # base64 decoded in place, no copy of the slice
    try:
        payload = binascii.a2b_base64(view[len(_ENV_HEAD) : mid], strict_mode=True)
        sig = binascii.a2b_base64(view[cut + len(_ENV_SIG) : -len(_ENV_TAIL)], strict_mode=True)
    except binascii.Error:
        return None
    finally:
        view.release()
    message = b"%b%d %b" % (_PAE_PREFIX, len(payload), payload)
    return sig, message, len(message) - len(payload)


def _after_signature(
    index: int, envelope: bytes, message: bytes, start: int, pub: Ed25519PublicKey, ids: frozenset[bytes]
) -> Failure | None:
    """The verdict on a record whose signature verified: its signed index (the payload is
    `message[start:]`) must be `index`."""
    signed = _signed_index(message, start)
    if signed is None:  # not charter's canonical layout: the full check decides
        return check_record(index, envelope, pub, frozenset(i.decode() for i in ids))
    return None if signed == index else _mismatch(index, signed)


def check_record_fast(
    index: int, envelope: bytes, pub: Ed25519PublicKey, ids: frozenset[bytes]
) -> Failure | None:
    """`check_record` for charter's own envelope layout without parsing JSON; the same verdicts
    (the tests compare both on every tampering). The payload bytes verified are the stored ones."""
    decoded = _decode_fast(envelope, ids)
    if decoded is None:
        return check_record(index, envelope, pub, frozenset(i.decode() for i in ids))
    sig, message, start = decoded
    try:
        pub.verify(sig, message)
    except (InvalidSignature, ValueError):
        return Failure(index, "signature", "no valid signature by the given public key")
    return _after_signature(index, envelope, message, start, pub, ids)


_BATCH = 64  # records decoded, then verified back to back, then checked: OpenSSL's verify stays hot


def _verify_range(
    url: str, pub_raw: bytes, lo: int, hi: int
) -> tuple[int, list[int] | None, bytes, list[Failure]]:
    """Verify records lo <= idx < hi, read straight from the store by this worker.

    Each record gets `check_record_fast`'s verdict (then the stored leaf hash is compared), taken
    in three passes over a batch of records: decode, verify the signatures back to back, check
    the signed indexes. Returns (lo, the indexes found unless they are exactly lo..lo+n-1, the n
    leaf hashes concatenated, failures): compact for the trip back to the parent."""
    from .store import open_store as _open

    pub = Ed25519PublicKey.from_public_bytes(pub_raw)
    verify = pub.verify
    idxs: list[int] | None = None  # kept from the first gap on
    hashes = bytearray()
    failures: list[Failure] = []
    ids = frozenset(i.encode() for i in key_ids(pub))
    leaf0 = hashlib.sha256(b"\x00")
    n = lo
    for batch in _open(url).scan_batches(lo, hi, _BATCH):
        decoded = []
        for i, env, stored in batch:
            if type(env) is not bytes:
                env = bytes(env)
            h = leaf0.copy()
            h.update(env)
            lh = h.digest()
            if idxs is not None:
                idxs.append(int(i))
            elif i != n:  # the first gap: from here on every index is kept
                idxs = [*range(lo, n), int(i)]
            n += 1
            hashes += lh
            decoded.append((i, env, stored == lh, _decode_fast(env, ids)))
        good = []
        for _, _, _, d in decoded:
            if d is None:
                good.append(False)
                continue
            try:
                verify(d[0], d[1])
                good.append(True)
            except (InvalidSignature, ValueError):
                good.append(False)
        for (i, env, same_leaf, d), ok in zip(decoded, good, strict=True):
            if d is None:
                f = check_record(i, env, pub, frozenset(x.decode() for x in ids))
            elif not ok:
                f = Failure(i, "signature", "no valid signature by the given public key")
            elif _signed_index(d[1], d[2]) == i:  # the common case: `_after_signature` is None
                f = None
            else:
                f = _after_signature(i, env, d[1], d[2], pub, ids)
            if f is not None:
                failures.append(f)
            elif not same_leaf:
                failures.append(Failure(i, "leaf-hash", "stored leaf hash does not match the envelope"))
    return lo, idxs, bytes(hashes), failures


def _ranges(size: int, workers: int, chunk: int | None) -> list[tuple[int, int]]:
    """The ranges the workers take, in order. A fixed `chunk`, or guided: each range a share of
    what is left (large first: few round trips; small last: the workers finish together)."""
    out: list[tuple[int, int]] = []
    lo = 0
    while lo < size:
        step = chunk or max(_MIN_RANGE, min(_MAX_RANGE, -(-(size - lo) // (2 * workers))))
        out.append((lo, min(size, lo + step)))
        lo += step
    return out


_MIN_RANGE = 500  # ~60 ms of one worker: the longest a worker can wait for the other at the end
_MAX_RANGE = 50_000


def verify_log(
    url: str,
    pub: Ed25519PublicKey,
    *,
    origin: str | None = None,
    published: Sequence[str] = (),
    workers: int | None = None,
    chunk: int | None = None,
) -> Report:
    store = open_store(url)
    rep = Report()
    meta = store.meta()
    origin = origin or meta.get("origin", "")
    max_idx = store.size()
    n = workers if workers is not None else (os.cpu_count() or 1)
    ranges = _ranges(max_idx, n, chunk)
    pub_raw = raw_public(pub)

    results: Iterator[tuple[int, list[int] | None, bytes, list[Failure]]]
    with contextlib.ExitStack() as stack:
        if n > 1 and len(ranges) > 1:
            # The workers start on the records at once; the parent checks the checkpoints meanwhile.
            import multiprocessing as mp

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            ex = ProcessPoolExecutor(max_workers=min(n, len(ranges)), mp_context=ctx)
            # on the way out every range has been taken; after an error, the rest are not started
            stack.callback(ex.shutdown, wait=True, cancel_futures=True)
            args = zip(*[(url, pub_raw, lo, hi) for lo, hi in ranges], strict=True)
            results = ex.map(_verify_range, *args)
        else:
            results = (_verify_range(url, pub_raw, lo, hi) for lo, hi in ranges)
        rep.records = store.count()
        needed, parsed = _checkpoints(store, origin, pub, published, rep)
        tree, broken = _recompute(results, rep)
    leaves = tree.levels[0]
    rep.tree_size = len(leaves)
    roots = {size: tree.root(size) for size in needed if size <= len(leaves)}

    for size in sorted(needed):
        if size > len(leaves):
            kind = "missing" if broken else "truncated"
            rep.failures.append(
                Failure(
                    len(leaves),
                    kind,
                    f"a checkpoint covers {size} records but the log has {len(leaves)} valid in order",
                )
            )
    for size, root, where in parsed:
        if size in roots and roots[size] != root:
            below = [s for s, r, _ in parsed if s < size and roots.get(s) == r]
            since = max(below, default=0)
            rep.failures.append(
                Failure(
                    max(size - 1, 0),  # a root cannot say which leaf differs; the range can be bounded
                    "checkpoint-root",
                    f"{where} checkpoint at size {size} does not match the recomputed tree "
                    f"(records {since}..{size - 1} differ from what it signed)",
                )
            )
    good = sorted({s for s, r, _ in parsed if roots.get(s) == r})
    for a, b in itertools.pairwise(good):
        # Implied by both roots matching the recomputed tree; proven explicitly all the same
        # (O(log n) per pair: the tree keeps every level).
        proof = tree.consistency_proof(a, b)
        if not verify_consistency(a, b, roots[a], roots[b], proof):  # pragma: no cover
            rep.failures.append(Failure(a, "consistency", f"checkpoints {a} and {b} are not consistent"))
    if leaves:
        rep.root = tree.root()
    return rep


def _checkpoints(
    store: Store, origin: str, pub: Ed25519PublicKey, published: Sequence[str], rep: Report
) -> tuple[set[int], list[tuple[int, bytes, str]]]:
    """Every stored and published checkpoint's signature and size: the sizes whose roots the
    recomputed tree must give, and (size, signed root, where) for each good one."""
    cps = store.checkpoints()
    rep.checkpoints = len(cps)
    notes = [(s, n_, "stored") for s, n_ in cps] + [(None, n_, "published") for n_ in published]
    parsed: list[tuple[int, bytes, str]] = []
    for size_col, note, where in notes:
        try:
            cp = open_checkpoint(note, origin, pub)
        except NoteError as e:
            s = size_col if size_col is not None else _size_of(note)
            rep.failures.append(
                Failure(max(s - 1, 0), "checkpoint-signature", f"{where} checkpoint at size {s}: {e}")
            )
            continue
        if size_col is not None and cp.size != size_col:
            rep.failures.append(
                Failure(
                    max(size_col - 1, 0), "checkpoint-size", f"row for size {size_col} holds size {cp.size}"
                )
            )
            continue
        parsed.append((cp.size, cp.root, where))
    return {size for size, _, _ in parsed}, parsed


def _recompute(
    results: Iterable[tuple[int, list[int] | None, bytes, list[Failure]]], rep: Report
) -> tuple[Tree, bool]:
    """The tree over the leaf hashes, taken in index order as the ranges come back, up to the first
    gap (a `missing` failure; the tree is only meaningful before it); whether there was one."""
    tree = Tree()
    leaves = tree.levels[0]
    broken = False
    for lo, idxs, joined, failures in results:
        rep.failures.extend(failures)
        if broken:
            continue
        hashes = [joined[k : k + 32] for k in range(0, len(joined), 32)]
        if idxs is None and lo == len(leaves):
            tree.extend(hashes)
            continue
        good = 0
        for k, i in enumerate(idxs if idxs is not None else range(lo, lo + len(hashes))):
            if i != len(leaves) + k:
                at = len(leaves) + k
                rep.failures.append(Failure(at, "missing", f"no record at index {at} (next is {i})"))
                broken = True
                break
            good = k + 1
        tree.extend(hashes[:good])
    return tree, broken


def _size_of(note: str) -> int:
    try:
        text, _ = split_note(note)
        return parse_checkpoint_body(text).size
    except NoteError:
        return 0
