"""A webhook that is not http(s) is refused before the drill does anything (issue 14): the error names the
variable and the URL's scheme, never the URL (a secret), nothing is written where a file:// URL points, and no
scratch database or report appears. Runs after test_restore_drill.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_playbook

testinfra_hosts = ["db_servers"]

REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "drills"


def databases(host) -> str:
    cmd = host.run("sudo -u postgres psql -X -d postgres -tAc \"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database\"")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


@pytest.mark.parametrize("url, scheme", [
    ("file:///tmp/pwn-webhook-SECRET", "'file:'"),
    ("ftp://127.0.0.1/pwn-webhook-SECRET", "'ftp:'"),
    ("/tmp/pwn-webhook-SECRET", "'not a URL'"),
    ("http://127.0.0.1:9999/hook pwn-webhook-SECRET", "'http:'"),
])
def test_a_webhook_that_is_not_http_is_refused(host, url, scheme):
    before = (databases(host), sorted(REPORTS.glob("*")) if REPORTS.exists() else [])
    extra = {"restore_drill_report_dir": str(REPORTS), "restore_drill_webhook_url": url, "restore_drill_max_backup_age": 1}
    proc = run_playbook("drill.yml", "-e", json.dumps(extra))
    assert proc.returncode != 0
    assert "restore_drill_webhook_url must be empty or an http:// or https:// URL" in proc.output, proc.output[-3000:]
    assert scheme in proc.output
    assert "pwn-webhook-SECRET" not in proc.output  # the URL is a secret
    assert host.run("ls -d /tmp/pwn-webhook* 2>/dev/null").stdout == ""
    assert not list(Path("/tmp").glob("pwn-webhook*"))
    assert (databases(host), sorted(REPORTS.glob("*")) if REPORTS.exists() else []) == before
