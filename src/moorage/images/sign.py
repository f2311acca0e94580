"""Signatures compatible with cosign's key-based signing.

A signature is a *simple signing* payload (``{"critical": {"identity":
{"docker-reference": …}, "image": {"docker-manifest-digest": …}, "type": "cosign
container image signature"}, "optional": null}``), signed with ECDSA P-256 over
SHA-256, stored in the image's repository under the tag ``sha256-<hex>.sig`` as an
OCI manifest whose layers are the payloads, each annotated with
``dev.cosignproject.cosign/signature`` (the base64 DER signature). Signing again
appends a layer, as cosign does. Keys are PEM: a PKCS#8 private key and a PKIX
``PUBLIC KEY``, so ``cosign verify --key moorage.pub`` accepts what this signs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from moorage.engine_api.reference import parse_image_ref
from moorage.images.interface import ImageError, SignatureError
from moorage.images.registry import OCI_MANIFEST, Registry, RegistryError

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIMPLESIGNING_TYPE",
    "Verified",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_keys",
    "parse_public_keys",
    "registry_target",
    "sign_image",
    "signature_tag",
    "verify_image",
]

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
"""The layer annotation cosign keeps a signature in."""
SIMPLESIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
"""The media type of a simple signing payload."""
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
"""The config media type of a signature manifest."""
PAYLOAD_TYPE = "cosign container image signature"
"""The ``critical.type`` of a cosign container signature."""


def registry_target(image: str) -> tuple[Registry, str, str]:
    """The registry, repository and manifest digest that ``image`` names: what is
    signed or verified (a tag is resolved to its digest once, here)."""
    ref = parse_image_ref(image)
    if ref.is_id:
        raise ImageError(f"{image!r} is an image id; signing needs a registry name (registry/repo:tag)")
    registry = Registry(ref.registry)
    digest = ref.digest or registry.head_manifest(ref.repository, ref.tag or "latest")
    if digest is None:
        raise ImageError(f"{image} was not found in the registry {ref.registry}")
    return registry, ref.repository, digest


def signature_tag(digest: str) -> str:
    """The tag cosign stores the signatures of ``digest`` under."""
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64:
        raise SignatureError(f"{digest!r} is not a sha256 manifest digest")
    return f"sha256-{hexd}.sig"


def key_id(pub: ec.EllipticCurvePublicKey) -> str:
    """A short, stable id of a public key (its SPKI digest), shown in reports."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def generate_key(prefix: Path, password: bytes | None = None) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (PKCS#8 PEM, encrypted when a password is given, mode
    0600) and ``PREFIX.pub`` (PKIX PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_path, pub_path = prefix.with_suffix(".key"), prefix.with_suffix(".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise SignatureError(f"{p} already exists; move it away or choose another --output")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv)
    pub_path.write_bytes(pub)
    return key_path, pub_path


def load_private_key(path: Path, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """A PEM private key (decrypted with ``password`` when encrypted); it must be ECDSA P-256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read the key {path}: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:
        raise SignatureError(f"{path} is encrypted: set MOORAGE_KEY_PASSWORD (or COSIGN_PASSWORD)") from exc
    except ValueError as exc:
        if b"ENCRYPTED SIGSTORE PRIVATE KEY" in data:
            raise SignatureError(
                f"{path} is a cosign-encrypted key; export it with cosign or use moorage key generate"
            ) from exc
        raise SignatureError(f"{path} is not a PEM private key (or the password is wrong): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"{path} is not an ECDSA P-256 key, which cosign-compatible signing needs")
    return key


def parse_public_keys(text: bytes, where: str) -> list[ec.EllipticCurvePublicKey]:
    """Every PEM ``PUBLIC KEY`` block in ``text`` (one file may hold several)."""
    blocks = [b for b in text.split(b"-----END PUBLIC KEY-----") if b"-----BEGIN PUBLIC KEY-----" in b]
    if not blocks:
        raise SignatureError(f"{where} holds no PEM PUBLIC KEY block")
    keys = []
    for b in blocks:
        try:
            key = serialization.load_pem_public_key(b + b"-----END PUBLIC KEY-----\n")
        except ValueError as exc:
            raise SignatureError(f"{where}: a PUBLIC KEY block is malformed: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError(f"{where}: only ECDSA public keys are supported")
        keys.append(key)
    return keys


def load_public_keys(paths: list[Path]) -> list[ec.EllipticCurvePublicKey]:
    """Every PEM public key in the files given (several are in force at once, for rotation)."""
    keys = []
    for path in paths:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise SignatureError(f"cannot read the public key {path}: {exc}") from exc
        keys += parse_public_keys(text, str(path))
    return keys


def payload(docker_reference: str, digest: str) -> bytes:
    """The simple signing payload that signs ``digest`` as ``docker_reference``."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _config(layer_digests: list[str]) -> bytes:
    doc = {
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sign_image(registry: Registry, repo: str, digest: str, key: ec.EllipticCurvePrivateKey) -> str:
    """Sign ``repo@digest`` and push the signature; returns the signature tag."""
    tag = signature_tag(digest)
    body = payload(f"{registry.host}/{repo}", digest)
    sig = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    layers: list[dict[str, Any]] = []
    try:
        existing = registry.get_manifest(repo, tag).json()
        layers = [d for d in existing.get("layers") or [] if isinstance(d, dict)]
    except RegistryError as exc:
        if exc.status != 404:
            raise SignatureError(f"reading the existing signatures of {repo}@{digest}: {exc}") from exc
    payload_digest = registry.put_blob(repo, body)
    layers.append(
        {
            "mediaType": SIMPLESIGNING_TYPE,
            "size": len(body),
            "digest": payload_digest,
            "annotations": {SIGNATURE_ANNOTATION: sig},
        }
    )
    config = _config([d["digest"] for d in layers])
    config_digest = registry.put_blob(repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
        "layers": layers,
    }
    registry.put_manifest(repo, tag, json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST)
    return tag


@dataclass(frozen=True)
class Verified:
    """A verified signature: which key signed which digest, for which reference."""

    digest: str
    key_id: str  # the first key that verified
    docker_reference: str
    signatures: int
    key_ids: tuple[str, ...] = ()  # every trusted key with a valid signature (rotation)


def verify_image(
    registry: Registry, repo: str, digest: str, keys: list[ec.EllipticCurvePublicKey]
) -> Verified:
    """Check that a trusted key signed ``repo@digest``: the payload blob matches its
    digest, the signature verifies, and the payload names this very digest."""
    if not keys:
        raise SignatureError("no trusted public keys are configured")
    tag = signature_tag(digest)
    try:
        manifest = registry.get_manifest(repo, tag).json()
    except RegistryError as exc:
        if exc.status == 404:
            raise SignatureError(
                f"{registry.host}/{repo}@{digest} is not signed: there is no {tag} signature"
            ) from exc
        raise SignatureError(f"reading the signatures of {repo}@{digest}: {exc}") from exc
    reasons: list[str] = []
    good: list[tuple[str, str]] = []
    layers = [d for d in manifest.get("layers") or [] if isinstance(d, dict)]
    for n, desc in enumerate(layers, 1):
        if desc.get("mediaType") != SIMPLESIGNING_TYPE:
            continue
        sig_b64 = (desc.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if not isinstance(sig_b64, str):
            reasons.append(f"signature {n}: no {SIGNATURE_ANNOTATION} annotation")
            continue
        try:
            body = registry.get_blob(repo, str(desc.get("digest")), limit=1 << 20)
        except RegistryError as exc:
            reasons.append(f"signature {n}: the payload can't be trusted ({exc})")
            continue
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except ValueError:
            reasons.append(f"signature {n}: the signature annotation is not base64")
            continue
        signer = None
        for k in keys:
            try:
                k.verify(sig, body, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            signer = k
            break
        if signer is None:
            reasons.append(f"signature {n}: does not verify with any of the {len(keys)} trusted key(s)")
            continue
        try:
            doc = json.loads(body)
            crit = doc["critical"]
            signed_digest = crit["image"]["docker-manifest-digest"]
            ptype = crit["type"]
            ref = str(crit["identity"]["docker-reference"])
        except (ValueError, KeyError, TypeError):
            reasons.append(f"signature {n}: the payload is not a simple signing document")
            continue
        if ptype != PAYLOAD_TYPE:
            reasons.append(f"signature {n}: payload type {ptype!r} is not {PAYLOAD_TYPE!r}")
            continue
        if signed_digest != digest:
            reasons.append(f"signature {n}: it signs {signed_digest}, not this image's {digest}")
            continue
        good.append((key_id(signer), ref))
    if good:
        ids = tuple(dict.fromkeys(k for k, _ in good))
        return Verified(digest, good[0][0], good[0][1], len(layers), ids)
    if not reasons:
        reasons.append("the signature manifest holds no simple signing payloads")
    raise SignatureError(f"{registry.host}/{repo}@{digest} has no valid signature: " + "; ".join(reasons))
