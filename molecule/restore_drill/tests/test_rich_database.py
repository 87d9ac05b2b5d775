"""The drill and the restore of a database richer than the sample app's (tests/data/rich_schema.sql: three
schemas, a partitioned table with sub-partitions, views, materialized views, functions, sequences, extensions,
an owner and a read-only role with grants), backed up by prepare.yml under its own name in its own directory,
as an operator sees them: the report says what was compared, a doctored manifest fails naming each difference,
and a restore keeps the grants. Runs after test_restore_drill.py (file order)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_playbook

testinfra_hosts = ["db_servers"]

RICH = "/var/backups/shipshape-rich"
DOCTORED = "/var/backups/shipshape-rich-doctored"
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "drills"
#: What rich_schema.sql holds (tests/test_pg_backup_manifest_live.py checks the same numbers on a local server).
TABLES, LEAVES, ROWS = 24, 22, 3866
LARGE_OBJECTS = 2


def rich_reports() -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted(REPORTS.glob("drill-*.json"), key=lambda p: p.stat().st_mtime)]
    return [r for r in found if r["database"] == "rich"]


# grantee:privilege of a database's own ACL other than its owner's, sorted (grantors differ with the owner).
DATABASE_PRIVILEGES = ("SELECT string_agg(p, ',' ORDER BY p) FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
                       "ELSE pg_get_userbyid(a.grantee) END || ':' || a.privilege_type AS p FROM pg_database d, "
                       "aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
                       "WHERE d.datname = '{db}' AND a.grantee <> d.datdba) x")

# role:name=value of a database's settings (ALTER DATABASE/ROLE ... SET), the database's own first, '|' between.
DATABASE_SETTINGS = ("SELECT string_agg(coalesce(r.rolname, '') || ':' || c, '|' ORDER BY r.rolname NULLS FIRST, c) "
                     "FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                     "LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c WHERE d.datname = '{db}'")


def psql(host, query: str, db: str = "rich", role: str = "") -> tuple[int, str, str]:
    set_role = f"SET ROLE {role}; " if role else ""
    cmd = host.run(f"sudo -u postgres psql -X -q -d {db} -v ON_ERROR_STOP=1 -tAc \"{set_role}{query}\"")
    return cmd.rc, cmd.stdout.strip(), cmd.stderr.strip()


def rich_set(host) -> str:
    (set_id,) = [d for d in host.file(RICH).listdir() if not d.startswith(".")]
    return set_id


def test_the_rich_set_holds_the_whole_database_and_its_roles(host):
    set_id = rich_set(host)
    m = json.loads(host.file(f"{RICH}/{set_id}/manifest.json").content_string)
    assert m["name"] == "rich" and m["database"] == "rich" and set(m["parts"]) == {"postgres", "postgres_roles"}
    totals = m["parts"]["postgres"]["catalog"]["totals"]
    assert (totals["tables"], totals["leaf_tables"], totals["rows"]) == (TABLES, LEAVES, ROWS)
    assert m["parts"]["postgres"]["catalog"]["roles"] == ["rich_owner", "rich_reader", "rich_writer"]
    roles = host.file(f"{RICH}/{set_id}/roles.sql")
    assert roles.mode == 0o600 and "CREATE ROLE rich_reader;" in roles.content_string
    assert host.run(f"cd {RICH}/{set_id} && sha256sum --quiet --check roles.sql.sha256").rc == 0


def test_the_converge_drill_of_the_rich_database_compared_every_table_and_row(host):
    report = rich_reports()[0]
    assert report["result"] == "passed", report["issues"]
    assert report["compared"]["tables"] == TABLES and report["compared"]["leaf_tables"] == LEAVES
    assert report["compared"]["rows"] == report["compared"]["rows_found"] == ROWS
    assert all(c["ok"] for c in report["checks"])
    names = {c["name"] for c in report["checks"]}
    assert {"table shop.orders_2026_03_h1", "rows shop.orders", "grants on table crm.customers", "sequence shop.invoice_no",
            "materialized view shop.monthly_revenue", "function crm.merge_customers(IN keep bigint, IN drop_id bigint)",
            "extension pgcrypto", "owner of table shop.coupons", "column grants on table shop.coupons",
            "assertion the reader may read customers", "large objects", "owners of large objects"} <= names
    assert report["compared"]["large_objects"] == LARGE_OBJECTS
    assert f"{TABLES} tables and {ROWS} rows compared" in report["summary"]
    md = Path(report["report_files"]["markdown"]).read_text()
    assert f"Compared with the backup's manifest: {TABLES} tables ({LEAVES} leaf tables), {ROWS} rows" in md
    assert f"extensions, {LARGE_OBJECTS} large objects;" in md


def test_a_drill_against_a_doctored_manifest_fails_naming_each_difference(host):
    set_id = rich_set(host)
    doctor = f"""
