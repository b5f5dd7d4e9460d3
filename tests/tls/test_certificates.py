"""The generated CA and server certificate, and the checks on operator-supplied files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from holobazaar.tls.addresses import LocalNames, local_names
from holobazaar.tls.certificates import (
    TlsFileError,
    check_certificate_pair,
    covered_names,
    ensure_local_certificates,
    generate_ca,
    generate_leaf,
)

NAMES = LocalNames(("localhost", "stallhost", "stallhost.local"),
                   (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
                    ipaddress.ip_address("192.168.1.23")))


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_leaf_chains_to_ca_and_covers_the_names(tmp_path: Path) -> None:
    files = ensure_local_certificates(tmp_path, NAMES)
    ca, leaf = load(files.ca_file), load(files.certfile)
    leaf.verify_directly_issued_by(ca)  # raises if the signature or issuer is wrong
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    dns, ips = covered_names(leaf)
    assert dns == {"localhost", "stallhost", "stallhost.local"}
    assert ips == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
                   ipaddress.ip_address("192.168.1.23")}
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=398)
    key = serialization.load_pem_private_key(files.keyfile.read_bytes(), None)
    assert key.public_key() == leaf.public_key()
    for private in ("ca-key.pem", "server-key.pem"):
        mode = stat.S_IMODE(os.stat(tmp_path / "tls" / private).st_mode)
        assert mode == 0o600, f"{private} has mode {oct(mode)}"


def test_real_machine_names_are_covered(tmp_path: Path) -> None:
    names = local_names()
    assert "localhost" in names.dns
    assert ipaddress.ip_address("127.0.0.1") in names.ips
    assert not any(ip.is_link_local for ip in names.ips)
    dns, ips = covered_names(load(ensure_local_certificates(tmp_path).certfile))
    assert dns == set(names.dns) and ips == set(names.ips)


def test_ca_is_reused_and_leaf_reissued_when_names_change(tmp_path: Path) -> None:
    first = ensure_local_certificates(tmp_path, NAMES)
    ca_bytes, leaf_bytes = first.ca_file.read_bytes(), first.certfile.read_bytes()
    again = ensure_local_certificates(tmp_path, NAMES)
    assert again.issued == ""
    assert again.certfile.read_bytes() == leaf_bytes
    moved = LocalNames(NAMES.dns, (*NAMES.ips[:2], ipaddress.ip_address("10.0.0.7")))
    changed = ensure_local_certificates(tmp_path, moved)
    assert "names or addresses changed" in changed.issued
    assert changed.ca_file.read_bytes() == ca_bytes, "the CA phones trust must not change"
    leaf = load(changed.certfile)
    leaf.verify_directly_issued_by(load(changed.ca_file))
    assert ipaddress.ip_address("10.0.0.7") in covered_names(leaf)[1]


def _write_pair(folder: Path, days: int = 30, start_days: int = -1) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "market.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=start_days))
            .not_valid_after(now + dt.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_a_good_pair_passes(tmp_path: Path) -> None:
    certfile, keyfile = _write_pair(tmp_path)
    files = check_certificate_pair(certfile, keyfile)
    assert files.ca_file is None and files.certfile == certfile


@pytest.mark.parametrize("case, which, message", [
    ("missing cert", "cert", "does not exist"),
    ("missing key", "key", "does not exist"),
    ("garbage cert", "cert", "is not a PEM certificate"),
    ("garbage key", "key", "is not a PEM private key"),
    ("expired", "cert", "certificate expired on"),
    ("not yet valid", "cert", "not valid before"),
    ("mismatch", "key", "does not match the certificate"),
    ("directory", "cert", "is not a file"),
])
def test_bad_pairs_name_the_file_and_problem(tmp_path: Path, case: str, which: str,
                                             message: str) -> None:
    certfile, keyfile = _write_pair(tmp_path / "good")
    if case == "missing cert":
        certfile = tmp_path / "nope.pem"
    elif case == "missing key":
        keyfile = tmp_path / "nope-key.pem"
    elif case == "garbage cert":
        certfile.write_text("hello")
    elif case == "garbage key":
        keyfile.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    elif case == "expired":
        certfile, keyfile = _write_pair(tmp_path / "old", days=-1, start_days=-30)
    elif case == "not yet valid":
        certfile, keyfile = _write_pair(tmp_path / "future", days=60, start_days=10)
    elif case == "mismatch":
        _, keyfile = _write_pair(tmp_path / "other")
    elif case == "directory":
        certfile = tmp_path
    with pytest.raises(TlsFileError) as caught:
        check_certificate_pair(certfile, keyfile)
    assert caught.value.path == (certfile if which == "cert" else keyfile)
    assert message in caught.value.problem
    assert str(caught.value.path) in str(caught.value)


def test_unreadable_key_is_refused(tmp_path: Path) -> None:
    certfile, keyfile = _write_pair(tmp_path)
    keyfile.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(TlsFileError, match="not readable") as caught:
            check_certificate_pair(certfile, keyfile)
        assert caught.value.path == keyfile
        return
    # Root reads anything: run the same check in a forked child that drops to "nobody"
    # (on a pair in a folder that user can reach; pytest's tmp folders are root-only).
    shared = Path(tempfile.mkdtemp(prefix="holobazaar-unreadable-"))
    shared.chmod(0o755)
    certfile, keyfile = _write_pair(shared)
    certfile.chmod(0o644)
    keyfile.chmod(0)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                check_certificate_pair(certfile, keyfile)
                report = "accepted"
            except TlsFileError as exc:
                report = f"{exc.path}|{exc.problem}"
            except Exception as exc:
                report = f"unexpected {exc!r}"
            os.write(writer, report.encode())
        finally:
            os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    with os.fdopen(reader) as pipe:
        report = pipe.read()
    shutil.rmtree(shared)
    assert report.startswith(f"{keyfile}|"), report
    assert "not readable" in report


def test_generated_leaf_is_rejected_by_another_ca() -> None:
    ca, ca_key = generate_ca("one")
    other, _ = generate_ca("two")
    leaf, _ = generate_leaf(ca, ca_key, NAMES)
    with pytest.raises(ValueError, match="Issuer"):
        leaf.verify_directly_issued_by(other)
