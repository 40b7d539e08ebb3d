"""The demo: a throwaway OpenLDAP with a sample company, synced into a SQLite store.

Run by ``./scripts/demo``. Everything happens on 127.0.0.1; the store and config stay in
``./demo-data`` so that ``dirsync --config demo-data/dirsync.toml members --org acme`` still
works afterwards (sync needs the directory, which stops when the demo ends, unless --keep).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dirsync.state.files import private_folder, write_private_text
from dirsync.testing.sample import sample_company_ldif
from dirsync.testing.slapd import Slapd

BASE_DN = "dc=example,dc=org"


def write_config(directory: Path, server: Slapd) -> Path:
    # owner-only, whatever the umask: the folder 0700, every file in it 0600
    private_folder(directory)
    write_private_text(directory / "acme.password", server.reader_password + "\n")
    write_private_text(directory / "acme-ca.pem", server.ca_file.read_text(encoding="ascii"))
    config = directory / "dirsync.toml"
    write_private_text(
        config,
        f"""\
[store]
url = "sqlite:///{(directory / "dirsync.db").absolute()}"

[[organization]]
name = "acme"
seats = 50
interval = "15m"

[organization.source]
type = "ldap"
url = "{server.ldaps_url}"
ca_file = "acme-ca.pem"
bind_dn = "{server.reader_dn}"
bind_password_file = "acme.password"
base_dn = "{BASE_DN}"
user_path = "ou=People"
group_path = "ou=Groups"
disabled_filter = "(employeeType=disabled)"
email_suffix = "@example.org"

[organization.sync]
remove_disabled = true
overwrite_existing = true
max_removals = "20%"
""",
    )
    return config


def dirsync(config: Path, *args: str) -> None:
    command = [sys.executable, "-m", "dirsync", "--config", str(config), *args]
    print(f"\n$ dirsync --config {config} {' '.join(args)}", flush=True)
    subprocess.run(command, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="demo-data", help="where the config and store go")
    parser.add_argument("--keep", action="store_true", help="keep slapd running until Ctrl-C")
    args = parser.parse_args()
    directory = Path(args.dir).absolute()
    (directory / "dirsync.db").unlink(missing_ok=True)

    with Slapd(suffix=BASE_DN) as server:
        server.add_ldif(sample_company_ldif(BASE_DN))
        print(f"slapd with a sample company is listening on {server.url} and {server.ldaps_url}")
        config = write_config(directory, server)
        dirsync(config, "config", "check")
        dirsync(config, "test", "--org", "acme")
        dirsync(config, "sync", "--dry-run")
        dirsync(config, "sync")
        dirsync(config, "members", "--org", "acme")
        dirsync(config, "groups", "--org", "acme")
        dirsync(config, "sync")
        dirsync(config, "status")
        if args.keep:
            print("\nslapd keeps running; press Ctrl-C to stop it.")
            try:
                while True:
                    input()
            except (KeyboardInterrupt, EOFError):
                pass


if __name__ == "__main__":
    main()
