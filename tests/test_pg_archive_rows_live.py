"""shipshape.ops.pg_archive_rows against a throwaway PostgreSQL 15 on loopback (the server of
test_pg_backup_manifest_live), run through Ansible: old rows end in a checksummed CSV file with the right count and
are gone from the table; check mode and the max_rows refusal change nothing; hostile names are refused."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import stat
import sys
import time

import psycopg
import pytest
from test_pg_backup_manifest_live import pg_server  # noqa: F401  (pg_server: a fixture)

from module_runner import run_ansible_module


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


@pytest.fixture
def audit(pg_server):  # noqa: F811
    """`zen` with audit.events: 25 rows 100 to 124 days old (one with a comma, a quote and a newline), 5 recent."""
    port, dummy = pg_server
    with admin(port) as conn:
        conn.execute("DROP DATABASE IF EXISTS zen WITH (FORCE)")
        conn.execute("CREATE DATABASE zen")
    with admin(port, "zen") as conn:
        conn.execute("CREATE SCHEMA audit")
        conn.execute("CREATE TABLE audit.events (kind text, note text, created_at timestamptz NOT NULL)")
        conn.execute("INSERT INTO audit.events SELECT 'old', 'row ' || i, now() - (100 + i) * interval '1 day' "
                     "FROM generate_series(0, 23) i")
        conn.execute("INSERT INTO audit.events VALUES ('old', 'a, \"quoted\"\nline', now() - interval '200 days')")
        conn.execute("INSERT INTO audit.events SELECT 'new', 'row ' || i, now() - i * interval '1 day' "
                     "FROM generate_series(0, 4) i")
    yield port


def archive(ansible_env, port, dest_dir, check=False, interpreter=None, **extra):
    args = dict(db="zen", host="127.0.0.1", port=port, user="postgres", table="audit.events", older_than="90 days",
                dest=str(dest_dir), batch_size=7)
    args.update(extra)
    return run_ansible_module(ansible_env, "shipshape.ops.pg_archive_rows", args, check=check, interpreter=interpreter)


def counts(port):
    with admin(port, "zen") as conn:
        return dict(conn.execute("SELECT kind, count(*) FROM audit.events GROUP BY 1").fetchall())


@pytest.mark.parametrize("interpreter", [None, sys.executable], ids=["host-python", "venv-psycopg3"])
def test_old_rows_move_into_a_checksummed_file_and_leave_the_table(ansible_env, audit, tmp_path, interpreter):
    dest = tmp_path / "archive"
    rc, result = archive(ansible_env, audit, dest, interpreter=interpreter)
    assert rc == 0 and result["changed"], result
    assert (result["matched"], result["archived"], result["vacuumed"]) == (25, 25, True)
    assert counts(audit) == {"new": 5}
    path = dest / os.path.basename(result["file"])
    assert path.name.startswith("audit.events-") and path.name.endswith(".csv.gz")
    rows = list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    assert rows[0] == ["kind", "note", "created_at"] and len(rows) == 26, "one header, then every row once"
    assert {r[0] for r in rows[1:]} == {"old"}
    assert ["old", 'a, "quoted"\nline'] in [r[:2] for r in rows[1:]], "CSV keeps commas, quotes and newlines"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result["sha256"] == digest
    assert (dest / (path.name + ".sha256")).read_text() == "%s  %s\n" % (digest, path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert not list(dest.glob(".partial-*"))

    rc, again = archive(ansible_env, audit, dest, interpreter=interpreter)
    assert rc == 0 and not again["changed"] and again["archived"] == 0, "a second run has nothing left to move"


def test_check_mode_counts_and_changes_nothing(ansible_env, audit, tmp_path):
    rc, result = archive(ansible_env, audit, tmp_path / "archive", check=True)
    assert rc == 0 and result["changed"] and (result["matched"], result["archived"]) == (25, 0)
    assert counts(audit) == {"old": 25, "new": 5}
    assert not (tmp_path / "archive").exists()


def test_more_rows_than_max_rows_is_refused_before_anything_changes(ansible_env, audit, tmp_path):
    rc, result = archive(ansible_env, audit, tmp_path / "archive", max_rows=10)
    assert rc != 0 and "Refusing to archive 25 rows of audit.events older than 90 days: more than max_rows (10)" in result["msg"]
    assert counts(audit) == {"old": 25, "new": 5}
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize(("extra", "message"), [
    ({"older_than": "90 days'; DROP TABLE audit.events; --"}, "older_than: "),
    ({"table": "a.b.c"}, "table: "),
    ({"dest": "relative/dir"}, "dest: 'relative/dir' is not an absolute directory"),
    ({"batch_size": 0}, "batch_size: 0 is out of range"),
    ({"time_column": "created_at; DROP TABLE x"}, "does not exist"),
])
def test_hostile_values_are_refused_and_nothing_changes(ansible_env, audit, tmp_path, extra, message):
    rc, result = archive(ansible_env, audit, tmp_path / "archive", **extra)
    assert rc != 0 and message in result["msg"], result
    assert counts(audit) == {"old": 25, "new": 5}
    assert not list(tmp_path.glob("archive/*.csv.gz"))


@pytest.fixture
def partitioned(audit):
    """audit.parted, partitioned by created_at: 3 rows 200 days old in one partition, 3 recent in the other.
    Each partition numbers its rows' ctids from (0,1), so the old rows share their ctids with the recent ones."""
    with admin(audit, "zen") as conn:
        conn.execute("CREATE TABLE audit.parted (kind text, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at)")
        conn.execute("CREATE TABLE audit.parted_old PARTITION OF audit.parted FOR VALUES FROM (MINVALUE) TO ('2000-01-01')")
        conn.execute("CREATE TABLE audit.parted_new PARTITION OF audit.parted FOR VALUES FROM ('2000-01-01') TO (MAXVALUE)")
        conn.execute("INSERT INTO audit.parted SELECT 'old', '1999-01-01'::timestamptz + i * interval '1 day' "
                     "FROM generate_series(1, 3) i")
        conn.execute("INSERT INTO audit.parted SELECT 'new', now() - i * interval '1 day' FROM generate_series(1, 3) i")
    yield audit


