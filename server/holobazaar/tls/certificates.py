"""A local certificate authority and a server certificate signed by it, kept under
<data-dir>/tls/, plus the checks an operator-supplied certificate must pass.

The CA is generated once and reused, because every phone that trusted it would have to
trust a new one. The server certificate is cheap: it is re-issued whenever the machine's
names change (a new Wi-Fi address) or it nears expiry."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from holobazaar.tls.addresses import LocalNames, local_names
from holobazaar.tls.files import TlsFileError, TlsFiles, ca_path, tls_dir

__all__ = ["TlsFileError", "TlsFiles", "ca_path", "tls_dir"]  # their old home

CA_DAYS = 3650
# Apple refuses TLS server certificates valid for more than 825 days even under a
# user-trusted root, and browsers cap public ones at 398: stay under both.
LEAF_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start so the key is never readable by others, even briefly.
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: accepted by every phone browser, and generated in milliseconds.
    return ec.generate_private_key(ec.SECP256R1())


def generate_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Holobazaar"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def san_entries(names: LocalNames) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns]
    entries += [x509.IPAddress(ip) for ip in names.ips]
    return entries


def generate_leaf(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                  names: LocalNames) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    cn = names.dns[1] if len(names.dns) > 1 else names.dns[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


SanAddress = (ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network
              | ipaddress.IPv6Network)


def covered_names(cert: x509.Certificate) -> tuple[set[str], set[SanAddress]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(san.get_values_for_type(x509.DNSName)), set(san.get_values_for_type(x509.IPAddress))


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as phones show it (colon-separated upper-case hex)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _leaf_needs_renewal(leaf_file: Path, key_file: Path, ca: x509.Certificate,
                        names: LocalNames) -> str | None:
    if not leaf_file.exists() or not key_file.exists():
        return "no server certificate yet"
    try:
        leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError):
        return "the stored server certificate or key was unreadable"
    if not signed_by(leaf, ca):
        return "the stored server certificate was not issued by the current CA"
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        return "the stored server key does not match its certificate"
    if leaf.not_valid_after_utc - _now() < RENEW_BEFORE:
        return "the server certificate was near expiry"
    dns, ips = covered_names(leaf)
    if dns != set(names.dns) or ips != set(names.ips):
        return "this machine's names or addresses changed"
    return None


def ensure_local_certificates(data_dir: Path, names: LocalNames | None = None) -> TlsFiles:
    """Create the CA once, then (re-)issue the server certificate when needed."""
    names = names or local_names()
    folder = tls_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, ca_key_file = folder / "ca.pem", folder / "ca-key.pem"
    leaf_file, leaf_key_file = folder / "server.pem", folder / "server-key.pem"
    issued = []
    if ca_file.exists() and ca_key_file.exists():
        try:
            ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
            ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        except (ValueError, TypeError) as exc:
            raise TlsFileError(ca_file, f"stored CA is unreadable ({exc}); delete "
                               f"{folder} to create a new one (phones must trust it again)"
                               ) from None
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TlsFileError(ca_key_file, "stored CA key is not an EC key")
        if ca.not_valid_after_utc < _now() + dt.timedelta(days=LEAF_DAYS):
            raise TlsFileError(ca_file, "stored CA expires soon; delete it to create a new one")
    else:
        ca, ca_key = generate_ca(f"Holobazaar local CA ({socket.gethostname()})")
        _write_private(ca_key_file, _key_pem(ca_key))
        _write_public(ca_file, ca.public_bytes(serialization.Encoding.PEM))
        issued.append(f"created a local certificate authority: {ca_file}")
    reason = _leaf_needs_renewal(leaf_file, leaf_key_file, ca, names)
    if reason:
        leaf, leaf_key = generate_leaf(ca, ca_key, names)
        _write_private(leaf_key_file, _key_pem(leaf_key))
        _write_public(leaf_file, leaf.public_bytes(serialization.Encoding.PEM))
        issued.append(f"issued a server certificate ({reason}): {leaf_file}")
    return TlsFiles(leaf_file, leaf_key_file, ca_file, "; ".join(issued))


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path, what: str) -> bytes:
    if not path.exists():
        raise TlsFileError(path, f"{what} file does not exist")
    if not path.is_file():
        raise TlsFileError(path, f"{what} path is not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFileError(path, f"{what} file is not readable ({exc.strerror})") from None


def check_certificate_pair(certfile: Path, keyfile: Path) -> TlsFiles:
    """An operator-supplied certificate (PEM, chain allowed) and key: refuse with the file
    and the problem rather than letting the TLS handshake fail on every phone later."""
    cert_bytes = _read(certfile, "certificate")
    key_bytes = _read(keyfile, "key")
    try:
        chain = x509.load_pem_x509_certificates(cert_bytes)
    except ValueError:
        raise TlsFileError(certfile, "is not a PEM certificate") from None
    cert = chain[0]
    now = _now()
    if cert.not_valid_after_utc < now:
        raise TlsFileError(certfile, f"certificate expired on "
                           f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise TlsFileError(certfile, f"certificate is not valid before "
                           f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except TypeError:
        raise TlsFileError(keyfile, "key is encrypted; give an unencrypted PEM key") from None
    except ValueError:
        raise TlsFileError(keyfile, "is not a PEM private key") from None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise TlsFileError(keyfile, f"key does not match the certificate in {certfile}")
    return TlsFiles(certfile, keyfile, None)
