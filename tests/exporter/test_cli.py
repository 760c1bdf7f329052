"""The exporter's command line: help for every command, keys, recipients, run, revocation, errors."""

from __future__ import annotations

import argparse
import os
import stat

import pytest

from backup_operator.core.model import open_database, read_meta
from backup_operator.errors import NotARecipient
from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import SignerKey, SignerPublicKey

from exporter.cli import build_parser
from exporter.recipients import load_recipients

from exporter_support import REPO, enrol


def _commands(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, prefix + (name,))
    return found


ALL_COMMANDS = _commands(build_parser())


def test_every_command_is_listed():
    names = {" ".join(c) for c in ALL_COMMANDS}
    assert {"init", "recipients add", "recipients remove", "recipients list", "run", "check", "status",
            "serve", "demo"} <= names


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: " ".join(c) or "(top)")
def test_help_for_every_command(command, cli):
    with pytest.raises(SystemExit) as exit_info:
        cli(*command, "--help")
    assert exit_info.value.code == 0
    out = cli.capsys.readouterr().out
    assert out.startswith("usage: backup-operator-export")


def test_no_command_prints_help(cli):
    code, out, err = cli()
    assert code == 2 and "usage:" in out
    code, out, err = cli("recipients")
    assert code == 2 and out.startswith("usage: backup-operator-export recipients")


def test_init_creates_a_private_pem_key_and_prints_the_signer(home, cli):
    code, out, err = cli("init")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    public = SignerPublicKey.from_text(last)
    assert stat.S_IMODE(os.stat(home.signing_key).st_mode) == 0o600
    pem = home.signing_key.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SignerKey.from_pem(pem).public == public
    assert home.config.exists()


def test_init_writes_the_config_readable_by_its_owner_only(home, cli):
    old = os.umask(0o022)  # the usual umask, which made the config 0644 before
    try:
        assert cli("init")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(home.config).st_mode) == 0o600
    # The starter config shows a SQL source as well as a CSV file, with the password from the environment.
    text = home.config.read_text(encoding="utf-8")
    assert 'type = "sql"' in text and "password_env" in text and 'type = "csv"' in text


def test_inline_secrets_are_warned_about_without_being_shown(home, cli):
    assert cli("init")[0] == 0
    home.config.write_text(
        '[[sources]]\ntype = "sql"\nname = "hr"\nurl = "postgresql://reader:Hunter2secret@db.example/hr"\n'
        '[sources.queries]\nlistings = "SELECT 1"\n'
        '[notify.webhook]\nurl = "https://hooks.example/alert?token=Tok3nValue"\n', encoding="utf-8")
    os.chmod(home.config, 0o644)
    code, out, err = cli("status", "--cached")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, err
    assert "source 'hr'" in warnings[0] and "a password" in warnings[0] and "password_env" in warnings[0]
    assert "[notify.webhook]" in warnings[1] and "token_env" in warnings[1]
    assert "chmod 600" in warnings[2] and "0644" in warnings[2]
    assert "Hunter2secret" not in out + err and "Tok3nValue" not in out + err
    # From the environment instead: not a word.
    home.config.write_text(
        '[[sources]]\ntype = "sql"\nname = "hr"\nurl = "postgresql://reader@db.example/hr"\n'
        'password_env = "HR_PASSWORD"\n[sources.queries]\nlistings = "SELECT 1"\n'
        '[notify.webhook]\nurl = "https://hooks.example/alert"\ntoken_env = "HOOK_TOKEN"\n', encoding="utf-8")
    code, out, err = cli("status", "--cached")
    assert "warning:" not in err


def test_init_refuses_to_overwrite_without_force(home, cli):
    assert cli("init")[0] == 0
    before = home.signing_key.read_bytes()
    code, out, err = cli("init")
    assert code == 2 and "already exists" in err and "Traceback" not in err
    assert home.signing_key.read_bytes() == before
    code, out, err = cli("init", "--force")
    assert code == 0 and home.signing_key.read_bytes() != before