def test_a_partitioned_table_loses_only_its_old_rows(ansible_env, partitioned, tmp_path):
    """Rows were deleted by ctid alone, which is unique within one partition only: the recent rows that shared
    their ctids with old ones in another partition were deleted (and archived) too."""
    dest = tmp_path / "archive"
    rc, result = archive(ansible_env, partitioned, dest, table="audit.parted", batch_size=2)
    assert rc == 0 and (result["matched"], result["archived"]) == (3, 3), result
    with admin(partitioned, "zen") as conn:
        assert dict(conn.execute("SELECT kind, count(*) FROM audit.parted GROUP BY 1").fetchall()) == {"new": 3}
    rows = list(csv.reader(io.StringIO(gzip.decompress((dest / os.path.basename(result["file"])).read_bytes()).decode())))
    assert [r[0] for r in rows] == ["kind", "old", "old", "old"]


def test_an_archive_of_the_same_second_is_never_overwritten(ansible_env, audit, tmp_path):
    """The file is named by the table and the second: a second run within that second (another database's table of
    the same name into the same dest, or new old rows) renamed its file over the first one, the only copy of its
    rows."""
    dest = tmp_path / "archive"
    dest.mkdir(mode=0o700)
    start = time.time()
    earlier = {}
    for second in range(int(start) - 1, int(start) + 120):
        name = "audit.events-%s.csv.gz" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        (dest / name).write_bytes(b"an earlier archive")
        earlier[name] = b"an earlier archive"
    rc, result = archive(ansible_env, audit, dest)
    assert rc == 0 and result["archived"] == 25, result
    assert time.time() - start < 110, "the run took too long for the test's names to cover it"
    for name, content in earlier.items():
        assert (dest / name).read_bytes() == content
    path = dest / os.path.basename(result["file"])
    assert path.name not in earlier and path.name.endswith(".csv.gz")
    assert len(list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))) == 26
    assert (dest / (path.name + ".sha256")).read_text() == "%s  %s\n" % (result["sha256"], path.name)


def test_a_table_named_with_a_slash_is_archived_inside_dest(ansible_env, audit, tmp_path):
    """The table's name is the file's: a '/' in it (a legal SQL name) made the path leave dest's directory, and the
    run failed ('No such file or directory'), or wrote into a directory of that name."""
    with admin(audit, "zen") as conn:
        conn.execute('CREATE TABLE audit."x/../../y" (created_at timestamptz NOT NULL)')
        conn.execute('INSERT INTO audit."x/../../y" VALUES (now() - interval \'100 days\'), (now())')
    dest = tmp_path / "archive"
    rc, result = archive(ansible_env, audit, dest, table='audit."x/../../y"')
    assert rc == 0 and result["archived"] == 1, result
    assert os.path.dirname(result["file"]) == str(dest)
    assert os.path.basename(result["file"]).startswith("audit.x_.._.._y-")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [os.path.basename(result["file"]), os.path.basename(result["file"]) + ".sha256"])


