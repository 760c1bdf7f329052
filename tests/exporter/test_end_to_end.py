"""End to end: PostgreSQL / MariaDB → export → two folder desktops and one SFTP desktop → sync → search.

The desktops are the real desktop program (``backup-operator``), run as separate processes with their
own homes and passphrase-sealed keys; the SFTP desktop's inbox is written by the exporter through a
real OpenSSH server on loopback, and its receipt is read back over SFTP.
"""

from __future__ import annotations

import pytest

from exporter_support import run_desktop
from site_database import MARIADB_URL, PG_URL, create_site_database, reachable, utc_now


@pytest.mark.slow
@pytest.mark.sshd
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_database_to_three_desktops(backend, home, cli, sshd, require, tmp_path):
    url = PG_URL if backend == "postgresql" else MARIADB_URL
    ok, why = reachable(url)
    require(ok, f"{backend}: {why}")
    site = create_site_database(url, utc_now())
    try:
        # A new colleague is added to the directory before the run: the desktops must find her.
        site.execute("INSERT INTO {p}_people (person_id, entry_type, full_name, last_name, first_name, job_title, "
                     "dept, campus, active) VALUES ('p-new-1', 'person', 'Quilla Zabriskie, MD', 'Zabriskie', "
                     "'Quilla', 'Attending Physician', 'Cardiology', 'Lakeshore Main Campus', 1)")
        site.execute("INSERT INTO {p}_phones (person_id, phone_type, number, label, sort_order, note) VALUES "
                     "('p-new-1', 'extension', '7391', 'Office', 1, '')")

        code, out, err = cli("init")
        assert code == 0, err
        signer = out.strip().splitlines()[-1]
        home.config.write_text(
            "[publish]\nretries = 1\nbackoff_s = 0.1\n\n"
            f'[sftp]\nkey_file = "{sshd.client_key}"\nhost_keys = ["{sshd.host_key_line}"]\n\n'
            + site.source_toml(f"{backend} directory"), encoding="utf-8")

        desktops = {}
        for name, kind in (("switchboard-1", "folder"), ("switchboard-2", "folder"), ("evac-kit", "sftp")):
            desk_home, inbox = tmp_path / name, tmp_path / f"{name}-inbox"
            inbox.mkdir()
            enrolled = run_desktop(desk_home, "enroll", "--name", name, "--key-file")
            key = enrolled.stdout.strip().splitlines()[-1]
            run_desktop(desk_home, "trust", signer)
            run_desktop(desk_home, "inbox", "add", str(inbox))
            where = str(inbox) if kind == "folder" else f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{inbox}"
            code, out, err = cli("recipients", "add", name, key, "--inbox", where)
            assert code == 0, err
            desktops[name] = desk_home

        code, out, err = cli("run")
        assert code == 0, err + out
        assert "Published snapshot 1 to 3 inboxes" in out

        for name, desk_home in desktops.items():
            synced = run_desktop(desk_home, "sync")
            assert "Installed snapshot version 1" in synced.stdout, (name, synced.stdout)
            found = run_desktop(desk_home, "search", "zabriskie")
            assert "Quilla Zabriskie, MD" in found.stdout, (name, found.stdout)
            assert "7391" in found.stdout

        code, out, err = cli("status")
        assert code == 0, err
        for name in desktops:
            line = next(row for row in out.splitlines() if row.startswith(name))
            assert line.split()[1] == "1" and line.rstrip().endswith("ok"), out
    finally:
        site.drop()
