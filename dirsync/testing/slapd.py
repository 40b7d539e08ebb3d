"""A throwaway OpenLDAP server on 127.0.0.1 for tests, demos and benchmarks.

    with Slapd() as server:
        server.add_ldif(sample_company_ldif(server.base_dn))
        print(server.url, server.ldaps_url, server.ca_file)

Each instance owns a temporary directory with its own ``cn=config`` (loaded with ``slapadd -n0``),
an mdb database, a test CA and a server certificate (``trustme``; SAN ``IP:127.0.0.1`` and
``DNS:localhost``, or ``certificate_names``) and listens on two free loopback ports: plain
LDAP (StartTLS available) and LDAPS. slapd runs in the foreground (``-d 0``) as our child
process and is stopped by its PID.

Besides the root DN (``admin_dn``) the database holds a read-only service account
(``reader_dn`` / ``reader_password``); the admin DN may also change ``cn=config`` online.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dirsync.connectors.ldap.client import TransportError
from dirsync.testing.child import ChildProcess, ThrowawayServer
from dirsync.testing.ldap_admin import AdminConnection, LdapAdminError

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPADD = "/usr/bin/ldapadd"
LDAPMODIFY = "/usr/bin/ldapmodify"
MODULE_PATH = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
MODULES = ("back_mdb", "memberof", "refint", "syncprov")
HOST = "127.0.0.1"


class SlapdError(RuntimeError):
    """The test server could not be set up, started or fed; the message includes slapd's output."""


