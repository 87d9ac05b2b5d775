"""Migrations as the database sees them: the alembic_version row and the schema on the db host, after
converge (v1 -> v2 from the v2 release directory), under --check, with a broken migration, and through
playbooks/migrate.yml on the current release. The tests run in file order."""

from __future__ import annotations

import json
import os
import shlex

import pytest
import testinfra

from conftest import http, run_playbook

testinfra_hosts = ["app_servers"]  # every test takes `host`, so pytest keeps them in file order

NAME = os.environ.get("MOLECULE_SCENARIO_NAME", "migrations")
CONVERGE = "../molecule/migrations/converge.yml"  # run_playbook() resolves playbooks/<name>


@pytest.fixture(autouse=True)
def _one_line_results(monkeypatch):
    """The scenario's yaml result format wraps long messages: read results as one-line JSON instead."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host(f"ansible://db-{NAME}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def sql(db, query: str) -> list[str]:
    cmd = db.run(f"sudo -u postgres psql -d sample_app -tAc {shlex.quote(query)}")
    assert cmd.rc == 0, cmd.stderr
    return [line for line in cmd.stdout.splitlines() if line]


def revision(db) -> list[str]:
    return sql(db, "select version_num from alembic_version")


def columns(db, table: str) -> set[str]:
    return set(sql(db, f"select column_name from information_schema.columns where table_name = '{table}'"))


def tables(db) -> set[str]:
    return set(sql(db, "select tablename from pg_tables where schemaname = 'public'"))


def test_converge_applied_exactly_the_v2_revision(host, db):
    assert revision(db) == ["0002_note_tags"]
    assert "tag" in columns(db, "notes")
    # The notes written on v1 are still there.
    assert sql(db, "select count(*) from notes") == ["2"]


def test_the_current_release_is_still_v1(host):
    # converge migrated from the release directory without switching to it.
    assert http(host, "GET", "/version")[1]["version"] == "1.0.0"


def test_check_mode_lists_the_pending_migration_and_applies_nothing(host, db):
    before = tables(db)
    run_playbook(CONVERGE, "-e", "systemd_release_git_ref=broken-migration", "-e", "migrations_scenario_build_only=true", check=True)
    proc = run_playbook(CONVERGE, "--check", "-e", "systemd_release_git_ref=broken-migration", check=True)
    assert "alembic at '0002_note_tags'; pending: 0003_broken" in proc.output, proc.output[-3000:]
    assert revision(db) == ["0002_note_tags"]
    assert tables(db) == before and "archived" not in columns(db, "notes")


def test_a_broken_migration_fails_naming_it_and_leaves_the_schema_as_it_was(host, db):
    proc = run_playbook(CONVERGE, "-e", "systemd_release_git_ref=broken-migration", check=False)
    assert proc.returncode != 0
    assert "migration 0003_broken" in proc.output and 'archived_at' in proc.output, proc.output[-3000:]
    assert revision(db) == ["0002_note_tags"]
    # 0003 creates note_archive and adds notes.archived before it fails: the transaction took both back.
    assert "note_archive" not in tables(db)
    assert "archived" not in columns(db, "notes")


def test_migrate_playbook_reports_the_current_release_and_changes_nothing(host, db):
    # Deploy v2 (its migration is already applied: nothing pending), then ask migrate.yml.
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    proc = run_playbook("migrate.yml", check=True)
    assert "alembic on app-migrations (status): before 0002_note_tags, after 0002_note_tags; nothing pending." in proc.output, proc.output[-3000:]
    proc = run_playbook("migrate.yml", "-e", "migrate_action=apply", check=True)
    assert "(apply): before 0002_note_tags, after 0002_note_tags; nothing pending." in proc.output
    assert "changed=0" in proc.output
    assert revision(db) == ["0002_note_tags"]


def test_v2_is_ready_on_its_schema(host):
    status, body = http(host, "GET", "/readyz")
    assert status == 200, body
    assert body["alembic_revision"] == "0002_note_tags"
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_migrate_playbook_status_lists_pending_and_apply_applies(host, db):
    # Put the schema one revision back (v2's downgrade drops notes.tag), so that v2's 0002 is pending.
    down = host.run("cd /srv/sample_app/current && set -a && . /srv/sample_app/shared/app.env && set +a && PYTHONDONTWRITEBYTECODE=1 "
                    "venv/bin/alembic -c alembic.ini downgrade 0001_initial")
    assert down.rc == 0, down.stderr
    assert revision(db) == ["0001_initial"]
    proc = run_playbook("migrate.yml", check=True)
    assert "(status): before 0001_initial, after 0001_initial; pending 0002_note_tags." in proc.output, proc.output[-3000:]
    assert revision(db) == ["0001_initial"]
    proc = run_playbook("migrate.yml", "-e", "migrate_action=apply", "--check", check=True)
    assert "pending 0002_note_tags" in proc.output and revision(db) == ["0001_initial"]
    proc = run_playbook("migrate.yml", "-e", "migrate_action=apply", check=True)
    assert "(apply): before 0001_initial, after 0002_note_tags; applied 0002_note_tags." in proc.output, proc.output[-3000:]
    assert revision(db) == ["0002_note_tags"] and "tag" in columns(db, "notes")
    assert http(host, "GET", "/readyz")[0] == 200


MARKER = "/tmp/shipshape-pwned-migrations"


@pytest.mark.parametrize("variable, value", [
    ("systemd_release_app_name", f"sample_app; touch {MARKER}"),
    ("migrations_user", f"root$(touch {MARKER})"),
    ("migrations_path", f"/srv/sample_app/current/../../../tmp;touch {MARKER}"),
    ("migrations_alembic_config", "../../../etc/passwd"),
    ("migrations_lock_timeout", "0"),
])
def test_hostile_values_are_refused_before_anything_runs(host, db, variable, value):
    """Issue 14: a value that would reach the tool's command line is refused by name, on the read-only status
    too, and no command ran: the marker does not exist and the schema is as it was."""
    before = revision(db)
    proc = run_playbook("migrate.yml", "-e", json.dumps({variable: value}), check=False)
    assert proc.returncode != 0
    assert variable in proc.output and value in proc.output, proc.output[-3000:]
    assert not host.file(MARKER).exists
    assert not os.path.exists(MARKER)  # the controller
    assert revision(db) == before
