"""A throwaway Samba Active Directory domain controller on 127.0.0.1, for tests and benchmarks.

    with SambaDC() as dc:
        print(dc.ldaps_url, dc.ca_file, dc.base_dn, dc.admin_dn)

``samba-tool domain provision`` (``--dns-backend=NONE --use-rfc2307``, interfaces restricted to
127.0.0.1) builds the domain; a generated CA and server certificate (``trustme``, SAN
``IP:127.0.0.1``, key mode 0600) serve LDAPS and StartTLS; ``samba -i -M single`` runs as our
child, in the foreground, with only its LDAP service, and is stopped by its PID.

Provisioning costs 10-80 s of CPU, so a pristine (never started) provisioned domain is kept as
a template under ``~/.cache/dirsync`` and copied for each instance: only ``smb.conf`` names the
directory, and it is rewritten for the copy. Samba's ports are fixed (389, 636, 3268, 3269), so
one DC per machine: ``start()`` fails with a clear message if one of them is taken.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from dirsync.connectors.active_directory.controls import tree_delete_control
from dirsync.connectors.ldap.client import TransportError
from dirsync.connectors.ldap.result_codes import NO_SUCH_OBJECT
from dirsync.connectors.ldap.tls import client_context
from dirsync.testing.child import ChildProcess, ThrowawayServer
from dirsync.testing.ldap_admin import AdminConnection, LdapAdminError

SAMBA = "/usr/sbin/samba"
SAMBA_TOOL = "/usr/bin/samba-tool"
HOST = "127.0.0.1"
PORTS = (389, 636, 3268, 3269)
REALM = "DIRSYNC.TEST"
DOMAIN = "DIRSYNC"
BASE_DN = "DC=dirsync,DC=test"
_PLACEHOLDER = "@DIRSYNC_DC_DIR@"


class SambaError(RuntimeError):
    """The test DC could not be provisioned or started; the message carries Samba's output."""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dirsync"


