"""Broken config files and inline secrets: exit 2 with the key path, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dirsync.cli.main import cli

CORPUS = sorted((Path(__file__).parent / "config_corpus").glob("*.toml"))
CANARY = "canary-S3cr3t-7f1c"


def expected(path: Path) -> str:
    first = path.read_bytes().splitlines()[0].decode()
    return first.removeprefix("# expect:").strip()


def secret_only(path: Path) -> bool:
    """The file's only problem is a secret that cannot be read (its second line says so)."""
    return path.read_bytes().splitlines()[1].startswith(b"# secret")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
@pytest.mark.parametrize("command", [("config", "check"), ("sync", "--dry-run"), ("status",)])
def test_a_broken_config_exits_2_naming_the_key_without_a_traceback(
    path: Path, command: tuple[str, ...]
) -> None:
    code, out, err = run("--config", str(path), *command)
    assert "Traceback" not in out + err
    if command == ("status",) and secret_only(path):
        # status reads the store, never a directory: it needs no organization's secret
        assert code == 0, (out, err)
        return
    assert code == 2, (out, err)
    assert expected(path) in err


def test_the_corpus_covers_the_kinds_of_mistakes() -> None:
    assert len(CORPUS) >= 12


def write_config(tmp_path: Path, source_extra: str, *, mode: int) -> Path:
    path = tmp_path / "dirsync.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/dirsync.db"
[[organization]]
name = "acme"
[organization.source]
type = "ldap"
url = "ldaps://127.0.0.1:636"
base_dn = "dc=example,dc=org"
bind_dn = "cn=reader,dc=example,dc=org"
{source_extra}
"""
    )
    path.chmod(mode)
    return path


def check(path: Path) -> dict[str, object]:
    code, out, err = run("--config", str(path), "config", "check", "--json")
    assert code == 0, err
    assert CANARY not in out + err
    return json.loads(out)  # type: ignore[no-any-return]


def test_an_inline_secret_in_a_config_others_can_read_is_warned_about(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'bind_password = "{CANARY}"', mode=0o644)
    (warning,) = check(path)["warnings"]  # type: ignore[misc]
    assert "readable by other users" in warning and "0644" in warning
    assert "organization[acme].source.bind_password" in warning
    code, _out, err = run("--config", str(path), "config", "check")
    assert code == 0 and "warning:" in err and CANARY not in err


def test_a_private_config_or_a_secret_kept_elsewhere_is_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = write_config(tmp_path, f'bind_password = "{CANARY}"', mode=0o640)
    assert check(private)["warnings"] == []
    monkeypatch.setenv("DIRSYNC_TEST_BIND", CANARY)
    by_env = write_config(tmp_path, 'bind_password = "${DIRSYNC_TEST_BIND}"', mode=0o644)
    assert check(by_env)["warnings"] == []
    secret_file = tmp_path / "bind.secret"
    secret_file.write_text(CANARY)
    by_file = write_config(tmp_path, f'bind_password_file = "{secret_file}"', mode=0o644)
    assert check(by_file)["warnings"] == []


def test_a_password_in_the_store_url_counts_as_an_inline_secret(tmp_path: Path) -> None:
    path = tmp_path / "dirsync.toml"
    path.write_text(f'[store]\nurl = "postgresql+psycopg://dirsync:{CANARY}@127.0.0.1/dirsync"\n')
    path.chmod(0o604)
    (warning,) = check(path)["warnings"]  # type: ignore[misc]
    assert "store.url" in warning