def ssha(password: str) -> str:
    """An ``{SSHA}`` userPassword value, as ``slappasswd`` would make it."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(args: list[str], *, stdin: str | None = None, what: str) -> str:
    env = {**os.environ, "LDAPNOINIT": "1"}  # ignore /etc/ldap/ldap.conf and ~/.ldaprc
    proc = subprocess.run(
        args, input=stdin, capture_output=True, text=True, env=env, check=False, timeout=600
    )
    if proc.returncode != 0:
        output = (proc.stderr + proc.stdout).strip()
        raise SlapdError(f"{what} failed (exit {proc.returncode}): {output[-4000:]}")
    return proc.stdout


class Slapd(ThrowawayServer):
    """One throwaway slapd. Configure in the constructor, then ``start()`` or use ``with``.

    ``size_limit`` is the global ``olcSizeLimit`` (``None`` = unlimited; the root DN is never
    limited); ``limits`` are extra ``olcLimits`` values for the database, e.g.
    ``'dn.exact="cn=reader,dc=example,dc=org" size=10'``. ``syncprov=False`` leaves out the
    syncprov overlay (RFC 4533 syncrepl), like a server that offers no sync control.
    """

    def __init__(
        self,
        *,
        suffix: str = "dc=example,dc=org",
        admin_password: str | None = None,
        reader_password: str | None = None,
        size_limit: int | None = None,
        limits: Sequence[str] = (),
        anonymous_read: bool = False,
        startup_timeout: float = 10.0,
        directory: str | os.PathLike[str] | None = None,
        keep: bool = False,
        syncprov: bool = True,
        certificate_names: Sequence[str] = (HOST, "localhost"),
        certificate_expired: bool = False,
    ) -> None:
        if not suffix.lower().startswith("dc="):
            raise ValueError("the suffix must start with a dc= RDN, e.g. dc=example,dc=org")
        self.base_dn = suffix
        self.admin_dn = f"cn=admin,{suffix}"
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.reader_dn = f"cn=reader,{suffix}"
        self.reader_password = reader_password or secrets.token_urlsafe(16)
        self.size_limit = size_limit
        self.limits = tuple(limits)
        self.anonymous_read = anonymous_read
        self.syncprov = syncprov
        #: the names (DNS or IP) the server certificate carries; an expired one for TLS tests
        self.certificate_names = tuple(certificate_names)
        self.certificate_expired = certificate_expired
        self.startup_timeout = startup_timeout
        root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="dirsync-slapd-"))
        root.mkdir(parents=True, exist_ok=True)
        self.directory = root
        self.config_dir = root / "slapd.d"
        self.data_dir = root / "data"
        self.ca_file = root / "ca.pem"
        self.cert_file = root / "server.pem"
        self.key_file = root / "server.key"
        self.log_file = root / "slapd.log"
        self._password_file = root / "admin.pw"
        self.port = 0
        self.ldaps_port = 0
        self._prepared = False
        self._process = ChildProcess(root, keep=keep)
        self._finalizer = weakref.finalize(self, self._process.cleanup)

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ldap://{HOST}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{HOST}:{self.ldaps_port}"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Slapd:
        """Start slapd and wait until it answers a rootDSE search (bounded by startup_timeout)."""
        if self.running:
            return self
        self._prepare()
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port, self.ldaps_port = free_ports(2)
            with self.log_file.open("wb") as log:
                self._process.proc = subprocess.Popen(
                    [
                        SLAPD,
                        "-F",
                        str(self.config_dir),
                        "-h",
                        f"ldap://{HOST}:{self.port}/ ldaps://{HOST}:{self.ldaps_port}/",
                        "-d",
                        "none",
                    ],  # foreground, as our child; "none" still prints fatal errors
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            last_error = self._wait_ready()
            if not last_error:
                return self
            self._process.stop()
        raise SlapdError(f"slapd did not start: {last_error}")

    def stop(self) -> None:
        """Stop slapd (by PID) and remove its directory. Safe to call twice."""
        self._finalizer()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self.startup_timeout
        proc = self._process.proc
        assert proc is not None
        error = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"slapd exited with {proc.returncode}: {self._log_tail()}"
            try:
                with AdminConnection.open(HOST, self.port, timeout=2) as conn:
                    conn.search("", "(objectClass=*)", "BASE", attributes=["namingContexts"])
                    return ""
            except (TransportError, LdapAdminError) as exc:
                error = str(exc)
            time.sleep(0.05)
        return f"no answer within {self.startup_timeout:g}s ({error}): {self._log_tail()}"

    # -- data -------------------------------------------------------------------------------

    def load_ldif_offline(self, text: str) -> None:
        """Bulk-load LDIF with ``slapadd -q`` (fast; overlays such as memberof do not run).

        Only before ``start()``: slapadd must not write to a database slapd has open.
        """
        if self.running:
            raise SlapdError("load_ldif_offline() must run before start(); use add_ldif()")
        self._prepare()
        self._slapadd(text, "-q", "-b", self.base_dn)

    def add_ldif(self, text: str) -> None:
        """Add entries online with one ``ldapadd`` as the admin (overlays run)."""
        self._ldap_tool(LDAPADD, text)

    def modify_ldif(self, text: str) -> None:
        """Apply LDIF change records (``changetype: modify|add|delete|modrdn``) online."""
        self._ldap_tool(LDAPMODIFY, text)

    def connection(
        self, *, bind_dn: str | None = None, password: str | None = None
    ) -> AdminConnection:
        """A bound connection (the admin by default) over plain LDAP; the caller closes it."""
        return AdminConnection.open(
            HOST,
            self.port,
            bind_dn=bind_dn or self.admin_dn,
            password=self.admin_password if password is None else password,
            timeout=30,
        )

    def modify(self, dn: str, changes: dict[str, Any]) -> None:
        """A modify as the admin: ``{"mail": [(MODIFY_REPLACE, ["a@b.c"])]}``."""
        with self.connection() as conn:
            try:
                conn.modify(dn, changes)
            except LdapAdminError as exc:
                raise SlapdError(f"modify {dn} failed: {exc}") from exc

    def delete(self, dn: str) -> None:
        """Delete one (leaf) entry as the admin."""
        with self.connection() as conn:
            try:
                conn.delete(dn)
            except LdapAdminError as exc:
                raise SlapdError(f"delete {dn} failed: {exc}") from exc

    def delete_tree(self, dn: str) -> None:
        """Delete an entry and everything below it."""
        with self.connection() as conn:
            dns = [item["dn"] for item in conn.search(dn, "(objectClass=*)", "SUBTREE")]
            for entry_dn in sorted(dns, key=len, reverse=True):  # children are longer
                conn.delete(entry_dn)

    def _ldap_tool(self, tool: str, text: str) -> None:
        if not self.running:
            raise SlapdError("slapd is not running")
        self._password_file.write_text(self.admin_password)  # -y reads the whole file
        self._password_file.chmod(0o600)
        _run(
            [tool, "-x", "-H", self.url, "-D", self.admin_dn, "-y", str(self._password_file)],
            stdin=text,
            what=Path(tool).name,
        )

    def _slapadd(self, text: str, *args: str) -> None:
        ldif = self.directory / f"load-{secrets.token_hex(4)}.ldif"
        ldif.write_text(text, encoding="utf-8")
        try:
            _run([SLAPADD, *args, "-F", str(self.config_dir), "-l", str(ldif)], what="slapadd")
        finally:
            ldif.unlink(missing_ok=True)

    # -- setup ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self._prepared:
            return
        self._write_tls_files()
        self.config_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._slapadd(self._config_ldif(), "-n0")
        self._slapadd(self._base_ldif(), "-q", "-b", self.base_dn)
        self._prepared = True

    def _write_tls_files(self) -> None:
        import trustme  # a test extra: only needed when a server is actually built

        self.ca = trustme.CA()
        not_before = not_after = None
        if self.certificate_expired:
            now = datetime.now(UTC)
            not_before, not_after = now - timedelta(days=30), now - timedelta(days=1)
        cert = self.ca.issue_cert(
            *self.certificate_names, not_before=not_before, not_after=not_after
        )
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        for blob in cert.cert_chain_pems:
            blob.write_to_path(str(self.cert_file), append=True)
        cert.private_key_pem.write_to_path(str(self.key_file))
        self.key_file.chmod(0o600)
        self.cert_file.chmod(0o600)

    def _config_ldif(self) -> str:
        size_limit = "unlimited" if self.size_limit is None else str(self.size_limit)
        anonymous = "read" if self.anonymous_read else "none"
        wanted = [m for m in MODULES if self.syncprov or m != "syncprov"]
        modules = "".join(f"olcModuleLoad: {name}\n" for name in wanted)
        schemas = "".join(
            Path(SCHEMA_DIR, f"{name}.ldif").read_text(encoding="utf-8").strip() + "\n\n"
            for name in SCHEMAS
        )
        limits = "".join(f"olcLimits: {{{i}}}{value}\n" for i, value in enumerate(self.limits))
        database = "olcDatabase={1}mdb,cn=config"
        return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.directory}/slapd.pid
olcArgsFile: {self.directory}/slapd.args
olcTLSCACertificateFile: {self.ca_file}
olcTLSCertificateFile: {self.cert_file}
olcTLSCertificateKeyFile: {self.key_file}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_PATH}
{modules}
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}\
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: {size_limit}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact="{self.admin_dn}" manage by * none

dn: {database}
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {self.data_dir}
olcSuffix: {self.base_dn}
olcRootDN: {self.admin_dn}
olcRootPW: {ssha(self.admin_password)}
olcDbNoSync: TRUE
olcDbMaxSize: 8589934592
olcSizeLimit: {size_limit}
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcDbIndex: uid eq
olcDbIndex: cn eq
olcDbIndex: member eq
olcDbIndex: uniqueMember eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by users read by anonymous {anonymous}
{limits}
dn: olcOverlay={{0}}memberof,{database}
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,{database}
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintAttribute: uniqueMember
{self._syncprov_ldif(database)}"""

    def _syncprov_ldif(self, database: str) -> str:
        if not self.syncprov:
            return ""
        return f"""
dn: olcOverlay={{2}}syncprov,{database}
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{2}}syncprov
olcSpCheckpoint: 100 10
olcSpSessionLog: 10000
"""

    def _base_ldif(self) -> str:
        first = self.base_dn.split(",", 1)[0].split("=", 1)[1]
        return f"""\
dn: {self.base_dn}
objectClass: top
objectClass: dcObject
objectClass: organization
dc: {first}
o: {first}

dn: {self.reader_dn}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
description: read-only service account
userPassword: {ssha(self.reader_password)}
"""