def samba_version() -> str:
    proc = subprocess.run([SAMBA, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().replace("Version ", "").replace(" ", "_") or "unknown"


def ports_in_use(ports: tuple[int, ...] = PORTS) -> list[int]:
    taken = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                taken.append(port)
    return taken


def _run(args: list[str], *, what: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
    if proc.returncode != 0:
        output = (proc.stderr + proc.stdout).strip()
        raise SambaError(f"{what} failed (exit {proc.returncode}): {output[-4000:]}")


def provision(target: Path, admin_password: str) -> None:
    """``samba-tool domain provision`` into ``target`` (a fresh directory)."""
    if not Path(SAMBA_TOOL).exists():
        raise SambaError(
            f"{SAMBA_TOOL} is missing: apt-get install samba samba-dsdb-modules winbind "
            "samba-ad-provision (./scripts/test installs them)"
        )
    _run(
        [
            SAMBA_TOOL, "domain", "provision",
            f"--targetdir={target}", f"--realm={REALM}", f"--domain={DOMAIN}",
            "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
            f"--host-ip={HOST}", f"--adminpass={admin_password}",
            f"--option=interfaces = {HOST}", "--option=bind interfaces only = yes",
            "--option=server services = ldap",
            "--backend-store=mdb",
        ],
        what="samba-tool domain provision",
    )  # fmt: skip


def template(*, refresh: bool = False) -> tuple[Path, str]:
    """A pristine provisioned domain (made once per Samba version) and its admin password."""
    root = _cache_root() / f"samba-template-mdb-{samba_version()}"
    if refresh:
        shutil.rmtree(root, ignore_errors=True)
    password_file = root / "admin.pw"
    if not password_file.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="samba-template-", dir=root.parent))
        password = "Adm1n-" + secrets.token_urlsafe(12)
        try:
            provision(staging / "dc", password)
            conf = staging / "dc" / "etc" / "smb.conf"  # paths become a placeholder
            conf.write_text(conf.read_text().replace(str(staging / "dc"), _PLACEHOLDER))
            (staging / "admin.pw").write_text(password)
            (staging / "admin.pw").chmod(0o600)
            staging.rename(root)  # atomic: a concurrent session either sees it whole or not
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another session was faster
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return root / "dc", password_file.read_text().strip()


class SambaDC(ThrowawayServer):
    """One throwaway Samba AD DC (``DIRSYNC.TEST``). ``start()`` or use ``with``."""

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str] | None = None,
        keep: bool = False,
        startup_timeout: float = 90.0,
        use_template: bool = True,
    ) -> None:
        root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="dirsync-samba-"))
        self.directory = root
        self.dc_dir = root / "dc"
        self.conf = self.dc_dir / "etc" / "smb.conf"
        self.ca_file = root / "ca.pem"
        self.cert_file = root / "server.pem"
        self.key_file = root / "server.key"
        self.log_file = root / "samba.log"
        self.base_dn = BASE_DN
        self.realm = REALM
        self.admin_dn = f"CN=Administrator,CN=Users,{BASE_DN}"
        self.admin_password = ""
        self.startup_timeout = startup_timeout
        self.use_template = use_template
        self._conf_text: str | None = None
        self._process = ChildProcess(root, keep=keep, stop_timeout=20.0)
        self._finalizer = weakref.finalize(self, self._process.cleanup)

    url = f"ldap://{HOST}"
    ldaps_url = f"ldaps://{HOST}"

    def start(self) -> SambaDC:
        """Provision (or copy the template), then start samba and wait for the rootDSE."""
        if self.running:
            return self
        if taken := ports_in_use():
            raise SambaError(
                f"port(s) {', '.join(map(str, taken))} on {HOST} are in use; Samba's ports are "
                "fixed, so only one test DC can run on a machine (is another one running?)"
            )
        if not self.conf.exists():
            self._prepare()
        with self.log_file.open("ab") as log:
            self._process.proc = subprocess.Popen(
                [SAMBA, "-i", "-M", "single", "-s", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if error := self._wait_ready():
            self._process.stop()
            raise SambaError(f"samba did not start: {error}")
        return self

    def stop_server(self) -> None:
        """Stop samba but keep its directory, so that ``start()`` brings the same domain back."""
        self._process.stop()

    def reconfigure(self, options: dict[str, str] | None = None) -> None:
        """Restart samba with extra ``[global]`` options; ``None`` restores the original."""
        self.stop_server()
        if self._conf_text is None:
            self._conf_text = self.conf.read_text()
        extra = "".join(f"\t{key} = {value}\n" for key, value in (options or {}).items())
        self.conf.write_text(self._conf_text + (f"\n[global]\n{extra}" if extra else ""))
        self.start()

    def stop(self) -> None:
        """Stop samba (by PID) and remove its directory. Safe to call twice."""
        self._finalizer()

    # -- setup ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.use_template:
            source, self.admin_password = template()
            shutil.copytree(source, self.dc_dir, symlinks=True)
            old_root = _PLACEHOLDER
        else:
            self.admin_password = "Adm1n-" + secrets.token_urlsafe(12)
            provision(self.dc_dir, self.admin_password)
            old_root = str(self.dc_dir)
        self._write_tls_files()
        conf = self.conf.read_text().replace(old_root, str(self.dc_dir))
        (self.dc_dir / "run").mkdir(exist_ok=True)
        conf += (
            "\n[global]\n"
            f"\tpid directory = {self.dc_dir / 'run'}\n"
            f"\tlog file = {self.log_file}\n"
            "\tlog level = 0\n"
            "\tldb:nosync = true\n"  # a throwaway domain: no fsync per change (as Samba's selftest)
            "\ttls enabled = yes\n"
            f"\ttls keyfile = {self.key_file}\n"
            f"\ttls certfile = {self.cert_file}\n"
            f"\ttls cafile = {self.ca_file}\n"
            # simple binds on plain 389 (the provision option of the same name is dropped)
            "\tldap server require strong auth = no\n"
        )
        self.conf.write_text(conf)

    def _write_tls_files(self) -> None:
        import trustme  # a test extra

        ca = trustme.CA()
        cert = ca.issue_cert(HOST, "localhost")
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(self.key_file))
        self.key_file.chmod(0o600)  # samba refuses a key others can read

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self.startup_timeout
        proc = self._process.proc
        assert proc is not None
        error = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"samba exited with {proc.returncode}: {self._log_tail(3000)}"
            try:
                with AdminConnection.open(HOST, 389, timeout=2) as conn:
                    found = conn.search("", "(objectClass=*)", "BASE", ["dsServiceName"])
                    if found and found[0].get("raw_attributes"):
                        return ""
            except (TransportError, LdapAdminError) as exc:
                error = str(exc)
            time.sleep(0.2)
        return f"no answer within {self.startup_timeout:g}s ({error}): {self._log_tail(3000)}"

    # -- administration -----------------------------------------------------------------------

    def connection(
        self, *, bind_dn: str | None = None, password: str | None = None
    ) -> AdminConnection:
        """A bound LDAPS connection (the Administrator by default); the caller closes it."""
        return AdminConnection.open(
            HOST,
            636,
            bind_dn=bind_dn or self.admin_dn,
            password=self.admin_password if password is None else password,
            tls=client_context(verify=True, ca_file=self.ca_file),
            timeout=60,
        )

    def delete_tree(self, dn: str) -> None:
        """Delete an entry and everything below it (the tree-delete control)."""
        with self.connection() as conn:
            try:
                conn.delete(dn, controls=[tree_delete_control()])
            except LdapAdminError as exc:
                if exc.code != NO_SUCH_OBJECT:
                    raise


_GRANT_SCRIPT = """
import sys
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
from samba.sd_utils import SDUtils
conf, account = sys.argv[1], sys.argv[2]
lp = LoadParm()
lp.load(conf)
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
(user,) = db.search(db.domain_dn(), expression="(sAMAccountName=%s)" % account,
                    attrs=["objectSid"])
sid = db.schema_format_value("objectSid", user["objectSid"][0]).decode()
SDUtils(db).dacl_add_ace("CN=Deleted Objects," + str(db.domain_dn()), "(A;CI;LCRP;;;%s)" % sid)
"""


def grant_deleted_objects_read(dc: SambaDC, account: str) -> None:
    """Let ``account`` (a sAMAccountName) read tombstones, like ``dsacls ... /G acct:LCRP``.

    Runs Samba's own Python bindings on the DC's database, as ``samba-tool`` does.
    """
    _run(["/usr/bin/python3", "-c", _GRANT_SCRIPT, str(dc.conf), account], what="grant")


def unicode_pwd(password: str) -> bytes:
    """An AD ``unicodePwd`` value: the quoted password in UTF-16-LE (needs an encrypted link)."""
    return f'"{password}"'.encode("utf-16-le")