def test_init_with_passphrase_encrypts_the_key(home, cli, monkeypatch):
    monkeypatch.setenv("BACKUP_OPERATOR_EXPORT_PASSPHRASE", "correct horse")
    assert cli("init")[0] == 0
    pem = home.signing_key.read_bytes()
    assert b"ENCRYPTED" in pem
    monkeypatch.setenv("BACKUP_OPERATOR_EXPORT_PASSPHRASE", "wrong")
    home.config.write_text("", encoding="utf-8")
    code, out, err = cli("recipients", "list")
    assert code == 0
    from exporter.signing import load_signing_key
    from backup_operator.errors import WrongPassphrase
    with pytest.raises(WrongPassphrase):
        load_signing_key(home)


def test_recipients_add_list_remove(home, cli, tmp_path):
    from backup_operator.snapshot.keys import DesktopKey

    key = DesktopKey.generate().public.to_text()
    code, out, err = cli("recipients", "add", "ward-4", key, "--inbox", str(tmp_path / "in"),
                         "--inbox", "sftp://bo@kit-server/inbox")
    assert code == 0, err
    [recipient] = load_recipients(home.recipients)
    assert recipient.name == "ward-4" and recipient.inboxes == [str(tmp_path / "in"), "sftp://bo@kit-server/inbox"]
    code, out, err = cli("recipients", "add", "ward-4", key)
    assert code == 2 and "already enrolled" in err
    code, out, err = cli("recipients", "list")
    assert "ward-4" in out and key in out
    code, out, err = cli("recipients", "remove", "ward-4")
    assert code == 0 and load_recipients(home.recipients) == []
    code, out, err = cli("recipients", "remove", "ward-4")
    assert code == 2 and "No desktop named 'ward-4'" in err


