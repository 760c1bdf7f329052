"""The real exporter publishing into nginx's folder (``type = "web"``), a desktop pulling it over https."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from backup_operator import cli as desktop_cli
from backup_operator.snapshot import format as F
from backup_operator.snapshot.manifest import verify_manifest

from exporter.cli import main as export_cli
from exporter.signing import signer_public

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def test_one_export_serves_every_desktop_through_deltas(tmp_path, monkeypatch, nginx, desk, capsys):
    monkeypatch.setenv("BACKUP_OPERATOR_EXPORT_HOME", str(tmp_path / "exporter"))
    monkeypatch.delenv("BACKUP_OPERATOR_EXPORT_PASSPHRASE", raising=False)
    sources = tmp_path / "sources"
    shutil.copytree(DEMO, sources)
    assert export_cli(["init"]) == 0
    home = tmp_path / "exporter"
    (home / "config.toml").write_text(
        "[publish]\nretries = 0\n\n"
        + "".join(f'[[sources]]\ntype = "csv"\ntable = "{t}"\npath = "{sources / (t + ".csv")}"\n\n'
                  for t in ("listings", "contact_methods", "schedules"))
        + f'[[sources]]\ntype = "rota"\npath = "{sources / "rotas.json"}"\n\n'
        + f'[[destinations]]\ntype = "web"\nname = "intranet"\npath = "{nginx.www}"\n', encoding="utf-8")
    # Two desktops pull from the web folder; their inboxes in recipients.toml are the https address.
    for name, key in (("desk-a", desk.key), ("desk-b", desk.recipients[1])):
        public = key.public if hasattr(key, "public") else key
        assert export_cli(["recipients", "add", name, public.to_text(), "--inbox", nginx.https]) == 0
    desktop = desk.desktop
    desktop.config.inboxes = []
    desktop.config.trusted_signers = [signer_public(_home(home)).to_text()]
    desktop.save()
    desktop.add_inbox(nginx.https, ca_file=str(nginx.ca_file), receipts=nginx.https + "receipts/")
    capsys.readouterr()

    assert export_cli(["run"]) == 0
    written = sorted(p.name for p in nginx.www.iterdir() if p.is_file())
    assert written == [F.MANIFEST_NAME, "snapshot-000000000001.bosnap"]  # one copy for both desktops
    assert desktop_cli.main(["sync"]) == 0
    assert "Fetched version 1" in capsys.readouterr().out

    # A day at the source: a number changes and someone joins.
    rows = list(csv.DictReader(open(sources / "contact_methods.csv", encoding="utf-8")))
    rows[5]["value"] = "608-555-0000"
    with open(sources / "contact_methods.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert export_cli(["run"]) == 0
    manifest = verify_manifest((nginx.www / F.MANIFEST_NAME).read_bytes(), desktop.trusted())
    assert manifest.snapshot_version == 2 and [d.path for d in manifest.chain(1)] == \
        ["delta-000000000001-000000000002.bodelta"]
    delta, full = manifest.deltas[0].size, manifest.snapshot.size
    assert delta < full / 20
    assert desktop_cli.main(["sync"]) == 0
    out = capsys.readouterr().out
    assert "Fetched version 2" in out and "as deltas" in out
    code = desktop_cli.main(["search", "608-555-0000"])
    assert code == 0 and "version 2" in capsys.readouterr().out
    # IT sees the desktop's receipt, PUT over WebDAV into the web folder.
    assert export_cli(["status"]) in (0, 1)
    assert "desk-a" in capsys.readouterr().out
    assert (nginx.www / "receipts" / "desk-a.json").is_file()


def _home(path: Path):
    from exporter.home import ExporterHome
    return ExporterHome(path)
