"""shipshape.ops.pg_restore_set against fake connections: names validated before anything connects, SQL built from
identifiers, pg_restore called with an argv list, and every failure path cleaned up (connections back on after
ALLOW_CONNECTIONS false, <db>_restoring dropped)."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import postgres
from ansible_collections.shipshape.ops.plugins.modules import pg_restore_set


LONG = "name: '%s' is 64 bytes long: expected at most 63" % ("a" * 64)
HOSTILE = "name: 'x\";DROP DATABASE app;--' is not a PostgreSQL identifier: expected [A-Za-z_][A-Za-z0-9_$]*"
HOSTILE_DB = "name: 'x\";DROP DATABASE app;--' is not a database name: expected [A-Za-z_][A-Za-z0-9_$-]*"


NOT_IDENTIFIER = "is not a PostgreSQL identifier"
NOT_DATABASE = "is not a database name"


# A database name may also hold '-' after its first character (my-app); for both, nothing that reads as an option,
# a connection string or SQL passes.
@pytest.mark.parametrize(
    "check, value, error",
    [
        (postgres.identifier_error, "sample_app", None),
        (postgres.identifier_error, "_x$1", None),
        (postgres.identifier_error, "a" * 63, None),
        (postgres.identifier_error, "a" * 64, LONG),
        (postgres.identifier_error, 'x";DROP DATABASE app;--', HOSTILE),
        (postgres.identifier_error, "sales-ottenok", NOT_IDENTIFIER),
        (postgres.database_name_error, "sample_app", None),
        (postgres.database_name_error, "sales-ottenok", None),
        (postgres.database_name_error, "app-production_2", None),
        (postgres.database_name_error, "_x$1", None),
        (postgres.database_name_error, "a-" * 31 + "a", None),
        (postgres.database_name_error, "a" * 64, LONG),
        (postgres.database_name_error, 'x";DROP DATABASE app;--', HOSTILE_DB),
        (postgres.database_name_error, "-dsample_app", NOT_DATABASE),
        (postgres.database_name_error, "--file=/tmp/x", NOT_DATABASE),
        (postgres.database_name_error, "dbname=x host=evil", NOT_DATABASE),
    ]
    + [(check, value, expected)
       for check, expected in ((postgres.identifier_error, NOT_IDENTIFIER), (postgres.database_name_error, NOT_DATABASE))
       for value in ("1db", "db name", "db\n", "", "d\u00e9j\u00e0", "-c role=postgres")],
)
def test_name_errors(check, value, error):
    found = check("name", value)
    if error is None:
        assert found is None
    else:
        assert error in found and found.startswith("name: ")


# A restore derives the scratch copy's and the replaced database's names from the database's: within 63 bytes for any
# name up to 63 bytes, the same name always giving the same one, two long names that share their start kept apart.
@pytest.mark.parametrize("name", ["app", "a" * 41, "a" * 42, "sales-ottenok_" * 4 + "x" * 7, "b" * 63])
@pytest.mark.parametrize("suffix", ["_restoring", "_before_20261206081530"])
def test_derived_names_fit_and_say_whose_they_are(name, suffix):
    derived = postgres.derived_name(name, suffix)
    assert derived.endswith(suffix) and len(derived.encode()) <= 63
    assert postgres.database_name_error("name", derived) is None
    assert derived == postgres.derived_name(name, suffix)
    if len(name) + len(suffix) <= 63:
        assert derived == name + suffix
    else:
        kept, tag = derived[:-len(suffix)].rsplit("_", 1)
        assert name.startswith(kept) and len(kept) >= 20 and len(tag) == 6 and len(derived.encode()) == 63


def test_two_long_names_that_share_their_start_derive_different_names():
    first, second = "warehouse_" * 5 + "eu_west", "warehouse_" * 5 + "eu_east"
    assert postgres.derived_name(first, "_restoring") != postgres.derived_name(second, "_restoring")


class Failure(Exception):
    """What the fake server raises."""


class FakeCursor(object):
    def __init__(self, conn):
        self.conn = conn
        self.description = None
        self.rows = []

    def execute(self, statement, args=None):
        text = statement if isinstance(statement, str) else statement.as_string(None)
        self.conn.log.append(text)
        for needle in self.conn.server.fail_on:
            if needle in text:
                raise Failure("ERROR: %s failed" % needle)
        self.rows = self.conn.server.answer(text, args)
        self.description = [("c",)] if self.rows is not None else None

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def close(self):
        pass


class FakeConn(object):
    """Enough of a connection for psycopg 3's sql.Composable.as_string(conn), too."""

    pgconn = None
    connection = None

    def __init__(self, server, dbname):
        import psycopg

        self.adapters = psycopg.adapters
        self.server = server
        self.dbname = dbname
        self.log = server.log
        self.autocommit = False
        self.closed = False

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.log.append("COMMIT")

    def rollback(self):
        self.log.append("ROLLBACK")

    def close(self):
        self.closed = True