@pytest.mark.parametrize("bad", ["bo-desktop-abc", "bo-signer-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                 "hello"])
def test_recipients_add_refuses_a_bad_key_in_one_sentence(home, cli, bad):
    code, out, err = cli("recipients", "add", "x", bad)
    assert code == 24
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_run_publishes_a_snapshot_the_desktop_can_verify_and_decrypt(demo_exporter, cli):
    code, out, err = cli("run")
    assert code == 0, err
    assert "Published snapshot 1 to 1 inboxes" in out
    [path] = demo_exporter.snapshots("desk-a")
    assert path.name == "snapshot-000000000001.bosnap"
    database = demo_exporter.open_newest("desk-a")
    meta = read_meta(open_database(database))
    assert meta.snapshot_version == 1
    assert meta.counts["listings"] > 2000 and meta.counts["oncall_shifts"] > 1000


def test_versions_are_monotonic_and_old_snapshots_pruned(demo_exporter, cli):
    demo_exporter.home.config.write_text(demo_exporter.home.config.read_text().replace(
        "[publish]\n", "[publish]\nkeep_snapshots = 2\n"), encoding="utf-8")
    for expected in (1, 2, 3):
        code, out, err = cli("run")
        assert code == 0, err
        assert f"Snapshot {expected}:" in out
    names = [p.name for p in demo_exporter.snapshots("desk-a")]
    assert names == ["snapshot-000000000002.bosnap", "snapshot-000000000003.bosnap"]


def test_a_refused_or_invalid_run_never_uses_up_a_version(demo_exporter, cli):
    """Issue 11 #1: every refused run used to burn a number; now only a sealed snapshot takes one."""
    from exporter.state import State

    assert cli("run")[0] == 0
    # A shift that ends before it starts passes the checks under --force but not the model's validation.
    config = demo_exporter.home.config.read_text()
    demo_exporter.home.config.write_text(config + '\n[[sources]]\ntype = "csv"\ntable = "shifts"\npath = '
                                         f'"{demo_exporter.home.root / "bad.csv"}"\n', encoding="utf-8")
    (demo_exporter.home.root / "bad.csv").write_text(
        "schedule_id,listing_id,start_utc,end_utc\noc-001,p-00001,2026-01-02T00:00:00Z,2026-01-01T00:00:00Z\n",
        encoding="utf-8")
    code, out, err = cli("run", "--force")
    assert code == 3 and "end_utc" in err and "What to do:" in err
    assert cli("check")[0] == 3  # the dry run refuses it too, and takes no number either
    assert cli("run")[0] == 3
    assert State(demo_exporter.home.state).last_version() == 1
    demo_exporter.home.config.write_text(config, encoding="utf-8")
    code, out, err = cli("run")
    assert code == 0 and "Snapshot 2:" in out
    runs = State(demo_exporter.home.state).runs()
    assert [(r.result, r.snapshot_version) for r in runs] == [("published", 2), ("failed", None),
                                                              ("failed", None), ("published", 1)]


def test_a_revoked_desktop_is_not_in_the_next_snapshot(demo_exporter, cli, tmp_path):
    enrol(cli, demo_exporter, "desk-b", tmp_path / "inbox-b")
    assert cli("run")[0] == 0
    first_b = demo_exporter.open_newest("desk-b")  # desk-b can open snapshot 1
    assert first_b.startswith(b"SQLite format 3")

    code, out, err = cli("recipients", "remove", "desk-b")
    assert code == 0, err
    assert cli("run")[0] == 0
    newest = demo_exporter.snapshots("desk-a")[-1].read_bytes()
    header = envelope.verify(newest, [SignerKey.from_pem(demo_exporter.home.signing_key.read_bytes()).public])
    assert header.snapshot_version == 2
    assert demo_exporter.keys["desk-b"].public.recipient_id not in header.recipients
    assert demo_exporter.keys["desk-a"].public.recipient_id in header.recipients
    with pytest.raises(NotARecipient):
        envelope.decrypt(newest, header, demo_exporter.keys["desk-b"])
    assert demo_exporter.open_newest("desk-a").startswith(b"SQLite format 3")
    # desk-b's inbox is no longer a destination: nothing new lands there.
    assert [p.name for p in demo_exporter.snapshots("desk-b")] == ["snapshot-000000000001.bosnap"]


def test_run_without_desktops_or_key_says_what_to_do(home, cli):
    code, out, err = cli("run")
    assert code == 2 and "No desktops are enrolled" in err
    home.config.unlink(missing_ok=True)


def test_run_before_init_says_to_init(home, cli, tmp_path):
    from backup_operator.snapshot.keys import DesktopKey

    home.ensure()
    home.config.write_text("", encoding="utf-8")
    cli("recipients", "add", "d", DesktopKey.generate().public.to_text(), "--inbox", str(tmp_path))
    code, out, err = cli("run")
    assert code == 2 and "init" in err


def test_a_typo_in_the_config_is_named(home, cli):
    home.ensure()
    home.config.write_text("[checks]\nmax_drop = 5\n", encoding="utf-8")
    code, out, err = cli("check")
    assert code == 2 and "'max_drop'" in err and "max_drop_percent" in err


@pytest.mark.parametrize("example", sorted((REPO / "resources" / "examples").glob("exporter*.toml")),
                         ids=lambda p: p.name)
def test_every_example_config_is_valid(example):
    from exporter.config import load_config
    from exporter.sources import validate_sources

    config = load_config(example)
    validate_sources(config)
    assert config.sources


def test_the_starter_config_is_valid(home, cli):
    from exporter.config import load_config

    assert cli("init")[0] == 0
    config = load_config(home.config)
    assert config.sources == [] and config.checks.max_drop_percent == 10


def test_an_unforeseen_error_is_one_sentence_and_the_traceback_goes_to_the_log(demo_exporter, cli, monkeypatch):
    import exporter.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("the unexpected")

    monkeypatch.setattr(exporter.pipeline, "build", broken)
    code, out, err = cli("run")
    assert code == 1
    assert err.startswith("error: something unexpected went wrong (RuntimeError: the unexpected)")
    assert "Traceback" not in err and err.count("\n") == 1
    log = (demo_exporter.home.logs / "exporter.log").read_text()
    assert "Traceback" in log and "the unexpected" in log
    from exporter.state import State
    assert State(demo_exporter.home.state).runs()[0].result == "failed"
