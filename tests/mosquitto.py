"""A real mosquitto broker for tests: plain, with a password file, or with TLS.

Each broker gets its own free port on 127.0.0.1 and a generated config in a temp directory, so the
system broker on 1883 is never touched. `stop()` / `start()` restart it on the same port (the
broker-restart tests). TLS material is made here with `cryptography`: a CA, a server certificate
for 127.0.0.1/localhost and a client certificate signed by the same CA.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TlsFiles:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass
class Broker:
    """A running mosquitto; `host`/`port` for clients, `users` name -> password."""

    directory: Path
    port: int
    host: str = "127.0.0.1"
    users: dict[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    require_client_cert: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "user root",
        ]
        if self.users:
            pw = self.directory / "passwd"
            pw.write_text("")
            for name, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start (or restart) on the same port; returns once the port accepts connections."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.log_file.read_text() if self.log_file.exists() else ""
                self.process = None
                raise RuntimeError(f"mosquitto exited at start: {err} {log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port}") from None
                time.sleep(0.02)  # polling a port that is not open yet, not synchronisation

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def make_tls(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A throwaway CA, a server certificate for `host`/localhost and a client certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("v2g test CA"))
        .issuer_name(name("v2g test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, usage: x509.ObjectIdentifier, server: bool
    ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
                ),
                critical=False,
            )
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    files = TlsFiles(
        ca_file=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert, key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, True)
    files.server_cert.write_bytes(cert)
    write_key(key, files.server_key)
    cert, key = leaf("v2g-gateway", ExtendedKeyUsageOID.CLIENT_AUTH, False)
    files.client_cert.write_bytes(cert)
    write_key(key, files.client_key)
    return files


def start_broker(
    directory: Path,
    *,
    users: dict[str, str] | None = None,
    tls: bool = False,
    require_client_cert: bool = False,
) -> Broker:
    """Start mosquitto on a free port; call `.stop()` when done (the fixtures do)."""
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(
        directory=directory,
        port=free_port(),
        users=dict(users or {}),
        tls=make_tls(directory / "tls") if tls else None,
        require_client_cert=require_client_cert,
    )
    broker.write_config()
    broker.start()
    return broker