class FakeServer(object):
    """pg_database holds `app` (owner app_owner, its `notes` table with rows) unless told otherwise."""

    def __init__(self, exists=True, rows=True, fail_on=(), settings=(), owner="app_owner", locale=None):
        self.exists = exists
        self.owner = owner
        self.locale = locale
        self.allow_connections = True
        self.settings = list(settings)
        self.rows = rows
        self.fail_on = list(fail_on)
        self.log = []
        self.argv = []

    def answer(self, text, args):
        if "pg_db_role_setting" in text:  # the live database's settings; the scratch copy has none
            return self.settings if args and args.get("db") == "app" else []
        if "aclexplode" in text:  # PUBLIC's default privileges, on the live database and the scratch copy
            return [("", "CONNECT", False), ("", "TEMPORARY", False)]
        if "to_jsonb" in text:  # the live database's encoding and locale (the scratch copy is not asked)
            return [("UTF8", self.locale)] if self.exists and self.locale and args.get("db") == "app" else []
        if "FROM pg_database" in text:
            return [(self.owner, self.allow_connections)] if self.exists else []
        if "information_schema.tables" in text or "FROM pg_class" in text:  # the live database's tables
            return [("public", "notes")]
        if text.startswith("SELECT 1 FROM"):
            return [(1,)] if self.rows else []
        if "pg_terminate_backend" in text:
            return [(0,)]
        return None


@pytest.fixture
def server(monkeypatch, tmp_path):
    psycopg_sql = pytest.importorskip("psycopg.sql")
    state = {}

    def install(**kwargs):
        fake = FakeServer(**kwargs)
        monkeypatch.setattr(postgres, "sql", psycopg_sql)
        monkeypatch.setattr(postgres, "DRIVER", object())
        monkeypatch.setattr(postgres, "connect_to", lambda module, dbname, autocommit=False: FakeConn(fake, dbname))
        monkeypatch.setattr(pg_restore_set.time, "sleep", lambda seconds: None)

        def run_command(self, argv, environ_update=None, **kw):
            fake.argv.append(argv)
            return fake.pg_restore_result

        fake.pg_restore_result = (0, "", "")
        monkeypatch.setattr(pg_restore_set.AnsibleModule, "run_command", run_command)
        dump = tmp_path / "postgres.dump"
        dump.write_bytes(b"PGDMP")
        fake.path = str(dump)
        state["server"] = fake
        return fake

    return install


def args(fake, **extra):
    return dict(dict(name="app", path=fake.path, backup_id="b1"), **extra)


def writes(fake):
    """The statements that change something (not the reads)."""
    return [s for s in fake.log if not s.lstrip().startswith("SELECT")]


