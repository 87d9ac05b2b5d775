"""module_utils/pg_catalog without a database: the comparison of a restored copy with the manifest, and the
saved roles a restore may create (the catalog queries themselves run in tests/test_pg_*_live.py)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import pg_catalog

CATALOG = {
    "tables": {
        "shop.orders": {"kind": "partitioned table", "parent": None, "rows": 3, "owner": "app", "acl": ["app=arwdDxt/app"]},
        "shop.orders_1": {"kind": "table", "parent": "shop.orders", "rows": 3, "owner": "app", "acl": ["app=arwdDxt/app"]},
        "public.notes": {"kind": "table", "parent": None, "rows": 100, "owner": "app",
                         "acl": ["app=arwdDxt/app", "reader=r/app"]},
    },
    "sequences": {"public.notes_id_seq": {"owner": "app", "acl": [], "last_value": 100, "is_called": True}},
    "views": {"public.v": {"owner": "app", "acl": []}},
    "materialized_views": {"public.mv": {"owner": "app", "acl": [], "populated": True, "rows": 2}},
    "functions": {"public.f(integer)": {"kind": "function", "owner": "app", "acl": ["=X/app"]}},
    "schemas": {"shop": {"owner": "app", "acl": []}},
    "extensions": {"citext": "1.6"},
    "default_privileges": [],
    "large_objects": {"app": 2},
    "roles": ["app", "reader"],
}


def failed(checks):
    return {c["name"]: (c["expected"], c["actual"]) for c in checks if not c["ok"]}


def test_an_identical_copy_passes_and_counts_leaves_once():
    checks = pg_catalog.compare(CATALOG, copy.deepcopy(CATALOG))
    assert failed(checks) == {}
    assert {"table shop.orders", "rows shop.orders_1", "grants on table public.notes", "sequence public.notes_id_seq",
            "view public.v", "rows public.mv", "function public.f(integer)", "extension citext"} <= {c["name"] for c in checks}
    assert pg_catalog.compared(CATALOG, CATALOG)["rows"] == 103  # the parent's 3 are its leaf's, not added again


@pytest.mark.parametrize("damage, name, expected, actual", [
    (lambda c: c["tables"]["public.notes"].update(rows=99), "rows public.notes", 100, 99),
    (lambda c: c["tables"]["public.notes"].update(acl=["app=arwdDxt/app"]), "grants on table public.notes",
     ["app=arwdDxt/app", "reader=r/app"], ["app=arwdDxt/app"]),
    (lambda c: c["tables"]["public.notes"].update(owner="postgres"), "owner of table public.notes", "app", "postgres"),
    (lambda c: c["tables"].pop("shop.orders_1"), "table shop.orders_1", "table of shop.orders", "missing"),
    (lambda c: c["tables"].update({"public.extra": dict(CATALOG["tables"]["public.notes"])}), "table public.extra",
     "absent (not in the manifest)", "present"),
    (lambda c: c["sequences"]["public.notes_id_seq"].update(last_value=1), "sequence public.notes_id_seq", "100", "1"),
    (lambda c: c["views"].pop("public.v"), "view public.v", "present", "missing"),
    (lambda c: c["functions"]["public.f(integer)"].update(acl=[]), "grants on function public.f(integer)", ["=X/app"], []),
    (lambda c: c["extensions"].update(citext="1.5"), "extension citext", "1.6", "1.5"),
    (lambda c: c.update(large_objects={"app": 1}), "large objects", 2, 1),
    (lambda c: c.update(large_objects={}), "large objects", 2, 0),
    (lambda c: c.update(large_objects={"postgres": 2}), "owners of large objects", {"app": 2}, {"postgres": 2}),
])
def test_each_difference_is_named(damage, name, expected, actual):
    restored = copy.deepcopy(CATALOG)
    damage(restored)
    assert failed(pg_catalog.compare(CATALOG, restored))[name] == (expected, actual)


def test_a_manifest_from_before_large_objects_were_recorded_has_none_to_compare():
    older = copy.deepcopy(CATALOG)
    del older["large_objects"]
    checks = pg_catalog.compare(older, copy.deepcopy(CATALOG))
    assert failed(checks) == {}
    assert not [c for c in checks if "large objects" in c["name"]]
    assert pg_catalog.compared(older, CATALOG)["large_objects"] == 0
    assert pg_catalog.compared(CATALOG, CATALOG)["large_objects"] == 2


def test_the_public_schema_of_a_new_database_passes_when_the_source_had_dropped_its_own():
    # pg_dump never drops public: a copy of a database without one has it as CREATE DATABASE made it.
    restored = copy.deepcopy(CATALOG)
    restored["schemas"]["public"] = dict(pg_catalog.NEW_DATABASE_PUBLIC)
    checks = pg_catalog.compare(CATALOG, restored)
    assert failed(checks) == {}
    assert "schema public" in {c["name"] for c in checks}
    # Changed in any way (an owner, a grant), or missing from a source that had it, it still fails.
    restored["schemas"]["public"] = dict(owner="app", acl=pg_catalog.NEW_DATABASE_PUBLIC["acl"])
    assert failed(pg_catalog.compare(CATALOG, restored)) == {"schema public": ("absent (not in the manifest)", "present")}
    restored["schemas"]["public"] = dict(pg_catalog.NEW_DATABASE_PUBLIC, acl=["=UC/pg_database_owner"])
    assert failed(pg_catalog.compare(CATALOG, restored)) == {"schema public": ("absent (not in the manifest)", "present")}
    with_public = copy.deepcopy(CATALOG)
    with_public["schemas"]["public"] = dict(pg_catalog.NEW_DATABASE_PUBLIC)
    assert failed(pg_catalog.compare(with_public, CATALOG)) == {"schema public": ("present", "missing")}


ICU_DE = dict(encoding="UTF8", collate="C.UTF-8", ctype="C.UTF-8", provider="i", locale="de-DE")


def test_a_copy_in_another_encoding_or_locale_fails():
    # pg_dump does not carry them: a copy made from template1 sorts text in template1's order.
    with_locale = dict(copy.deepcopy(CATALOG), database_locale=ICU_DE)
    libc = dict(encoding="UTF8", collate="C.UTF-8", ctype="C.UTF-8", provider="c")
    assert failed(pg_catalog.compare(with_locale, dict(copy.deepcopy(CATALOG), database_locale=libc))) == {
        "database encoding and locale": (ICU_DE, libc)}
    assert failed(pg_catalog.compare(with_locale, copy.deepcopy(with_locale))) == {}
    assert failed(pg_catalog.compare(CATALOG, dict(copy.deepcopy(CATALOG), database_locale=libc))) == {}  # an older manifest


@pytest.mark.parametrize("locale, options", [
    (None, []),
    ({}, []),
    (ICU_DE, [("TEMPLATE", "template0"), ("ENCODING", "UTF8"), ("LC_COLLATE", "C.UTF-8"), ("LC_CTYPE", "C.UTF-8"),
              ("LOCALE_PROVIDER", "icu"), ("ICU_LOCALE", "de-DE")]),
    (dict(encoding="LATIN1", collate="de_DE", ctype="de_DE", provider="c"),
     [("TEMPLATE", "template0"), ("ENCODING", "LATIN1"), ("LC_COLLATE", "de_DE"), ("LC_CTYPE", "de_DE"),
      ("LOCALE_PROVIDER", "libc")]),
    (dict(encoding="UTF8", collate="C", ctype="C"),  # before PostgreSQL 15: no provider
     [("TEMPLATE", "template0"), ("ENCODING", "UTF8"), ("LC_COLLATE", "C"), ("LC_CTYPE", "C")]),
    (dict(encoding="UTF8", collate="C", ctype="C", provider="b", locale="C.UTF-8"),
     [("TEMPLATE", "template0"), ("ENCODING", "UTF8"), ("LC_COLLATE", "C"), ("LC_CTYPE", "C"),
      ("LOCALE_PROVIDER", "builtin"), ("BUILTIN_LOCALE", "C.UTF-8")]),
])
def test_database_locale_options(locale, options):
    assert pg_catalog.database_locale_options(locale) == options


def test_database_locale_options_refuse_an_unknown_provider():
    with pytest.raises(ValueError, match="provider"):
        pg_catalog.database_locale_options(dict(ICU_DE, provider="x; DROP"))


def test_the_tolerance_applies_to_rows_and_sequences():
    restored = copy.deepcopy(CATALOG)
    restored["tables"]["public.notes"]["rows"] = 104
    restored["sequences"]["public.notes_id_seq"]["last_value"] = 104
    assert set(failed(pg_catalog.compare(CATALOG, restored, 5))) == set()
    assert set(failed(pg_catalog.compare(CATALOG, restored, 3))) == {"rows public.notes", "sequence public.notes_id_seq"}


def test_the_tolerance_applies_to_a_descending_sequence_too():
    # A descending sequence's last_value is negative: the allowance came out negative, and an identical copy failed.
    manifest = copy.deepcopy(CATALOG)
    manifest["sequences"]["public.notes_id_seq"]["last_value"] = -100
    assert failed(pg_catalog.compare(manifest, copy.deepcopy(manifest), 5)) == {}
    restored = copy.deepcopy(manifest)
    restored["sequences"]["public.notes_id_seq"]["last_value"] = -104
    assert failed(pg_catalog.compare(manifest, restored, 5)) == {}
    assert set(failed(pg_catalog.compare(manifest, restored, 3))) == {"sequence public.notes_id_seq"}


ROLES_SQL = r'''--
-- Roles
--

CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE reader;
ALTER ROLE reader WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:abc';
CREATE ROLE "Odd ""Name""";
ALTER ROLE "Odd ""Name""" WITH NOSUPERUSER NOINHERIT NOLOGIN CONNECTION LIMIT 3;
GRANT reader TO "Odd ""Name""" GRANTED BY postgres;
DROP ROLE reader;
'''


def test_saved_roles_are_read_line_by_line_never_run():
    roles = pg_catalog.saved_roles(ROLES_SQL)
    assert set(roles) == {"postgres", "reader", 'Odd "Name"'}
    assert roles["reader"]["attributes"][-1] == "PASSWORD 'SCRAM-SHA-256$4096:abc'"
    assert roles['Odd "Name"'] == {"attributes": ["NOSUPERUSER", "NOINHERIT", "NOLOGIN", "CONNECTION LIMIT 3"],
                                   "member_of": ["reader"]}


class FakeSQL(object):
    class SQL(str):
        def format(self, *idents):
            return str.format(self, *idents)

    @staticmethod
    def Identifier(name):
        return '"%s"' % name.replace('"', '""')


class FakeCursor(object):
    def __init__(self, existing):
        self.existing, self.statements, self.rows = set(existing), [], []

    def execute(self, query, args=None):
        if query.startswith("SELECT rolname"):
            self.rows = [(n,) for n in args[0] if n in self.existing]
        else:
            self.statements.append(query)
            if query.startswith("CREATE ROLE "):
                self.existing.add(query[len('CREATE ROLE "'):-1])

    def fetchall(self):
        return self.rows


def test_only_missing_roles_are_created_and_superuser_is_refused():
    cursor = FakeCursor({"postgres"})
    created = pg_catalog.ensure_roles(cursor, FakeSQL, ["reader", 'Odd "Name"'], ROLES_SQL, True)
    assert created == ['Odd "Name"', "reader"]
    assert cursor.statements[0] == 'CREATE ROLE "Odd ""Name"""'
    assert 'GRANT "reader" TO "Odd ""Name"""' in cursor.statements
    with pytest.raises(ValueError, match="postgres has attribute SUPERUSER"):
        pg_catalog.ensure_roles(FakeCursor(set()), FakeSQL, ["postgres", "reader"], ROLES_SQL, True)
    with pytest.raises(ValueError, match="lacks: reader$|lacks: reader "):
        pg_catalog.ensure_roles(FakeCursor({"postgres"}), FakeSQL, ["reader"], ROLES_SQL, False)
    with pytest.raises(ValueError, match="did not save: ghost"):
        pg_catalog.ensure_roles(FakeCursor(set()), FakeSQL, ["ghost"], ROLES_SQL, True)


# --- database settings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, items", [
    ('"$user", public', ["$user", "public"]),
    ('public', ["public"]),
    ('""', [""]),
    ('', []),
    ('"Odd, ""Schema""",x', ['Odd, "Schema"', "x"]),
])
def test_split_setting_list(value, items):
    assert pg_catalog.split_setting_list(value) == items


@pytest.mark.parametrize("value", ['"open', "a b", "a,", "a,,b"])
def test_split_setting_list_refuses_what_the_server_never_stores(value):
    with pytest.raises(ValueError):
        pg_catalog.split_setting_list(value)


@pytest.mark.parametrize("role, setting, statement", [
    ("", "statement_timeout=30s", """ALTER DATABASE "db" SET "statement_timeout" = '30s'"""),
    ("", "app.region=eu'; DROP TABLE t; --", """ALTER DATABASE "db" SET "app"."region" = 'eu''; DROP TABLE t; --'"""),
    ("", 'search_path="$user", public', """ALTER DATABASE "db" SET "search_path" = '$user', 'public'"""),
    ("", "DateStyle=ISO, MDY", """ALTER DATABASE "db" SET "DateStyle" = 'ISO, MDY'"""),
    ('we"ird', "work_mem=8MB", """ALTER ROLE "we""ird" IN DATABASE "db" SET "work_mem" = '8MB'"""),
])
def test_setting_statement(role, setting, statement):
    sql = pytest.importorskip("psycopg.sql")
    assert pg_catalog.setting_statement(sql, "db", role, setting).as_string(None) == statement


@pytest.mark.parametrize("setting", ["no_equals", "bad name=1", "x; DROP=1", "=1"])
def test_setting_statement_refuses_a_name_that_is_not_a_setting(setting):
    sql = pytest.importorskip("psycopg.sql")
    with pytest.raises(ValueError, match="not name=value"):
        pg_catalog.setting_statement(sql, "db", "", setting)


@pytest.mark.parametrize("acl, roles", [
    (["app=arwdDxt/app", "=r/app"], {"app"}),
    (['"App Owner"=r/"App Owner"'], {"App Owner"}),
    (['"a=b"=r/app', '"x/y"=U/"q""uote"'], {"a=b", "app", "x/y", 'q"uote'}),  # = and / inside quoted names
    (['reader=r*/app'], {"reader", "app"}),
])
def test_acl_roles_reads_quoted_names_whole(acl, roles):
    assert pg_catalog._acl_roles(acl) == roles


# --- indexes, constraints, triggers, policies and row level security -------------------------------------------

DEFINED = copy.deepcopy(CATALOG)
DEFINED["tables"]["public.notes"].update(
    row_security="enabled, forced",
    indexes={"notes_pkey": "CREATE UNIQUE INDEX notes_pkey ON public.notes USING btree (id)"},
    constraints={"notes_pkey": "PRIMARY KEY (id)", "notes_body_check": "CHECK ((body <> ''::text))"},
    triggers={"notes_audit": "CREATE TRIGGER notes_audit AFTER UPDATE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.f()"},
    policies={"own": "AS PERMISSIVE FOR SELECT TO reader USING ((owner = CURRENT_USER))"})
DEFINED["materialized_views"]["public.mv"]["indexes"] = {"mv_id": "CREATE INDEX mv_id ON public.mv USING btree (id)"}


def test_indexes_constraints_triggers_and_policies_of_an_identical_copy_pass():
    checks = pg_catalog.compare(DEFINED, copy.deepcopy(DEFINED))
    assert failed(checks) == {}
    assert {"index notes_pkey on table public.notes", "constraint notes_body_check on table public.notes",
            "trigger notes_audit on table public.notes", "policy own on table public.notes",
            "row level security of table public.notes", "index mv_id on materialized view public.mv"} <= {c["name"] for c in checks}


@pytest.mark.parametrize("damage, name, expected, actual", [
    (lambda t: t["indexes"].clear(), "index notes_pkey on table public.notes",
     "CREATE UNIQUE INDEX notes_pkey ON public.notes USING btree (id)", "missing"),
    (lambda t: t["constraints"].pop("notes_body_check"), "constraint notes_body_check on table public.notes",
     "CHECK ((body <> ''::text))", "missing"),
    (lambda t: t["constraints"].update(notes_body_check="CHECK ((body IS NOT NULL))"),
     "constraint notes_body_check on table public.notes", "CHECK ((body <> ''::text))", "CHECK ((body IS NOT NULL))"),
    (lambda t: t["triggers"].clear(), "trigger notes_audit on table public.notes",
     "CREATE TRIGGER notes_audit AFTER UPDATE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.f()", "missing"),
    (lambda t: t["policies"].clear(), "policy own on table public.notes",
     "AS PERMISSIVE FOR SELECT TO reader USING ((owner = CURRENT_USER))", "missing"),
    (lambda t: t["policies"].update(extra="AS PERMISSIVE FOR ALL TO PUBLIC USING (true)"), "policy extra on table public.notes",
     "absent (not in the manifest)", "AS PERMISSIVE FOR ALL TO PUBLIC USING (true)"),
    (lambda t: t.update(row_security="disabled"), "row level security of table public.notes", "enabled, forced", "disabled"),
    (lambda t: t.update(row_security="enabled"), "row level security of table public.notes", "enabled, forced", "enabled"),
])
def test_a_lost_index_constraint_trigger_policy_or_row_level_security_is_named(damage, name, expected, actual):
    restored = copy.deepcopy(DEFINED)
    damage(restored["tables"]["public.notes"])
    assert failed(pg_catalog.compare(DEFINED, restored)) == {name: (expected, actual)}


def test_a_lost_index_of_a_materialized_view_is_named():
    restored = copy.deepcopy(DEFINED)
    restored["materialized_views"]["public.mv"]["indexes"] = {}
    assert failed(pg_catalog.compare(DEFINED, restored)) == {
        "index mv_id on materialized view public.mv": ("CREATE INDEX mv_id ON public.mv USING btree (id)", "missing")}


def test_a_manifest_from_before_definitions_were_recorded_compares_only_what_it_recorded():
    checks = pg_catalog.compare(CATALOG, copy.deepcopy(DEFINED))
    assert failed(checks) == {}
    assert not [c for c in checks if c["kind"] in ("index", "constraint", "trigger", "policy", "row_security")]


@pytest.mark.parametrize("schema, name, key", [
    ("public", "notes", "public.notes"),
    ("a.b", "c", '"a.b".c'),
    ("a", "b.c", 'a."b.c"'),
    ('we"ird', "t", '"we""ird".t'),
    ("Mixed Case", "T", "Mixed Case.T"),
])
def test_object_key_keeps_names_holding_a_dot_apart(schema, name, key):
    assert pg_catalog.object_key(schema, name) == key


@pytest.mark.parametrize("setting, recorded", [
    ("work_mem=16MB", "work_mem=16MB"),
    ("app.jwt_secret=abc", "app.jwt_secret"),
    ("app.database_url=postgres://app:hunter2@db.example/app", "app.database_url"),
    ("app.dsn=host=db.example user=app password=hunter2", "app.dsn"),
    ("app.dsn=host=db.example user=app PASSWORD = hunter2", "app.dsn"),
    ("app.home=https://example.com/a:b", "app.home=https://example.com/a:b"),  # no password in it
    ('search_path="$user", public', 'search_path="$user", public'),
])
def test_a_setting_whose_value_holds_a_password_is_recorded_by_name_only(setting, recorded):
    assert pg_catalog._recorded(setting) == recorded


class PowerCursor(FakeCursor):
    """FakeCursor that also answers which of the named roles are (or are members of) powerful ones."""

    def __init__(self, existing, powerful):
        super().__init__(existing)
        self.powerful = set(powerful)

    def execute(self, query, args=None):
        if "pg_has_role" in query:
            self.rows = [(n,) for n in sorted(args[0]) if n in self.powerful]
        else:
            super().execute(query, args)


def test_a_membership_in_a_superuser_role_is_refused_like_the_attribute_before_any_role_is_created():
    # SUPERUSER is refused, but GRANT postgres TO app (SET ROLE postgres) was granted: the same power.
    saved = ROLES_SQL + "CREATE ROLE sneaky;\nGRANT postgres TO sneaky GRANTED BY postgres;\n" \
                        "GRANT pg_execute_server_program TO sneaky GRANTED BY postgres;\n"
    cursor = PowerCursor({"postgres", "pg_execute_server_program"}, {"postgres", "pg_execute_server_program"})
    with pytest.raises(ValueError, match="does not grant: sneaky in postgres, sneaky in pg_execute_server_program; create"):
        pg_catalog.ensure_roles(cursor, FakeSQL, ["reader", "sneaky"], saved, True)
    assert cursor.statements == []  # all or none: reader was not created either
    cursor = PowerCursor({"postgres", "app_group"}, {"postgres"})
    saved = ROLES_SQL + "CREATE ROLE member;\nGRANT app_group TO member GRANTED BY postgres;\n"
    assert pg_catalog.ensure_roles(cursor, FakeSQL, ["member"], saved, True) == ["member"]
    assert 'GRANT "app_group" TO "member"' in cursor.statements


@pytest.mark.parametrize("line", [
    "GRANT reader TO app GRANTED BY postgres;",  # PostgreSQL 15
    "GRANT reader TO app WITH ADMIN OPTION GRANTED BY postgres;",
    "GRANT reader TO app WITH INHERIT TRUE GRANTED BY postgres;",  # PostgreSQL 16 and later
    "GRANT reader TO app WITH ADMIN OPTION, INHERIT FALSE, SET FALSE GRANTED BY postgres;",
    "GRANT reader TO app WITH INHERIT TRUE;",
])
def test_a_membership_is_read_as_each_pg_dumpall_writes_it(line):
    # pg_dumpall 16 writes the options of a membership: such lines were skipped, and the restored role lacked it.
    assert pg_catalog.saved_roles("CREATE ROLE app;\n" + line + "\n")["app"]["member_of"] == ["reader"]
