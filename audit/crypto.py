"""Keys, canonical JSON, DSSE envelopes and C2SP signed notes: the primitives of the audit log.

Everything here is pure and deterministic so an auditor's machine can re-run it with no
database: a DSSE envelope (PAE, Ed25519) around an RFC 8785 canonical in-toto Statement,
and C2SP signed notes (tlog-checkpoint, tlog-cosignature) signed with Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
_MAX_SAFE = 2**53 - 1


# ---------------------------------------------------------------- canonical JSON


def json_safe(value: Any) -> Any:
    """`value` with the numbers RFC 8785 cannot carry (|int| > 2^53 - 1, NaN, Inf) as decimal strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE <= value <= _MAX_SAFE else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_PLAIN_NUMBER = re.compile(r"\d[.eE]|\d{16}")
# json.dumps output whose numbers (outside strings) are all integers of at most 15 digits: one
# pass, no backtracking (possessive), equivalent to searching `_NOT_PLAIN_NUMBER` after blanking
# the strings with `_STRINGS` (the test suite checks both agree).
_PLAIN_NUMBERS_ONLY = re.compile(r'(?:[^"0-9]++|"[^"\\]*+(?:\\.[^"\\]*+)*+"|[0-9]{1,15}+(?![0-9.eE]))*+')


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical bytes.

    Fast path: `json.dumps(sort_keys=True)` (C) is already the RFC 8785 form when the output has
    no float and no integer beyond 2^53 (checked on the output with the strings blanked out) and
    no character at or above U+E000 (where code point order and UTF-16 order differ). The tests
    prove it equal to `rfc8785.dumps`; anything else goes through `rfc8785` itself, which raises
    for what RFC 8785 cannot carry (see `json_safe`)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):
        return rfc8785.dumps(value)
    if (text.isascii() or max(text) < "\ue000") and _plain_text(text):
        try:
            return text.encode()
        except UnicodeEncodeError:  # lone surrogates: let rfc8785 decide
            pass
    return rfc8785.dumps(value)


def _plain_text(text: str) -> bool:
    """No float and no integer of 16 or more digits outside the strings of json.dumps output."""
    return _PLAIN_NUMBERS_ONLY.fullmatch(text) is not None


def _plain_text_reference(text: str) -> bool:
    """`_plain_text` as it was written first (two searches and a substitution): the tests' oracle."""
    return not _NOT_PLAIN_NUMBER.search(text) or not _NOT_PLAIN_NUMBER.search(_STRINGS.sub("", text))