@pytest.mark.parametrize(
    "extra, msg",
    [
        ({"name": 'x";DROP DATABASE app;--'}, "name: 'x\";DROP DATABASE app;--' is not a database name"),
        ({"name": "-dpostgres"}, "name: '-dpostgres' is not a database name"),
        ({"name": "a" * 64}, "name: '%s' is 64 bytes long: expected at most 63" % ("a" * 64)),
        ({"owner": "app; touch /tmp/x"}, "owner: 'app; touch /tmp/x' is not a role name"),
        ({"owner": "-dpostgres"}, "owner: '-dpostgres' is not a role name"),
        ({"jobs": 0}, "jobs: 0: expected 1 or more"),
        ({"name": "postgres"}, "maintenance_db: 'postgres' is the database to restore into"),
    ],
)
def test_bad_options_are_refused_before_connecting(server, run_module, extra, msg):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, **extra))
    assert failed and result["msg"].startswith(msg.split(":")[0] + ":") and msg in result["msg"]
    assert not fake.log and not fake.argv


def test_replaces_the_live_database_in_one_transaction(server, run_module):
    fake = server(settings=[("", ['search_path="$user", public']), ("reader", ["work_mem=8MB"])])
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", jobs=3))
    assert not failed, result
    before = result["previous"]
    assert before.startswith("app_before_") and len(before) == len("app_before_YYYYmmddHHMMSS")
    assert result["replaced"] == before and result["owner"] == "app_owner" and result["changed"]
    assert writes(fake) == [
        'DROP DATABASE IF EXISTS "app_restoring" WITH (FORCE)',
        'CREATE DATABASE "app_restoring" OWNER "app_owner"',
        # the live database's own privileges (which pg_dump does not carry) onto the copy, before the swap
        'REVOKE ALL ON DATABASE "app_restoring" FROM PUBLIC',
        'GRANT CONNECT ON DATABASE "app_restoring" TO PUBLIC',
        'GRANT TEMPORARY ON DATABASE "app_restoring" TO PUBLIC',
        # and its settings, a list setting element by element
        'ALTER DATABASE "app_restoring" SET "search_path" = \'$user\', \'public\'',
        'ALTER ROLE "reader" IN DATABASE "app_restoring" SET "work_mem" = \'8MB\'',
        'ALTER DATABASE "app" WITH ALLOW_CONNECTIONS false',
        'ALTER DATABASE "app" RENAME TO "%s"' % before,
        'ALTER DATABASE "app_restoring" RENAME TO "app"',
        "COMMIT",
        'ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS true' % before,
    ]
    # Owners and grants are the dump's own (restored as the connecting superuser).
    assert fake.argv == [["pg_restore", "-p", "5432", "--exit-on-error", "--jobs", "3", "--dbname", "app_restoring",
                          "--", fake.path]]


def test_a_database_name_of_63_bytes_is_restored_through_names_that_fit(server, run_module):
    name = "customer_analytics_warehouse_eu_west_1_production_reporting_dbs"
    assert len(name) == 63
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, name=name, confirm=name))
    assert not failed, result
    restoring, before = result["restoring"], result["previous"]
    assert restoring == postgres.derived_name(name, "_restoring") and before.startswith(name[:30])
    assert len(restoring) == len(before) == 63 and "_before_" in before
    assert 'ALTER DATABASE "%s" RENAME TO "%s"' % (name, before) in fake.log
    assert 'ALTER DATABASE "%s" RENAME TO "%s"' % (restoring, name) in fake.log
    assert fake.argv[0][fake.argv[0].index("--dbname") + 1] == restoring


