"""Site settings placed by the installer (site.toml): every user of a machine gets the exporter key and
the inbox without per-user setup, and a damaged file is reported, not guessed around."""

from __future__ import annotations

from backup_operator import cli


def _run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_site_file_gives_trust_and_inbox(desk, capsys, monkeypatch, tmp_path):
    d = desk.desktop
    d.config.trusted_signers, d.config.inboxes = [], []
    d.save()
    assert _run(capsys, "sync")[0] == 23  # no exporter key of its own any more
    site = tmp_path / "site.toml"
    site.write_text(f'trusted_signers = ["{desk.signer.public.to_text()}"]\ninboxes = [\'{desk.inbox}\']\n',
                    encoding="utf-8")
    monkeypatch.setenv("BACKUP_OPERATOR_SITE", str(site))
    desk.drop(3)
    code, out, err = _run(capsys, "sync")
    assert (code, out.strip()) == (0, "Installed snapshot version 3."), err
    assert _run(capsys, "inbox", "list")[1].strip() == str(desk.inbox)
    assert (desk.inbox / "receipts" / "desk-a.json").is_file()


def test_a_damaged_site_file_is_reported(desk, capsys, monkeypatch, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("trusted_signers = [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("BACKUP_OPERATOR_SITE", str(site))
    code, _, err = _run(capsys, "status")
    assert code == 2 and "site settings file" in err and "reinstall" in err and err.count("\n") == 1