import json
p = "{DOCTORED}/{set_id}/manifest.json"
m = json.load(open(p))
c = m["parts"]["postgres"]["catalog"]
c["tables"]["crm.notes"]["rows"] += 1
c["tables"]["crm.customers"]["acl"].append("rich_writer=r/rich_owner")
c["views"]["shop.gone_view"] = {{"owner": "rich_owner", "acl": []}}
c["large_objects"]["rich_owner"] += 1
json.dump(m, open(p, "w"))
"""
    assert host.run(f"rm -rf {DOCTORED} && mkdir -p {DOCTORED} && cp -a {RICH}/{set_id} {DOCTORED}/").rc == 0
    assert host.run(f"python3 -c '{doctor}'").rc == 0
    proc = run_playbook("drill.yml", "-e", f"restore_drill_report_dir={REPORTS}", "-e", f"restore_drill_backup_dir={DOCTORED}",
                        "-e", f"restore_drill_backup_id={set_id}", "-e", "restore_drill_metrics_file=")
    assert proc.returncode != 0
    report = rich_reports()[-1]
    assert report["result"] == "failed" and report["backup"]["path"].startswith(DOCTORED)
    assert set(report["failed_checks"]) == {"rows crm.notes", "grants on table crm.customers", "view shop.gone_view",
                                            "large objects", "owners of large objects"}
    assert "rows crm.notes: expected 121, got 120" in proc.output
    assert f"large objects: expected {LARGE_OBJECTS + 1}, got {LARGE_OBJECTS}" in proc.output
    assert host.run(f"rm -rf {DOCTORED}").rc == 0
    assert psql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE 'drill_%'", "postgres")[1] == "0"


RESTORED = "rich_restored_into_a_database_name_of_all_63_bytes_postgres_has"


def test_a_restore_of_the_rich_database_keeps_owners_and_grants(host):
    # Into a database name of all the 63 bytes PostgreSQL allows: the scratch copy's name is derived to fit.
    proc = run_playbook("restore.yml", "-e", f"restore_backup_dir={RICH}", "-e", f"restore_target_db={RESTORED}",
                        "-e", "restore_redis=false", "-e", "restore_files=false")
    try:
        assert proc.returncode == 0, proc.output[-4000:]
        assert psql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE '%restoring'", "postgres")[1] == "0"
        assert psql(host, "SELECT count(*) FROM crm.customers", RESTORED, role="rich_reader")[1] == "300"
        assert psql(host, "SELECT count(*) FROM shop.orders", RESTORED, role="rich_reader")[1] == "1000"
        rc, dummy, err = psql(host, "SELECT count(*) FROM audit.events", RESTORED, role="rich_reader")
        assert rc != 0 and "permission denied" in err
        assert psql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", RESTORED)[1] == "rich_owner"
        # The large objects came back with their owner and grant: the reader reads the first, not the second.
        los = "SELECT string_agg(pg_get_userbyid(lomowner), ',') FROM pg_largeobject_metadata"
        assert psql(host, los, RESTORED)[1] == "rich_owner,rich_owner"
        first = "SELECT convert_from(lo_get(min(oid)), 'UTF8') FROM pg_largeobject_metadata"
        assert psql(host, first, RESTORED, role="rich_reader")[1] == "invoice 1001"
        rc, dummy, err = psql(host, first.replace("min(oid)", "max(oid)"), RESTORED, role="rich_reader")
        assert rc != 0 and "permission denied" in err
        # The database's own privileges, which pg_dump does not carry, come from the manifest: PUBLIC may not connect.
        wanted = "rich_reader:CONNECT,rich_writer:CONNECT,rich_writer:TEMPORARY"
        assert psql(host, DATABASE_PRIVILEGES.format(db="rich"), "postgres")[1] == wanted
        assert psql(host, DATABASE_PRIVILEGES.format(db=RESTORED), "postgres")[1] == wanted
        # So do its settings: the search path (with its quoted "$user"), a custom one, and the reader's own.
        settings = ':app.tenant=rich|:search_path="$user", public, crm|rich_reader:statement_timeout=5s'
        assert psql(host, DATABASE_SETTINGS.format(db="rich"), "postgres")[1] == settings
        assert psql(host, DATABASE_SETTINGS.format(db=RESTORED), "postgres")[1] == settings
    finally:
        host.run(f"sudo -u postgres psql -X -c 'DROP DATABASE IF EXISTS {RESTORED} WITH (FORCE)'")