def test_without_privileges_everything_is_restored_as_the_owner(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", jobs=3, privileges=False))
    assert not failed, result
    assert fake.argv == [["pg_restore", "-p", "5432", "--exit-on-error", "--no-owner", "--no-privileges",
                          "--role", "app_owner", "--jobs", "3", "--dbname", "app_restoring", "--", fake.path]]


def test_a_new_database_is_renamed_into_place(server, run_module):
    fake = server(exists=False)
    failed, result = run_module(pg_restore_set, args(fake, owner="app_owner", keep_previous=False))
    assert not failed, result
    assert result["replaced"] == ""
    assert result["target"] == {"exists": False, "owner": "", "tables_with_rows": 0, "privileges": [], "settings": []}
    assert writes(fake)[-1] == 'ALTER DATABASE "app_restoring" RENAME TO "app"'
    assert not [s for s in fake.log if "ALLOW_CONNECTIONS" in s]


def test_hyphenated_names_are_quoted_in_sql_and_one_argument_to_pg_restore(server, run_module):
    fake = server(exists=False)
    failed, result = run_module(pg_restore_set, args(fake, name="sales-ottenok", owner="sales-owner", privileges=False))
    assert not failed, result
    assert writes(fake)[:2] == ['DROP DATABASE IF EXISTS "sales-ottenok_restoring" WITH (FORCE)',
                                'CREATE DATABASE "sales-ottenok_restoring" OWNER "sales-owner"']
    assert writes(fake)[-1] == 'ALTER DATABASE "sales-ottenok_restoring" RENAME TO "sales-ottenok"'
    assert fake.argv[0][-8:] == ["--role", "sales-owner", "--jobs", "2", "--dbname", "sales-ottenok_restoring", "--",
                                 fake.path]


@pytest.mark.parametrize("privileges", [True, False])
def test_a_live_database_owned_by_a_role_that_needs_quotes_is_replaced(server, run_module, privileges):
    # CREATE ROLE "App Owner": the server's own name for the owner, quoted in SQL, one argv item after --role.
    fake = server(owner="App Owner")
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", privileges=privileges))
    assert not failed, result
    assert result["owner"] == "App Owner"
    assert 'CREATE DATABASE "app_restoring" OWNER "App Owner"' in writes(fake)
    assert (["--role", "App Owner"] == fake.argv[0][6:8]) is not privileges


ICU_ROW = dict(datcollate="C.UTF-8", datctype="C.UTF-8", datlocprovider="i", daticulocale="de-DE", datname="app")
ICU_SQL = ("TEMPLATE 'template0' ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' LOCALE_PROVIDER 'icu' "
           "ICU_LOCALE 'de-DE'")


def test_the_copy_is_created_in_the_replaced_databases_encoding_and_locale(server, run_module):
    # pg_dump does not carry them: CREATE DATABASE alone would take template1's and sort text in another order.
    fake = server(locale=ICU_ROW)
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert not failed, result
    assert 'CREATE DATABASE "app_restoring" OWNER "app_owner" ' + ICU_SQL in writes(fake)


def test_a_new_database_is_created_in_the_backups_encoding_and_locale(server, run_module):
    fake = server(exists=False)
    locale = dict(encoding="UTF8", collate="C.UTF-8", ctype="C.UTF-8", provider="i", locale="de-DE")
    failed, result = run_module(pg_restore_set, args(fake, owner="app_owner", expected_catalog=dict(database_locale=locale)))
    assert 'CREATE DATABASE "app_restoring" OWNER "app_owner" ' + ICU_SQL in writes(fake)
    bad = dict(locale, provider="x")
    fake = server(exists=False)
    failed, result = run_module(pg_restore_set, args(fake, owner="app_owner", expected_catalog=dict(database_locale=bad)))
    assert failed and "a database locale provider this module does not know: 'x'" in result["msg"]
    assert not [s for s in writes(fake) if s.startswith("CREATE DATABASE")]


def test_a_server_that_cannot_make_the_backups_locale_says_which_and_what_to_do(server, run_module):
    # A new host in a disaster recovery may lack the locale the backup's database was made in.
    fake = server(exists=False, fail_on=("CREATE DATABASE",))
    locale = dict(encoding="UTF8", collate="de_DE.UTF-8", ctype="de_DE.UTF-8", provider="c")
    failed, result = run_module(pg_restore_set, args(fake, owner="app_owner", expected_catalog=dict(database_locale=locale)))
    assert failed and "failed before the swap, so the live database is untouched" in result["msg"]
    assert ("could not be created with encoding UTF8, collate de_DE.UTF-8, ctype de_DE.UTF-8, provider libc: "
            "ERROR: CREATE DATABASE failed; the backup's database was made in that encoding and locale") in result["msg"]
    assert "locale -a" in result["msg"]


def test_a_database_left_without_connections_is_named_in_sql_that_runs(server, run_module):
    # The advice is SQL to paste: a name like My-App must be quoted in it.
    fake = server()
    fake.allow_connections = False
    failed, result = run_module(pg_restore_set, args(fake, name="My-App", confirm="My-App"))
    assert failed and result["msg"].endswith('then run ALTER DATABASE "My-App" WITH ALLOW_CONNECTIONS true')


def test_the_replaced_database_is_dropped_without_keep_previous(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", keep_previous=False))
    assert not failed and result["replaced"] == "(dropped)" and result["previous"] == ""
    assert writes(fake)[-1].startswith('DROP DATABASE "app_before_') and writes(fake)[-1].endswith("WITH (FORCE)")


def test_a_setting_that_is_not_name_value_stops_before_the_swap(server, run_module):
    fake = server(settings=[("", ["search_path=public", "bad name=1"])])
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert failed and "failed before the swap, so the live database is untouched" in result["msg"]
    assert "a database setting that is not name=value: 'bad name=1'" in result["msg"]
    assert not [s for s in fake.log if "RENAME" in s or "ALLOW_CONNECTIONS" in s]
    assert writes(fake)[-1] == 'DROP DATABASE IF EXISTS "app_restoring" WITH (FORCE)'


def test_a_database_with_data_needs_the_confirmation(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="other"))
    assert failed and result["msg"].startswith("Refusing to replace database 'app': it holds data (1 tables with rows)")
    assert "confirm=app (the current one is kept as app_before_<time>)" in result["msg"]
    assert result["keep_as"] == "app_before_<time>"
    assert not writes(fake) and not fake.argv
    failed, result = run_module(pg_restore_set, args(fake, confirm="other", keep_previous=False))
    assert failed and "confirm=app (the current one is dropped)" in result["msg"] and result["keep_as"] == ""


def test_the_name_a_long_database_is_kept_as_is_shown_shortened_as_the_swap_shortens_it():
    for name in ("app", "a" * 41, "a" * 42, "shop-" + "x" * 58):
        shown = postgres.before_name_shown(name)
        kept = postgres.before_name(name, "20261206154500")
        assert shown.endswith("_before_<time>") and shown.replace("<time>", "20261206154500") == kept, (name, shown)
        assert len(kept.encode()) <= 63
    assert postgres.before_name_shown("a" * 63) != "a" * 63 + "_before_<time>"


def test_check_mode_reads_and_changes_nothing(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"), check_mode=True)
    assert not failed and result["changed"]
    assert result["target"] == {"exists": True, "owner": "app_owner", "tables_with_rows": 1,
                                "privileges": [["", "CONNECT", False], ["", "TEMPORARY", False]], "settings": []}
    assert not writes(fake) and not fake.argv


def test_a_failed_pg_restore_drops_the_scratch_database_and_leaves_the_live_one(server, run_module):
    fake = server()
    fake.pg_restore_result = (1, "", "pg_restore: error: could not read input file: end of file\n")
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert failed
    assert result["msg"] == ("Restore of backup b1 into app failed before the swap, so the live database is untouched: "
                             "pg_restore exited 1: pg_restore: error: could not read input file: end of file")
    assert writes(fake)[-1] == 'DROP DATABASE IF EXISTS "app_restoring" WITH (FORCE)'
    assert not [s for s in fake.log if "ALLOW_CONNECTIONS" in s or "RENAME" in s]


USER_MAPPING_ERROR = """pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 3345; 1418 17955 USER MAPPING USER MAPPING fdw_user SERVER remote postgres
pg_restore: error: could not execute query: ERROR:  role "fdw_user" does not exist
Command was: CREATE USER MAPPING FOR fdw_user SERVER remote OPTIONS (
    password 'S3cr3t-pw',
    "user" 'remote'
);
"""


def test_a_failed_pg_restore_does_not_echo_the_dumps_sql_which_may_hold_a_password(server, run_module):
    # pg_restore prints the statement that failed ("Command was: ..."): a user mapping's, a subscription's password.
    fake = server()
    fake.pg_restore_result = (1, "", USER_MAPPING_ERROR)
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert failed and "S3cr3t" not in str(result) and "remote'" not in result["msg"]
    assert result["msg"].endswith('pg_restore exited 1: pg_restore: from TOC entry 3345; 1418 17955 USER MAPPING USER MAPPING '
                                  'fdw_user SERVER remote postgres | pg_restore: error: could not execute query: ERROR:  '
                                  'role "fdw_user" does not exist | ' + postgres.SQL_NOT_SHOWN)


@pytest.mark.parametrize("text, shown", [
    ("psql:/tmp/d.sql:12: ERROR:  syntax error at or near \"pasword\"\nLINE 2:     pasword 'S3cr3t',\n            ^\n",
     'psql:/tmp/d.sql:12: ERROR:  syntax error at or near "pasword" | ' + postgres.SQL_NOT_SHOWN),
    (USER_MAPPING_ERROR + "pg_restore: warning: errors ignored on restore: 1\n",
     'role "fdw_user" does not exist | %s | pg_restore: warning: errors ignored on restore: 1' % postgres.SQL_NOT_SHOWN),
    ("pg_restore: error: could not read input file: end of file\n", "pg_restore: error: could not read input file: end of file"),
])
def test_error_tail_keeps_the_tools_words_and_drops_the_sql(text, shown):
    assert postgres.error_tail(text).endswith(shown) and "S3cr3t" not in postgres.error_tail(text)


@pytest.mark.parametrize("fail_on", ['RENAME TO "app_before_', 'ALTER DATABASE "app_restoring" RENAME TO "app"'])
def test_a_failed_swap_lets_connections_back_in_and_drops_the_scratch_database(server, run_module, fail_on):
    fake = server(fail_on=[fail_on])
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert failed
    assert result["msg"].startswith("Restore of backup b1 into app failed during the swap; connections to app are let in "
                                    "again and it keeps its name: the swap failed 5 times")
    assert len([s for s in fake.log if s == 'ALTER DATABASE "app" WITH ALLOW_CONNECTIONS false']) == 1
    assert fake.log.count("ROLLBACK") >= 5 and "COMMIT" not in fake.log
    assert writes(fake)[-2:] == ['ALTER DATABASE "app" WITH ALLOW_CONNECTIONS true',
                                 'DROP DATABASE IF EXISTS "app_restoring" WITH (FORCE)']


def test_a_swap_that_succeeds_on_a_later_attempt(server, run_module):
    fake = server(fail_on=['RENAME TO "app_before_'])
    original = fake.answer
    calls = {"n": 0}

    def answer(text, args):
        if "pg_terminate_backend" in text:
            calls["n"] += 1
            if calls["n"] == 2:
                fake.fail_on = []
        return original(text, args)

    fake.answer = answer
    failed, result = run_module(pg_restore_set, args(fake, confirm="app"))
    assert not failed, result
    assert "COMMIT" in fake.log and result["replaced"].startswith("app_before_")


def test_row_counts_that_differ_stop_before_the_swap(server, run_module, monkeypatch):
    fake = server()
    monkeypatch.setattr(postgres, "describe", lambda cursor, tables, query, catalog=False: {"row_counts": {"notes": 1}, "tables_missing": []})
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", expected_row_counts={"notes": 2}))
    assert failed
    assert "failed before the swap, so the live database is untouched: the restored copy does not match the backup: " \
           "rows {'notes': 1}, manifest {'notes': 2}" in result["msg"]
    assert writes(fake)[-1] == 'DROP DATABASE IF EXISTS "app_restoring" WITH (FORCE)'
    assert not [s for s in fake.log if "ALLOW_CONNECTIONS" in s]


def test_a_plain_dump_is_restored_as_the_owner_with_psql(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", format="plain", privileges=False))
    assert not failed, result
    assert fake.argv == [["psql", "-p", "5432", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", "app_restoring",
                          "-c", 'SET ROLE "app_owner"', "-f", fake.path]]


def test_a_plain_dump_with_privileges_is_restored_as_is(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", format="plain"))
    assert not failed, result
    assert fake.argv == [["psql", "-p", "5432", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", "app_restoring",
                          "-f", fake.path]]


def test_a_missing_dump_is_refused(server, run_module):
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, path=fake.path + ".gone"))
    assert failed and result["msg"] == "path: %s.gone does not exist: expected the dump of backup b1" % fake.path
    assert not fake.log


def test_pipe_joins_two_argv_lists_without_a_shell(tmp_path):
    import gzip
    import os
    import sys

    dump = tmp_path / "dump; touch marker.sql.gz"
    with gzip.open(str(dump), "wb") as out:
        out.write(b"SELECT 1;\n" * 10000)
    copy = tmp_path / "copy.sql"
    source, sink = pg_restore_set.pipe(
        ["gzip", "-dc", "--", str(dump)],
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())", str(copy)],
        dict(os.environ))
    assert source.returncode == 0 and sink.returncode == 0
    assert copy.read_bytes() == b"SELECT 1;\n" * 10000
    assert not (tmp_path / "marker.sql.gz").exists() and not os.path.exists("marker.sql.gz")


def test_pipe_reports_a_producer_that_fails(tmp_path):
    import os
    import sys

    source, sink = pg_restore_set.pipe(["gzip", "-dc", "--", str(tmp_path / "missing.gz")],
                                       [sys.executable, "-c", "import sys; sys.stdin.read()"], dict(os.environ))
    assert source.returncode != 0 and b"missing.gz" in source.stderr
    assert sink.returncode == 0


def test_a_compressed_custom_dump_goes_to_pg_restore_as_it_is(server, run_module):
    """The manifest records the compression of a custom dump too (pg_dump -Z): pg_restore reads it itself."""
    fake = server()
    failed, result = run_module(pg_restore_set, args(fake, confirm="app", compression="gzip"))
    assert not failed, result
    assert fake.argv[0][0] == "pg_restore" and fake.argv[0][-1] == fake.path


def test_a_roles_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    # main() checks os.path.isfile first, but a FIFO put there afterwards blocked open() for ever.
    import os
    import signal
    import types

    fifo = tmp_path / "roles.sql"
    os.mkfifo(fifo)
    module = types.SimpleNamespace(params=dict(name="app", privileges=True, required_roles=["app"], roles_file=str(fifo),
                                               create_roles=True), check_mode=False)

    def expired(signum, frame):
        raise AssertionError("blocked for 5 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    try:
        with pytest.raises(pg_restore_set.RestoreFailed, match="roles_file: .*roles.sql cannot be read: .*not a regular file"):
            pg_restore_set.Restore(module, admin=None).ensure_roles()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", ["shop", "dbname=shop host=elsewhere", "postgresql://elsewhere/shop", "it's", "a\\'b",
                                  "Mixed Case", "trailing\\"])
def test_conninfo_dbname_is_read_back_by_libpq_as_the_name_alone(name):
    # psql -d, pg_restore -d: a value holding '=' or starting postgresql:// is a whole connection string.
    conninfo = pytest.importorskip("psycopg.conninfo")
    assert conninfo.conninfo_to_dict(postgres.conninfo_dbname(name)) == {"dbname": name}