def canonical_json_of_strings(value: Any, numeric: Any) -> bytes:
    """RFC 8785 bytes of `value` when, by construction, every number in it lies inside `numeric`
    (and is checked there): json.dumps is then the canonical form unless a character at or above
    U+E000 changes the key order. Used for charter's own statements, whose only numbers are the
    log index and the workload's accelerator counts."""
    if not _plain_numbers(numeric):
        return canonical_json(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if text.isascii() or max(text) < "\ue000":
        try:
            return text.encode()
        except UnicodeEncodeError:
            pass
    return rfc8785.dumps(value)


def _plain_numbers(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE <= value <= _MAX_SAFE
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_numbers(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain_numbers(v) for v in value)
    return False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- keys


def raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid(pub: Ed25519PublicKey) -> str:
    """DSSE key id: SHA-256 of the raw 32-byte public key, hex."""
    return sha256_hex(raw_public(pub))


def spki_keyid(pub: Ed25519PublicKey) -> str:
    """The other common convention (SHA-256 of the DER SubjectPublicKeyInfo), accepted on verify."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_hex(der)


def generate_keypair(out_dir: Path, name: str = "audit") -> tuple[Path, Path]:
    """Write `<name>.key` (PKCS#8 PEM, mode 0600, created that way) and `<name>.pub` (SPKI PEM)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    priv_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(priv_path, 0o600)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv_path, pub_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    data = Path(path).read_bytes()
    key = (
        serialization.load_pem_private_key(data, password=None).public_key()
        if b"PRIVATE KEY" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def public_pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------- DSSE


_SAFE_TOKEN = re.compile(r"[A-Za-z0-9.+/=_-]*")


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def sign_envelope(
    key: Ed25519PrivateKey, kid: str, payload: bytes, payload_type: str = PAYLOAD_TYPE
) -> bytes:
    """A DSSE envelope as compact JSON bytes (these exact bytes are the Merkle leaf)."""
    sig = key.sign(pae(payload_type, payload))
    if not _SAFE_TOKEN.fullmatch(payload_type) or not _SAFE_TOKEN.fullmatch(kid):
        env = {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode()}],
        }
        return json.dumps(env, separators=(",", ":")).encode()
    # The same bytes as json.dumps above, without its cost: base64 and these tokens need no escaping.
    return b'{"payload":"%b","payloadType":"%b","signatures":[{"keyid":"%b","sig":"%b"}]}' % (
        base64.b64encode(payload),
        payload_type.encode(),
        kid.encode(),
        base64.b64encode(sig),
    )


class EnvelopeError(Exception):
    """A DSSE envelope that does not verify; `kind` is malformed|signature|payload-type."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def key_ids(pub: Ed25519PublicKey) -> frozenset[str]:
    """The key ids a signature by `pub` may carry (both conventions, or none)."""
    return frozenset({keyid(pub), spki_keyid(pub), ""})


def verify_envelope(
    envelope: bytes,
    pub: Ed25519PublicKey,
    payload_type: str = PAYLOAD_TYPE,
    ids: frozenset[str] | None = None,
) -> bytes:
    """Verify the envelope's signature over the payload bytes exactly as received; return them.

    Signatures whose keyid names another key are ignored; an empty keyid is tried. At least
    one signature by `pub` must verify.
    """
    try:
        env = json.loads(envelope)
        if not isinstance(env, dict):
            raise ValueError("envelope is not a JSON object")
        ptype = env["payloadType"]
        payload = binascii.a2b_base64(env["payload"], strict_mode=True)
        sigs = env["signatures"]
        if not isinstance(ptype, str) or not isinstance(sigs, list) or not sigs:
            raise ValueError("payloadType or signatures missing")
    except (ValueError, KeyError, TypeError) as e:
        raise EnvelopeError("malformed", str(e)) from None
    if ptype != payload_type:
        raise EnvelopeError("payload-type", f"payloadType {ptype!r}, expected {payload_type!r}")
    ids = ids if ids is not None else key_ids(pub)
    message = pae(ptype, payload)
    for s in sigs:
        if not isinstance(s, dict) or s.get("keyid", "") not in ids:
            continue
        try:
            pub.verify(binascii.a2b_base64(s.get("sig", ""), strict_mode=True), message)
            return payload
        except (InvalidSignature, ValueError, TypeError, binascii.Error):
            continue
    raise EnvelopeError("signature", "no valid signature by the given public key")


# ---------------------------------------------------------------- C2SP signed notes

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04


def note_key_id(name: str, pub: Ed25519PublicKey, alg: int = ALG_ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + raw_public(pub)).digest()[:4]


def vkey(name: str, pub: Ed25519PublicKey) -> str:
    """The C2SP verifier key string: name+hex(keyid)+base64(0x01 || pub)."""
    return (
        f"{name}+{note_key_id(name, pub).hex()}+"
        f"{base64.b64encode(bytes([ALG_ED25519]) + raw_public(pub)).decode()}"
    )


def parse_vkey(text: str) -> tuple[str, Ed25519PublicKey]:
    name, hexid, b64 = text.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("not an Ed25519 verifier key")
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    if note_key_id(name, pub).hex() != hexid:
        raise ValueError("verifier key id does not match the key")
    return name, pub


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(f"{x}\n" for x in lines)


class NoteError(Exception):
    """A signed note or checkpoint that does not verify."""


@dataclass(frozen=True, slots=True)
class SignatureLine:
    name: str
    key_id: bytes
    sig: bytes


def split_note(note: str) -> tuple[str, list[SignatureLine]]:
    """Split on the last blank line (C2SP signed-note); the text keeps its final newline."""
    if not note.endswith("\n"):
        raise NoteError("note does not end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("note has no signature block")
    text, block = note[: cut + 1], note[cut + 2 :]
    sigs: list[SignatureLine] = []
    for line in block.splitlines():
        if not line.startswith("\u2014 "):
            raise NoteError(f"malformed signature line {line!r}")
        try:
            name, b64 = line[2:].split(" ")
            raw = base64.b64decode(b64, validate=True)
        except ValueError as e:
            raise NoteError(f"malformed signature line {line!r}: {e}") from None
        if len(raw) < 5:
            raise NoteError("signature too short")
        sigs.append(SignatureLine(name, raw[:4], raw[4:]))
    if not sigs:
        raise NoteError("note has no signatures")
    return text, sigs


def parse_checkpoint_body(text: str) -> Checkpoint:
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("checkpoint has fewer than three lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin or not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise NoteError("bad checkpoint origin or size")
    try:
        root = base64.b64decode(root_s, validate=True)
    except ValueError:
        raise NoteError("bad checkpoint root hash") from None
    if len(root) != 32:
        raise NoteError("checkpoint root is not 32 bytes")
    return Checkpoint(origin, int(size_s), root, tuple(lines[3:]))


def sign_checkpoint(cp: Checkpoint, key: Ed25519PrivateKey, name: str | None = None) -> str:
    name = name or cp.origin
    text = cp.body()
    sig = key.sign(text.encode())
    kid = note_key_id(name, key.public_key())
    return f"{text}\n\u2014 {name} {base64.b64encode(kid + sig).decode()}\n"


def open_checkpoint(note: str, name: str, pub: Ed25519PublicKey) -> Checkpoint:
    """Verify the note's signature by (name, pub) and parse it as a tlog-checkpoint.

    Signatures by unknown keys are ignored; one by the known key that fails rejects the note."""
    text, sigs = split_note(note)
    kid = note_key_id(name, pub)
    found = False
    for s in sigs:
        if s.name != name or s.key_id != kid:
            continue
        try:
            pub.verify(s.sig, text.encode())
        except InvalidSignature:
            raise NoteError(f"invalid signature by {name}") from None
        found = True
    if not found:
        raise NoteError(f"no signature by {name}+{kid.hex()}")
    cp = parse_checkpoint_body(text)
    if cp.origin != name:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the key name {name!r}")
    return cp


def cosign(note: str, witness: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """Add a C2SP tlog-cosignature/v1 line by `witness` to a signed checkpoint note."""
    text, _ = split_note(note)
    msg = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    kid = note_key_id(witness, key.public_key(), ALG_COSIGNATURE_V1)
    raw = kid + struct.pack(">Q", timestamp) + key.sign(msg)
    return f"{note}\u2014 {witness} {base64.b64encode(raw).decode()}\n"


def verify_cosignature(note: str, witness: str, pub: Ed25519PublicKey) -> int:
    """Verify `witness`'s cosignature on the note; return its timestamp."""
    text, sigs = split_note(note)
    kid = note_key_id(witness, pub, ALG_COSIGNATURE_V1)
    for s in sigs:
        if s.name == witness and s.key_id == kid:
            if len(s.sig) != 72:
                raise NoteError("cosignature has the wrong length")
            (ts,) = struct.unpack(">Q", s.sig[:8])
            try:
                pub.verify(s.sig[8:], f"cosignature/v1\ntime {ts}\n{text}".encode())
            except InvalidSignature:
                raise NoteError(f"invalid cosignature by {witness}") from None
            return int(ts)
    raise NoteError(f"no cosignature by {witness}")
