"""http(s) inbox settings: what 'inbox add' stores, what a site file gives every user, what is refused."""

from __future__ import annotations

import pytest

from backup_operator import cli as desktop_cli
from backup_operator.errors import ConfigError


def test_inbox_add_keeps_the_address_its_ca_and_receipts_url(desk, capsys, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert desktop_cli.main(["inbox", "add", "https://intranet.example.org/bo", "--ca-file", str(ca),
                             "--receipts", "https://intranet.example.org/bo/receipts"]) == 0
    (web,) = desk.desktop.http_inboxes()
    assert (web.url, web.ca_file, web.receipts_url) == ("https://intranet.example.org/bo/", str(ca.resolve()),
                                                        "https://intranet.example.org/bo/receipts/")
    assert desk.desktop.inboxes() == [desk.inbox]  # folders only: the address is not a folder
    assert desktop_cli.main(["inbox", "remove", "https://intranet.example.org/bo"]) == 0
    assert desk.desktop.http_inboxes() == [] and desk.desktop.config.inbox_options == {}


@pytest.mark.parametrize("bad", ["https:///nohost", "https://server/p?x=1", "http://"])
def test_addresses_that_are_not_inboxes_are_refused(desk, bad):
    with pytest.raises(ConfigError):
        desk.desktop.add_inbox(bad)
    with pytest.raises(ConfigError, match="for http"):  # a folder gets receipts in its receipts/ folder
        desk.desktop.add_inbox(str(desk.inbox), receipts="https://server/receipts/")


def test_a_site_file_gives_every_user_the_web_inbox_and_its_ca(desk, tmp_path, monkeypatch):
    site = tmp_path / "site.toml"
    site.write_text('trusted_signers = []\ninboxes = ["https://intranet.example.org/bo/"]\n'
                    "ca_file = 'C:\\ProgramData\\ca.pem'\n"
                    'receipts = "https://intranet.example.org/bo/receipts/"\n')
    monkeypatch.setenv("BACKUP_OPERATOR_SITE", str(site))
    (web,) = desk.desktop.http_inboxes()
    assert web.ca_file == "C:\\ProgramData\\ca.pem"
    assert web.receipts_url == "https://intranet.example.org/bo/receipts/"