def test_rows_a_trigger_keeps_stop_the_run_instead_of_looping(ansible_env, audit, tmp_path):
    """A BEFORE DELETE trigger returning NULL (a soft delete) keeps the rows: the same batch was picked again and
    again, the run never ended, and archived counted rows that never moved. The guard below ends the loop with an
    error after 200 calls of the trigger."""
    with admin(audit, "zen") as conn:
        conn.execute("CREATE SEQUENCE audit.guard")
        conn.execute("CREATE FUNCTION audit.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "IF nextval('audit.guard') > 200 THEN RAISE EXCEPTION 'looping'; END IF; RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER keep BEFORE DELETE ON audit.events FOR EACH ROW EXECUTE FUNCTION audit.keep()")
    rc, result = archive(ansible_env, audit, tmp_path / "archive")
    assert rc != 0 and "7 rows of the batch were not deleted" in result["msg"], result
    assert result["archived"] == 0 and not result["changed"]
    assert counts(audit) == {"old": 25, "new": 5}
    with admin(audit, "zen") as conn:
        assert conn.execute("SELECT last_value FROM audit.guard").fetchone()[0] == 7
    assert not list(tmp_path.glob("archive/*"))


@pytest.mark.parametrize("action", ["CASCADE", "SET NULL"])
def test_a_table_whose_deletes_cascade_is_refused_before_anything_changes(ansible_env, audit, tmp_path, action):
    """Deleting an archived row also deleted (or changed) the rows of another table that referenced it ON DELETE
    CASCADE (SET NULL), rows no archive holds: lost."""
    with admin(audit, "zen") as conn:
        conn.execute("ALTER TABLE audit.events ADD COLUMN id serial PRIMARY KEY")
        conn.execute("CREATE TABLE audit.notes (event_id int REFERENCES audit.events (id) ON DELETE %s, note text)" % action)
        conn.execute("INSERT INTO audit.notes SELECT id, 'kept' FROM audit.events")
    rc, result = archive(ansible_env, audit, tmp_path / "archive")
    assert rc != 0 and "audit.notes" in result["msg"] and ("ON DELETE %s" % action) in result["msg"], result
    assert "Nothing was changed" in result["msg"] and result["archived"] == 0
    assert counts(audit) == {"old": 25, "new": 5}
    with admin(audit, "zen") as conn:
        assert conn.execute("SELECT count(*) FROM audit.notes WHERE event_id IS NOT NULL").fetchone()[0] == 30
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("interpreter", [None, sys.executable], ids=["host-python", "venv-psycopg3"])
def test_a_vacuum_the_server_skips_is_not_reported_as_done(ansible_env, audit, tmp_path, interpreter):
    """A role that may delete the rows but does not own the table: PostgreSQL skips its VACUUM with a warning, and
    the module reported vacuumed=true."""
    with admin(audit, "zen") as conn:
        conn.execute("DROP ROLE IF EXISTS clerk")
        conn.execute("CREATE ROLE clerk LOGIN")
        conn.execute("GRANT USAGE ON SCHEMA audit TO clerk")
        conn.execute("GRANT SELECT, UPDATE, DELETE ON audit.events TO clerk")
    try:
        rc, result = archive(ansible_env, audit, tmp_path / "archive", interpreter=interpreter, user="clerk")
        assert rc == 0 and result["archived"] == 25, result.get("msg")
        assert result["vacuumed"] is False
        assert any("VACUUM" in w and "skipping" in w for w in result.get("warnings", [])), result
    finally:
        with admin(audit) as conn:
            conn.execute("DROP DATABASE zen WITH (FORCE)")
            conn.execute("DROP ROLE clerk")


def test_old_rows_written_during_the_run_do_not_take_it_past_max_rows(ansible_env, audit, tmp_path):
    """The batches went on while rows older than the cut-off were left, so old rows written during the run (a
    backfill; here a trigger, for the first 30 deletes) were archived too: past matched and past max_rows, and
    a writer as fast as the archive kept it running."""
    with admin(audit, "zen") as conn:
        conn.execute("CREATE SEQUENCE audit.backfill")
        conn.execute("CREATE FUNCTION audit.backfill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "IF nextval('audit.backfill') <= 30 THEN "
                     "INSERT INTO audit.events VALUES ('late', 'backfilled', now() - interval '300 days'); END IF; "
                     "RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER backfill AFTER DELETE ON audit.events FOR EACH ROW EXECUTE FUNCTION audit.backfill()")
    rc, result = archive(ansible_env, audit, tmp_path / "archive", max_rows=25)
    assert rc == 0 and (result["matched"], result["archived"]) == (25, 25), result.get("msg")
    rows = list(csv.reader(io.StringIO(gzip.decompress(open(result["file"], "rb").read()).decode())))
    assert len(rows) == 26
    left = counts(audit)
    assert left["new"] == 5 and left.get("old", 0) + left.get("late", 0) == 25, left
