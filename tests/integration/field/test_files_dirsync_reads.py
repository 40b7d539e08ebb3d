"""The config and its secret files, read as a real ``dirsync`` process: a secret is a small
regular file, and a file (or a folder above it) that someone other than its owner and root may
change is refused, like ssh's StrictModes: exit 2, one line naming the key or the path, what
is wrong and the command that fixes it. Nothing here contacts a directory: each refusal comes
first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dirsync.config.file_safety import SECRET_FILE_LIMIT

KEY = "organization[beta].source.bind_password_file"


def write_config(folder: Path, password_file: str, *, mode: int = 0o600) -> Path:
    config = folder / "dirsync.toml"
    config.write_text(
        f"""\
[store]
url = "sqlite:///{folder}/store/dirsync.db"

[[organization]]
name = "beta"
[organization.source]
type = "ldap"
url = "ldaps://127.0.0.1:1"
bind_dn = "cn=reader,dc=example,dc=org"
bind_password_file = "{password_file}"
base_dn = "dc=example,dc=org"
"""
    )
    config.chmod(mode)
    return config


def dirsync(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dirsync", "--config", str(config), *args]
    environment = {k: v for k, v in os.environ.items() if k != "DIRSYNC_ALLOW_UNSAFE_FILES"}
    environment.pop("CREDENTIALS_DIRECTORY", None)
    return subprocess.run(
        command, capture_output=True, text=True, timeout=30, env={**environment, **env}
    )


def refused(config: Path, problem: str) -> None:
    """``sync`` exits 2 with one line, and ``config check`` lists the same problem."""
    done = dirsync(config, "sync", "--org", "beta")
    assert (done.returncode, done.stderr) == (2, f"dirsync: {config}: {KEY}: {problem}\n")
    checked = dirsync(config, "config", "check")
    assert checked.returncode == 2
    assert checked.stderr == f"{config}: 1 problem(s)\n  {KEY}: {problem}\n"


def test_dev_zero_and_a_fifo_as_a_secret_are_refused_at_once_without_reading(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "/dev/zero")
    refused(config, "/dev/zero is a character device, not a regular file; a secret is a small file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)  # nobody ever writes to it: an open without O_NONBLOCK would hang
    config = write_config(tmp_path, str(fifo))
    refused(config, f"{fifo} is a FIFO, not a regular file; a secret is a small file")
    config = write_config(tmp_path, str(tmp_path))
    refused(config, f"{tmp_path} is a folder, not a regular file; a secret is a small file")


def test_a_secret_file_beyond_the_limit_is_refused_and_one_at_the_limit_is_read(
    tmp_path: Path,
) -> None:
    huge = tmp_path / "huge"
    with huge.open("wb") as out:
        out.truncate(1 << 30)  # 1 GiB, sparse: read whole it would be a MemoryError's size
    huge.chmod(0o600)
    config = write_config(tmp_path, "huge")
    refused(config, f"{huge} holds 1,073,741,824 bytes; a secret may hold 64 KiB at most")

    just = tmp_path / "just"
    just.write_text("x" * SECRET_FILE_LIMIT)
    config = write_config(tmp_path, "just")
    done = dirsync(config, "config", "check")
    assert done.returncode == 0, done.stderr


def test_a_secret_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "binary").write_bytes(b"pass\xffword")
    config = write_config(tmp_path, "binary")
    refused(config, f"{tmp_path / 'binary'} is not UTF-8 text (byte 4); a secret is text")


@pytest.mark.parametrize(("mode", "writers"), [(0o620, "its group"), (0o602, "others")])
def test_a_secret_file_others_may_change_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int, writers: str
) -> None:
    secret = tmp_path / "beta"
    secret.write_text("pw\n")
    secret.chmod(mode)
    os.chown(secret, 0, 65534)  # group nogroup: not root's own
    config = write_config(tmp_path, "beta")
    refused(
        config,
        f"{secret} is writable by {writers} (mode {mode:04o}); whoever may change it decides "
        f"what dirsync reads: chmod go-w {secret}",
    )
    secret.chmod(0o640)
    assert dirsync(config, "config", "check").returncode == 0
    # a user private group (named after the owner, no other member) is the owner's alone, as
    # Debian's ssh holds for umask 002 set-ups: root:root here
    os.chown(secret, 0, 0)
    secret.chmod(0o660)
    assert dirsync(config, "config", "check").returncode == 0


def test_a_secret_file_of_another_user_is_refused_with_the_chown_to_run(tmp_path: Path) -> None:
    secret = tmp_path / "beta"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    os.chown(secret, 65534, 65534)
    config = write_config(tmp_path, "beta")
    refused(
        config,
        f"{secret} belongs to nobody (uid 65534), not to root; whoever may change it "
        f"decides what dirsync reads: chown root {secret}",
    )


def test_a_folder_others_may_write_is_refused_unless_it_has_the_sticky_bit(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    secret = folder / "beta"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    config = write_config(tmp_path, str(secret))
    folder.chmod(0o777)
    refused(
        config,
        f"the folder {folder} (holding {secret}) is writable by others (mode 0777) "
        f"without the sticky bit; they may replace what it holds: chmod go-w {folder}",
    )
    folder.chmod(0o1777)  # /tmp's mode: nobody may rename or remove what is not theirs
    assert dirsync(config, "config", "check").returncode == 0
    folder.chmod(0o755)
    os.chown(folder, 65534, 65534)  # another user's folder: they may swap what it holds
    refused(
        config,
        f"the folder {folder} (holding {secret}) belongs to nobody (uid 65534), not to root, "
        f"who may replace what it holds: chown root {folder}",
    )


def test_a_config_file_others_may_change_is_refused_before_anything_else(tmp_path: Path) -> None:
    (tmp_path / "beta").write_text("pw\n")
    config = write_config(tmp_path, "beta", mode=0o666)
    problem = (
        f"{config} is writable by others (mode 0666); whoever may change it decides "
        f"what dirsync reads: chmod go-w {config}"
    )
    for args in (("sync",), ("status",), ("run",)):
        done = dirsync(config, *args)
        assert (done.returncode, done.stderr) == (2, f"dirsync: {problem}\n"), args
    done = dirsync(config, "config", "check")
    assert (done.returncode, done.stderr) == (2, f"{config}: 1 problem(s)\n  {problem}\n")
    assert not (tmp_path / "store").exists()  # refused before the store is touched


def test_the_opt_out_reads_unsafe_files_and_says_so(tmp_path: Path) -> None:
    secret = tmp_path / "beta"
    secret.write_text("pw\n")
    secret.chmod(0o666)
    config = write_config(tmp_path, "beta", mode=0o666)
    done = dirsync(config, "config", "check", DIRSYNC_ALLOW_UNSAFE_FILES="1")
    assert done.returncode == 0, done.stderr
    assert "config.unsafe_files_allowed" in done.stderr
    # the opt-out is for ownership and modes; a device is never a secret
    (tmp_path / "dirsync.toml").unlink()
    config = write_config(tmp_path, "/dev/zero", mode=0o666)
    done = dirsync(config, "config", "check", DIRSYNC_ALLOW_UNSAFE_FILES="1")
    assert done.returncode == 2 and "is a character device" in done.stderr


def test_a_systemd_credential_root_owned_and_read_only_is_read(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials" / "dirsync.service"  # as LoadCredential= makes it
    credentials.mkdir(parents=True)
    (credentials / "beta").write_text("pw\n")
    (credentials / "beta").chmod(0o440)
    credentials.chmod(0o500)
    config = write_config(tmp_path, "beta", mode=0o644)  # relative: the credential's id
    command = [sys.executable, "-m", "dirsync", "--config", str(config), "config", "check"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "beta").exists()  # it was the credential that was read


def test_a_ca_file_others_may_change_is_refused_with_its_key(tmp_path: Path) -> None:
    """A CA file decides whom dirsync trusts with the password: it is held to the same rule."""
    (tmp_path / "beta").write_text("pw\n")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    ca_file.chmod(0o646)
    config = write_config(tmp_path, "beta")
    config.write_text(config.read_text().replace("bind_dn =", 'ca_file = "ca.pem"\nbind_dn ='))
    done = dirsync(config, "config", "check")
    assert done.returncode == 2
    assert done.stderr == (
        f"{config}: 1 problem(s)\n  organization[beta].source.ca_file: {ca_file} is writable by "
        f"others (mode 0646); whoever may change it decides what dirsync reads: "
        f"chmod go-w {ca_file}\n"
    )
