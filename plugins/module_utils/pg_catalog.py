# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The whole database, discovered from the catalogs: what a backup manifest records and what a restored copy is
checked against (pg_backup_manifest, pg_drill and pg_restore_set all use :func:`describe` and :func:`compare`).

Every relation, sequence, view, materialized view, function and schema outside pg_catalog, information_schema
and pg_toast (and the temporary schemas), minus what extensions own (CREATE EXTENSION makes those again), with
its owner and its grants (and a table's indexes, constraints, triggers, row level security policies and whether
row level security is enabled or forced: a restore that lost them would match every row count), and the large
objects (how many each role owns: pg_dump of a whole database carries them, and an app that keeps its files in
them would lose them unnoticed otherwise). Row counts are counted on leaf tables only (a partitioned parent holds
no rows of its own; its count is the sum of its leaves), so the total is not doubled, with row level security off
(a count a policy would cut short is an error instead). ACLs are normalised: a NULL ACL (the owner's default
privileges) is written as ``acldefault()``, so that an ACL pg_dump leaves out compares equal.
"""

from __future__ import annotations

import re

#: Row level security off for the transaction: a count a policy would cut short is an error instead.
ROW_SECURITY_OFF = "SELECT set_config('row_security', 'off', true)"

#: bump when the shape of the catalog changes.
CATALOG_VERSION = 2

USER_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
                "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'")


def _not_in_extension(classid, column):
    return ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '%s'::regclass AND d.objid = %s "
            "AND d.deptype = 'e')" % (classid, column))


RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relispartition,
       (SELECT ARRAY[pn.nspname::text, pc.relname::text] FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition),
       c.relispopulated,
       ARRAY(SELECT a::text FROM unnest(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's'
             ELSE 'r' END::"char", c.relowner))) a ORDER BY 1),
       ARRAY(SELECT at.attname || ': ' || a::text FROM pg_attribute at, unnest(at.attacl) a
              WHERE at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped ORDER BY 1),
       ARRAY(SELECT a::text FROM pg_attribute at, unnest(at.attacl) a
              WHERE at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped),
       c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND %s AND %s
 ORDER BY 2, 3
""" % (USER_SCHEMAS, _not_in_extension("pg_class", "c.oid"))

# What a restore that lost them would not show in rows or grants: indexes, constraints, triggers and row level
# security policies, by the relation's oid, each by name with its definition as PostgreSQL prints it. Read with
# search_path = pg_catalog, so that every name in a definition is schema-qualified whatever the session's path.
# Constraints cloned from a parent's (a partition's copy of its parent's key, one per referenced partition on the
# same table; pg_dump dumps only the parent's, and a partition's own that was attached to it comes back under the
# parent's name) and the triggers the server makes itself (a foreign key's) are left out: made again with what made
# them, and compared there.
INDEXES = "SELECT i.indrelid, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
CONSTRAINTS = """
SELECT co.conrelid, co.conname, pg_get_constraintdef(co.oid)
  FROM pg_constraint co
 WHERE co.conrelid <> 0 AND co.conparentid = 0
"""
TRIGGERS = "SELECT tgrelid, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
POLICIES = """
SELECT p.polrelid, p.polname,
       'AS ' || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
       || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                   WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
       || ' TO ' || array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                                            FROM unnest(p.polroles) r ORDER BY 1), ', ')
       || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
       || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
  FROM pg_policy p
"""
#: The catalog's key of each of them in a relation's entry, and its name in a check.
DEFINITIONS = (("indexes", "index", INDEXES), ("constraints", "constraint", CONSTRAINTS), ("triggers", "trigger", TRIGGERS),
               ("policies", "policy", POLICIES))
#: Which of them each kind of relation may have (a view an INSTEAD OF trigger, a materialized view indexes).
_DEFINED_ON = dict(r=("indexes", "constraints", "triggers", "policies"), p=("indexes", "constraints", "triggers", "policies"),
                   f=("constraints", "triggers", "policies"), m=("indexes",), v=("triggers",))
#: Kinds whose entry gets a field only when it has any: their entries keep the shape they had before.
_ONLY_WHEN_ANY = ("m", "v")

FUNCTIONS = """
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,
       pg_get_userbyid(p.proowner),
       ARRAY(SELECT a::text FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) a ORDER BY 1)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE %s AND %s
 ORDER BY 1, 2, 3
""" % (USER_SCHEMAS, _not_in_extension("pg_proc", "p.oid"))

SCHEMAS = """
SELECT n.nspname, pg_get_userbyid(n.nspowner),
       ARRAY(SELECT a::text FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) a ORDER BY 1)
  FROM pg_namespace n
 WHERE %s AND %s
 ORDER BY 1
""" % (USER_SCHEMAS, _not_in_extension("pg_namespace", "n.oid"))

EXTENSIONS = "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"

DEFAULT_PRIVILEGES = """
SELECT pg_get_userbyid(d.defaclrole), coalesce(n.nspname, ''), d.defaclobjtype::text,
       ARRAY(SELECT a::text FROM unnest(d.defaclacl) a ORDER BY 1)
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
 ORDER BY 1, 2, 3
"""

# Every role an object of this database depends on (pg_shdepend: owners 'o', grantees 'a', roles of a policy's TO
# 'r'), so that the roles a restore needs include those no relation, function or schema above names: a policy's TO
# role, a user mapping's user (CREATE USER MAPPING FOR), a type's, a foreign server's or a publication's owner. What
# extensions own is left out, as above (CREATE EXTENSION makes it, as the restoring user).
DEPENDENT_ROLES = """
SELECT DISTINCT pg_get_userbyid(s.refobjid)
  FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
 WHERE d.datname = current_database() AND s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('o', 'a', 'r')
   AND s.classid <> 'pg_extension'::regclass
   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = s.classid AND e.objid = s.objid AND e.deptype = 'e')
 ORDER BY 1
"""

# Large objects by owner (pg_largeobject_metadata is readable by every role; their bytes, in pg_largeobject, only by
# superusers, so the count is what a backup user can always record).
LARGE_OBJECTS = "SELECT pg_get_userbyid(lomowner), count(*) FROM pg_largeobject_metadata GROUP BY 1 ORDER BY 1"

# The database's own privileges other than its owner's (a new database's default: PUBLIC may connect and make
# temporary tables). pg_dump of one database does not carry them, so the manifest does, and a restore into a new
# database gives them back. Grantee '' is PUBLIC.
DATABASE_PRIVILEGES = """
SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable
  FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE d.datname = current_database() AND a.grantee <> d.datdba
 ORDER BY 1, 2
"""

# Settings made with ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET (a search_path, a timeout). The
# server keeps them by the database's oid, so pg_dump of one database does not carry them either. Role '' is the
# database's own setting, for every role.
DATABASE_SETTINGS = """
SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, s.setconfig
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
 WHERE d.datname = coalesce(%(db)s, current_database())
 ORDER BY 1
"""

# The database's encoding and locale (collation, character classes, and from PostgreSQL 15 the locale provider: an
# ICU locale such as de-DE). pg_dump of one database does not carry them either: a copy made with CREATE DATABASE
# takes template1's, and sorts text in another order. Read from to_jsonb() of the row, as the columns differ between
# versions (daticulocale in 15 and 16, datlocale from 17).
DATABASE_LOCALE = """
SELECT pg_encoding_to_char(d.encoding), to_jsonb(d)
  FROM pg_database d
 WHERE d.datname = coalesce(%(db)s, current_database())
"""

#: Settings whose name says they may hold a secret (PostgREST keeps its app.jwt_secret so): the manifest, which a
#: backup returns as its result and so reaches logs and run artifacts, records their names without the value.
SECRET_SETTING = re.compile(r"secret|passw|token|key|credential", re.IGNORECASE)
#: Values that hold a password whatever the setting's name (app.database_url = 'postgres://app:pw@db/app',
#: app.dsn = 'host=db password=pw'): recorded by name only too.
SECRET_VALUE = re.compile(r"://[^/?#@\s]*:[^/?#@\s]*@|\bpassword\s*=", re.IGNORECASE)

RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "S": "sequence",
            "f": "foreign table"}
PROKINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}
#: pg_dump restores these with CREATE EXTENSION, so roles named in them need no backing up; PUBLIC is no role.
_BUILTIN_ROLE = re.compile(r"\Apg_")


#: An aclitem's text: grantee=privileges/grantor, each name bare or double-quoted ('"' doubled) when it holds
#: anything but letters, digits and _ ("app=rw", "a/b").
_ACLITEM = re.compile(r'\A((?:"(?:[^"]|"")*"|[^"=/])*)=[A-Za-z*]*/((?:"(?:[^"]|"")*"|[^"=/])*)\Z')


def _acl_roles(acl):
    """Role names in aclitem texts (grantee=privs/grantor); '' is PUBLIC. Quoted names are unquoted."""
    names = set()
    for item in acl or []:
        match = _ACLITEM.match(item)
        # (never seen: the server writes every aclitem so; read as before rather than stop a backup)
        grantee, dummy, rest = item.partition("=")
        for name in match.groups() if match else (grantee, rest.partition("/")[2]):
            if name.startswith('"') and name.endswith('"'):
                name = name[1:-1].replace('""', '"')
            if name:
                names.add(name)
    return names


def _ident(sql, schema, name):
    return sql.Identifier(schema, name)


def _part(name):
    # As SQL and postgres.split_table_name write one: in double quotes ('"' doubled) when it holds '.' or '"'.
    return '"%s"' % name.replace('"', '""') if "." in name or '"' in name else name


def object_key(schema, name):
    """The catalog's key of a relation: schema.name, a part holding '.' or '"' in double quotes ('"' doubled), so
    that schema "a.b" table c (``"a.b".c``) and schema a table "b.c" (``a."b.c"``) stay two keys."""
    return "%s.%s" % (_part(schema), _part(name))


def describe(cursor, sql):
    """The catalog of the connected database (see the module docstring), read with ``cursor`` in the caller's
    transaction; ``sql`` is the driver's sql module (identifiers quoted by the driver). Returns a dict:
    tables (with indexes, constraints, triggers, policies: {name: definition}, and row_security), sequences, views
    (triggers), materialized_views (indexes), functions, schemas, extensions, default_privileges,
    database_privileges ([grantee, privilege, grantable], grantee '' for PUBLIC), database_settings ([role,
    "name=value"], role '' for the database's own; a secret-looking name without its value), roles, totals."""
    tables, sequences, views, matviews = {}, {}, {}, {}
    roles = set()
    by_oid = {}
    cursor.execute(ROW_SECURITY_OFF)  # counts of every row, or an error (see _count)
    cursor.execute(RELATIONS)
    for oid, schema, name, kind, owner, is_partition, parent, populated, acl, column_acl, column_items, rls, forced \
            in cursor.fetchall():
        key = object_key(schema, name)
        roles.add(owner)
        # The grantees of column grants from the aclitems themselves: a column name may hold ": " ("note: internal").
        roles |= _acl_roles(acl) | _acl_roles(column_items)
        entry = dict(owner=owner, acl=list(acl))
        if column_acl:
            entry["column_acl"] = list(column_acl)
        if kind in ("r", "p", "f"):
            entry.update(kind=RELKINDS[kind], parent=object_key(*parent) if is_partition and parent else None)
            entry["row_security"] = _row_security(rls, forced)
            if kind == "r":
                entry["rows"] = _count(cursor, sql, schema, name)
            tables[key] = entry
        elif kind == "S":
            cursor.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(_ident(sql, schema, name)))
            last_value, is_called = cursor.fetchone()
            entry.update(last_value=int(last_value), is_called=bool(is_called))
            sequences[key] = entry
        elif kind == "v":
            views[key] = entry
        else:
            entry.update(populated=bool(populated), rows=_count(cursor, sql, schema, name) if populated else None)
            matviews[key] = entry
        if kind in _DEFINED_ON:
            by_oid[oid] = (entry, _DEFINED_ON[kind], kind in _ONLY_WHEN_ANY)
    _definitions(cursor, by_oid)
    # A parent's rows are its leaves' (partitions may nest): summed, never counted twice.
    for key, entry in tables.items():
        if entry["kind"] == "partitioned table":
            entry["rows"] = sum(t.get("rows") or 0 for k, t in tables.items() if _descends(tables, k, key))
    functions = {}
    cursor.execute(FUNCTIONS)
    for schema, name, arguments, kind, owner, acl in cursor.fetchall():
        signature = "%s(%s)" % (object_key(schema, name), arguments)
        roles.add(owner)
        roles |= _acl_roles(acl)
        functions[signature] = dict(kind=PROKINDS.get(kind, kind), owner=owner, acl=list(acl))
    schemas = {}
    cursor.execute(SCHEMAS)
    for name, owner, acl in cursor.fetchall():
        roles.add(owner)
        roles |= _acl_roles(acl)
        schemas[name] = dict(owner=owner, acl=list(acl))
    cursor.execute(EXTENSIONS)
    extensions = dict((name, version) for name, version in cursor.fetchall())
    default_privileges = []
    cursor.execute(DEFAULT_PRIVILEGES)
    for role, schema, objtype, acl in cursor.fetchall():
        roles.add(role)
        roles |= _acl_roles(acl)
        default_privileges.append("%s %s %s: %s" % (role, schema or "(all schemas)", objtype, ",".join(acl)))
    cursor.execute(DATABASE_PRIVILEGES)
    database_privileges = [[grantee, privilege, bool(grantable)] for grantee, privilege, grantable in cursor.fetchall()]
    roles |= set(entry[0] for entry in database_privileges if entry[0])
    database_settings = [[role, _recorded(setting)] for role, setting in database_settings_of(cursor)]
    roles |= set(entry[0] for entry in database_settings if entry[0])
    database_locale = database_locale_of(cursor)
    cursor.execute(LARGE_OBJECTS)
    large_objects = dict((owner, int(count)) for owner, count in cursor.fetchall())
    roles |= set(large_objects)
    cursor.execute(DEPENDENT_ROLES)
    roles |= set(row[0] for row in cursor.fetchall())
    leaves = [t for t in tables.values() if t["kind"] == "table"]
    return dict(
        catalog_version=CATALOG_VERSION,
        tables=tables, sequences=sequences, views=views, materialized_views=matviews, functions=functions,
        schemas=schemas, extensions=extensions, default_privileges=default_privileges,
        database_privileges=database_privileges, database_settings=database_settings, database_locale=database_locale,
        large_objects=large_objects,
        roles=sorted(r for r in roles if not _BUILTIN_ROLE.match(r)),
        totals=dict(tables=len(tables), leaf_tables=len(leaves), rows=sum(t["rows"] for t in leaves),
                    sequences=len(sequences), views=len(views), materialized_views=len(matviews),
                    functions=len(functions), schemas=len(schemas), extensions=len(extensions),
                    large_objects=sum(large_objects.values())),
    )


def _row_security(enabled, forced):
    return "%s%s" % ("enabled" if enabled else "disabled", ", forced" if forced else "")


def _definitions(cursor, by_oid):
    """Each relation's indexes, constraints, triggers and policies ({name: definition}, see DEFINITIONS) into its
    entry of ``by_oid`` ({oid: (entry, the fields its kind may have, whether only those it has)}). search_path is
    pg_catalog meanwhile, and set back after, so that every definition names its schemas whatever the session's
    path was."""
    cursor.execute("SELECT current_setting('search_path')")
    path = cursor.fetchone()[0]
    cursor.execute("SELECT set_config('search_path', 'pg_catalog', true)")
    found = dict((oid, dict((field, {}) for field in fields)) for oid, (dummy, fields, dummy) in by_oid.items())
    for field, dummy, query in DEFINITIONS:
        cursor.execute(query)
        for oid, name, definition in cursor.fetchall():
            if field in found.get(oid, ()):
                found[oid][field][name] = definition
    cursor.execute("SELECT set_config('search_path', %(path)s, true)", {"path": path})
    for oid, (entry, dummy, only_when_any) in by_oid.items():
        entry.update((field, names) for field, names in found[oid].items() if names or not only_when_any)


def database_locale_of(cursor, database=None):
    """{encoding, collate, ctype, and where the server has them provider (c libc, i icu, b builtin), locale (the ICU
    or builtin one), icu_rules} of a database (the connected one by default); None when there is no such database."""
    cursor.execute(DATABASE_LOCALE, {"db": database})
    row = cursor.fetchone()
    if not row or not isinstance(row[1], dict):
        return None
    encoding, columns = row
    locale = dict(encoding=encoding, collate=columns.get("datcollate"), ctype=columns.get("datctype"),
                  provider=columns.get("datlocprovider"), locale=columns.get("daticulocale") or columns.get("datlocale"),
                  icu_rules=columns.get("daticurules"))
    return dict((key, value) for key, value in locale.items() if value is not None)


#: CREATE DATABASE's keyword for each locale provider's locale.
_PROVIDER_LOCALE = {"c": ("libc", None), "i": ("icu", "ICU_LOCALE"), "b": ("builtin", "BUILTIN_LOCALE")}


def database_locale_options(locale):
    """[(keyword, value)] that make a new database with ``locale`` (of :func:`database_locale_of`), from template0
    (which alone may be copied into another encoding or locale): keywords from a fixed list, values for literals.
    [] for an unknown (None or empty) locale; ValueError for a provider this module does not know."""
    if not locale:
        return []
    options = [("TEMPLATE", "template0"), ("ENCODING", locale["encoding"])]
    options += [(keyword, locale[key]) for keyword, key in (("LC_COLLATE", "collate"), ("LC_CTYPE", "ctype")) if locale.get(key)]
    provider = locale.get("provider")
    if provider:
        if provider not in _PROVIDER_LOCALE:
            raise ValueError("a database locale provider this module does not know: %r" % provider)
        name, keyword = _PROVIDER_LOCALE[provider]
        options.append(("LOCALE_PROVIDER", name))
        if keyword and locale.get("locale"):
            options.append((keyword, locale["locale"]))
        if locale.get("icu_rules"):
            options.append(("ICU_RULES", locale["icu_rules"]))
    return options


def locale_words(locale):
    """A database locale (of :func:`database_locale_of`) in words, for a message: "encoding UTF8, collate de_DE.UTF-8,
    ctype de_DE.UTF-8, provider icu, locale de-DE"."""
    names = dict(c="libc", i="icu", b="builtin")
    words = []
    for key in ("encoding", "collate", "ctype", "provider", "locale", "icu_rules"):
        if locale.get(key):
            words.append("%s %s" % (key, names.get(locale[key], locale[key]) if key == "provider" else locale[key]))
    return ", ".join(words)


#: What to do when the server cannot make a database in the backup's locale: said after the server's own error.
LOCALE_MISSING_HINT = ("the backup's database was made in that encoding and locale, which pg_dump does not carry; a copy "
                       "in another one would sort and compare text differently. Make the locale available to this "
                       "server (locale -a lists the host's; locale-gen or the distribution's locales package adds one), "
                       "then run again")


def _recorded(setting):
    """A setting as the manifest records it: name=value, or the name alone when it may hold a secret (by its name,
    or by its value: a URL with a password, a connection string's password=)."""
    name, dummy, value = setting.partition("=")
    return name if SECRET_SETTING.search(name) or SECRET_VALUE.search(value) else setting


def database_settings_of(cursor, database=None):
    """[role, "name=value"] of a database's settings (the connected one by default), sorted; role '' is the
    database's own. Values as the server keeps them: callers decide what may be shown."""
    cursor.execute(DATABASE_SETTINGS, {"db": database})
    # sorted: the server keeps them in the order they were first set
    return sorted([role, setting] for role, config in cursor.fetchall() for setting in config or [])


def _count(cursor, sql, schema, name):
    # ONLY: a table's own rows (an inheritance child's rows are its own table's).
    try:
        cursor.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(_ident(sql, schema, name)))
    except Exception as exc:  # the driver's InsufficientPrivilege
        if "row-level security" not in str(exc):
            raise
        raise ValueError("the rows of table %s cannot all be counted: row level security hides some of them from the "
                         "connecting role (%s); connect as a superuser, a role with BYPASSRLS, or the table's owner "
                         "without FORCE ROW LEVEL SECURITY" % (object_key(schema, name), str(exc).strip().splitlines()[0]))
    return int(cursor.fetchone()[0])


def _descends(tables, key, ancestor):
    seen = set()
    parent = tables[key].get("parent")
    while parent and parent not in seen:
        if parent == ancestor:
            return True
        seen.add(parent)
        parent = tables.get(parent, {}).get("parent")
    return False


# --- comparing a restored copy with the manifest --------------------------------------------------------------

def check(name, kind, expected, actual, ok=None):
    return dict(name=name, kind=kind, expected=expected, actual=actual, ok=(expected == actual) if ok is None else ok)


def _sequence_value(seq):
    return "%s%s" % (seq["last_value"], "" if seq["is_called"] else " (not called)")


def _table_kind(table):
    return "%s%s" % (table["kind"], " of " + table["parent"] if table.get("parent") else "")


def _within(expected, actual, tolerance_pct):
    if expected is None or actual is None:
        return expected == actual
    # abs(): a descending sequence's value is negative, and so would its allowance be
    return abs(int(actual) - int(expected)) <= abs(int(expected)) * float(tolerance_pct) / 100


def _compare_definitions(checks, label, key, want, got):
    """One check per index, constraint, trigger and policy of the relation, and its row level security, for what the
    manifest recorded (a manifest from before they were recorded has none to compare)."""
    if "row_security" in want:
        checks.append(check("row level security of %s %s" % (label, key), "row_security", want["row_security"],
                            got.get("row_security")))
    for field, noun, dummy in DEFINITIONS:
        if field not in want:
            continue
        want_defs, got_defs = want[field] or {}, got.get(field) or {}
        for name in sorted(set(want_defs) | set(got_defs)):
            checks.append(check("%s %s on %s %s" % (noun, name, label, key), noun,
                                want_defs.get(name, "absent (not in the manifest)"), got_defs.get(name, "missing")))


def _objects(checks, label, kind, expected, actual, fields):
    """Presence, owner and grants (and ``fields``) of each object; objects the manifest does not list fail too."""
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key), actual.get(key)
        if want is None:
            checks.append(check("%s %s" % (label, key), kind, "absent (not in the manifest)", "present", ok=False))
            continue
        checks.append(check("%s %s" % (label, key), kind, "present", "missing" if got is None else "present"))
        if got is None:
            continue
        for field in fields:
            checks.append(check("%s %s %s" % (label, key, field), kind, want.get(field), got.get(field)))
        checks.append(check("owner of %s %s" % (label, key), "owner", want.get("owner"), got.get("owner")))
        checks.append(check("grants on %s %s" % (label, key), "grant", want.get("acl"), got.get("acl")))
        _compare_definitions(checks, label, key, want, got)


#: The public schema of a new database (PostgreSQL 15's template1): what a restored copy of a database that had
#: dropped its public schema holds, as pg_dump never drops it.
NEW_DATABASE_PUBLIC = dict(owner="pg_database_owner",
                           acl=["=U/pg_database_owner", "pg_database_owner=UC/pg_database_owner"])


def compare(expected, actual, tolerance_pct=0):
    """Checks ({name, kind, expected, actual, ok}) of the catalog ``actual`` (a restored copy) against
    ``expected`` (the manifest's), each difference by name. Row counts and sequence values may differ by
    ``tolerance_pct`` percent (a dump and its manifest are two snapshots of a live database)."""
    checks = []
    want_tables, got_tables = expected.get("tables", {}), actual.get("tables", {})
    for key in sorted(set(want_tables) | set(got_tables)):
        want, got = want_tables.get(key), got_tables.get(key)
        if want is None:
            checks.append(check("table " + key, "table", "absent (not in the manifest)", "present", ok=False))
            continue
        if got is None:
            checks.append(check("table " + key, "table", _table_kind(want), "missing", ok=False))
            continue
        checks.append(check("table " + key, "table", _table_kind(want), _table_kind(got)))
        if "rows" in want:
            checks.append(dict(check("rows " + key, "row_count", want["rows"], got.get("rows"),
                                     ok=_within(want["rows"], got.get("rows"), tolerance_pct)),
                               tolerance_pct=float(tolerance_pct)))
        checks.append(check("owner of table " + key, "owner", want.get("owner"), got.get("owner")))
        checks.append(check("grants on table " + key, "grant", want.get("acl"), got.get("acl")))
        _compare_definitions(checks, "table", key, want, got)
        if want.get("column_acl") or got.get("column_acl"):
            checks.append(check("column grants on table " + key, "grant", want.get("column_acl", []), got.get("column_acl", [])))
    want_seq, got_seq = expected.get("sequences", {}), actual.get("sequences", {})
    for key in sorted(set(want_seq) | set(got_seq)):
        want, got = want_seq.get(key), got_seq.get(key)
        if want is None or got is None:
            checks.append(check("sequence " + key, "sequence", "present" if want else "absent (not in the manifest)",
                                "present" if got else "missing", ok=False))
            continue
        checks.append(check("sequence " + key, "sequence", _sequence_value(want), _sequence_value(got),
                            ok=want["is_called"] == got["is_called"] and _within(want["last_value"], got["last_value"], tolerance_pct)))
        checks.append(check("owner of sequence " + key, "owner", want.get("owner"), got.get("owner")))
        checks.append(check("grants on sequence " + key, "grant", want.get("acl"), got.get("acl")))
    _objects(checks, "view", "view", expected.get("views", {}), actual.get("views", {}), [])
    want_mv, got_mv = expected.get("materialized_views", {}), actual.get("materialized_views", {})
    _objects(checks, "materialized view", "materialized_view", want_mv, got_mv, ["populated"])
    for key in sorted(set(want_mv) & set(got_mv)):
        checks.append(dict(check("rows " + key, "row_count", want_mv[key].get("rows"), got_mv[key].get("rows"),
                                 ok=_within(want_mv[key].get("rows"), got_mv[key].get("rows"), tolerance_pct)),
                           tolerance_pct=float(tolerance_pct)))
    _objects(checks, "function", "function", expected.get("functions", {}), actual.get("functions", {}), ["kind"])
    want_schemas, got_schemas = expected.get("schemas", {}), dict(actual.get("schemas", {}))
    if want_schemas and "public" not in want_schemas and got_schemas.get("public") == NEW_DATABASE_PUBLIC:
        # The source had dropped its public schema; pg_dump does not drop it again, so every new database (the
        # restored copy too) has it as CREATE DATABASE made it. Anything in it is still checked object by object.
        del got_schemas["public"]
        checks.append(check("schema public", "schema", "absent, or as a new database has it", "as a new database has it",
                            ok=True))
    _objects(checks, "schema", "schema", want_schemas, got_schemas, [])
    want_ext, got_ext = expected.get("extensions", {}), actual.get("extensions", {})
    for name in sorted(set(want_ext) | set(got_ext)):
        checks.append(check("extension " + name, "extension", want_ext.get(name, "absent (not in the manifest)"),
                            got_ext.get(name, "missing")))
    checks.append(check("default privileges", "grant", sorted(expected.get("default_privileges", [])),
                        sorted(actual.get("default_privileges", []))))
    # A manifest written before the locale was recorded has none to compare.
    if expected.get("database_locale"):
        checks.append(check("database encoding and locale", "database", expected["database_locale"],
                            actual.get("database_locale")))
    # A manifest written before large objects were recorded has none to compare.
    if "large_objects" in expected:
        want_lo, got_lo = expected["large_objects"], actual.get("large_objects", {})
        want_count, got_count = sum(want_lo.values()), sum(got_lo.values())
        checks.append(dict(check("large objects", "row_count", want_count, got_count,
                                 ok=_within(want_count, got_count, tolerance_pct)),
                           tolerance_pct=float(tolerance_pct)))
        checks.append(check("owners of large objects", "owner", want_lo, got_lo))
    return checks


def compared(expected, actual):
    """How much was compared: tables and rows of the manifest that the copy was checked against."""
    tables = expected.get("tables", {})
    leaves = [t for t in tables.values() if t.get("kind") == "table"]
    return dict(tables=len(tables), leaf_tables=len(leaves), rows=sum(t.get("rows") or 0 for t in leaves),
                rows_found=sum(t.get("rows") or 0 for t in actual.get("tables", {}).values() if t.get("kind") == "table"),
                sequences=len(expected.get("sequences", {})), views=len(expected.get("views", {})),
                materialized_views=len(expected.get("materialized_views", {})),
                functions=len(expected.get("functions", {})), extensions=len(expected.get("extensions", {})),
                large_objects=sum(expected.get("large_objects", {}).values()))


# --- the database's own settings ---------------------------------------------------------------------------

#: Settings whose value is a list of names that the server stores quoted (pg_dump's GUC_LIST_QUOTE set): set
#: again as one literal, the whole list would become one quoted name.
LIST_SETTINGS = frozenset(["search_path", "temp_tablespaces", "session_preload_libraries",
                           "shared_preload_libraries", "local_preload_libraries"])
_SETTING_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*\Z")


def split_setting_list(value):
    """The elements of a stored list setting (``"$user", public``): comma-separated, each either a plain word or
    double-quoted with "" for a quote. ValueError on anything else."""
    items, i, n = [], 0, len(value)
    while True:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            if items:
                raise ValueError("a list that ends in a comma: %r" % value)
            return items
        if value[i] == '"':
            item, i = [], i + 1
            while True:
                end = value.find('"', i)
                if end < 0:
                    raise ValueError("an unterminated quote: %r" % value)
                item.append(value[i:end])
                if value[end + 1:end + 2] == '"':
                    item.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            items.append("".join(item))
        else:
            start = i
            while i < n and value[i] != "," and not value[i].isspace():
                i += 1
            if i == start:
                raise ValueError("an empty element in a list setting: %r" % value)
            items.append(value[start:i])
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            return items
        if value[i] != ",":
            raise ValueError("a list setting that is not comma-separated: %r" % value)
        i += 1


def setting_statement(sql, database, role, setting):
    """``ALTER DATABASE <database> SET name = value`` (or ``ALTER ROLE <role> IN DATABASE ...``) for one stored
    ``name=value``, composed with the driver's sql module: the name as identifiers, the value as literals.
    ValueError for a setting that is not of that form."""
    name, sep, value = setting.partition("=")
    if not sep or not _SETTING_NAME.match(name):
        raise ValueError("a database setting that is not name=value: %r" % setting)
    values = (split_setting_list(value) or [""]) if name.lower() in LIST_SETTINGS else [value]
    target = sql.SQL("ALTER DATABASE {}").format(sql.Identifier(database))
    if role:
        target = sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), sql.Identifier(database))
    return sql.SQL("{} SET {} = {}").format(target, sql.Identifier(*name.split(".")),
                                            sql.SQL(", ").join(sql.Literal(v) for v in values))


# --- the roles a restore needs -----------------------------------------------------------------------------

#: Attributes a saved role may be created with; SUPERUSER, REPLICATION and BYPASSRLS are refused, not copied.
_SAFE_ATTRIBUTE = re.compile(
    r"\A(NO)?(INHERIT|LOGIN|CREATEDB|CREATEROLE)\Z|\ANO(SUPERUSER|REPLICATION|BYPASSRLS)\Z")
_ROLE_NAME = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_CREATE = re.compile(r"\ACREATE ROLE (%s);\Z" % _ROLE_NAME)
_ALTER = re.compile(r"\AALTER ROLE (%s) WITH (.*);\Z" % _ROLE_NAME)
#: From PostgreSQL 16 pg_dumpall writes a membership's options too: WITH ADMIN OPTION, INHERIT TRUE, SET FALSE.
_GRANT_OPTION = r"(?:ADMIN OPTION|(?:ADMIN|INHERIT|SET) (?:TRUE|FALSE))"
_GRANT = re.compile(r"\AGRANT (%s) TO (%s)(?: WITH %s(?:, %s)*)?(?: GRANTED BY %s)?;\Z"
                    % (_ROLE_NAME, _ROLE_NAME, _GRANT_OPTION, _GRANT_OPTION, _ROLE_NAME))
#: Of the roles named, those a membership in would give what a refused attribute gives: a superuser, replication or
#: bypassrls role (SET ROLE to it), or one that runs the server's programs or reads or writes its files, directly
#: or through the roles they are members of.
_POWERFUL_GROUPS = """
SELECT g.rolname FROM pg_roles g
 WHERE g.rolname = ANY(%s)
   AND EXISTS (SELECT 1 FROM pg_roles r
                WHERE (r.rolsuper OR r.rolreplication OR r.rolbypassrls
                       OR r.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
                  AND pg_has_role(g.oid, r.oid, 'MEMBER'))
 ORDER BY 1
"""
_ATTR_TOKENS = re.compile(r"CONNECTION LIMIT -?[0-9]+|PASSWORD '[^']*'|VALID UNTIL '[^']*'|[A-Z]+")


def _unquote(name):
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def saved_roles(text):
    """{role: {"attributes": [...], "member_of": [...]}} from ``pg_dumpall --roles-only`` output. Only plain
    CREATE ROLE / ALTER ROLE ... WITH / GRANT role TO role lines are read; anything else is ignored, so the
    file is never run as SQL."""
    roles = {}
    for line in text.splitlines():
        line = line.strip()
        match = _CREATE.match(line)
        if match:
            roles.setdefault(_unquote(match.group(1)), dict(attributes=[], member_of=[]))
            continue
        match = _ALTER.match(line)
        if match:
            entry = roles.setdefault(_unquote(match.group(1)), dict(attributes=[], member_of=[]))
            entry["attributes"] = _ATTR_TOKENS.findall(match.group(2))
            continue
        match = _GRANT.match(line)
        if match:
            entry = roles.setdefault(_unquote(match.group(2)), dict(attributes=[], member_of=[]))
            entry["member_of"].append(_unquote(match.group(1)))
    return roles


def role_statements(sql, name, saved):
    """The statements that create role ``name`` as saved (attributes checked one by one), or ValueError naming
    what is refused."""
    attributes = []
    for token in saved.get("attributes", []):
        if _SAFE_ATTRIBUTE.match(token) or token.startswith(("CONNECTION LIMIT ", "PASSWORD '", "VALID UNTIL '")):
            attributes.append(token)
        else:
            raise ValueError("the saved role %s has attribute %s, which a restore does not grant: create the role by "
                             "hand, then restore again" % (name, token))
    statements = [sql.SQL("CREATE ROLE {}").format(sql.Identifier(name))]
    if attributes:
        # Each token matched one of the fixed forms above; a quote cannot end a PASSWORD/VALID UNTIL literal early.
        statements.append(sql.SQL("ALTER ROLE {} WITH " + " ".join(a.replace("{", "{{").replace("}", "}}") for a in attributes))
                          .format(sql.Identifier(name)))
    return statements


def missing_roles(cursor, names):
    """Those of ``names`` that do not exist in the connected cluster."""
    if not names:
        return []
    cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(names),))
    present = set(row[0] for row in cursor.fetchall())
    return sorted(set(names) - present)


def ensure_roles(cursor, sql, needed, saved_text, create):
    """Make sure every role of ``needed`` (the manifest's list) exists. Returns the roles created. Raises
    ValueError naming the missing roles when ``create`` is false or the saved roles lack one, before anything is
    created."""
    missing = missing_roles(cursor, needed)
    if not missing:
        return []
    if not create:
        raise ValueError("the backup needs roles that this server lacks: %s (create them, or let the restore create "
                         "them from the set's saved roles)" % ", ".join(missing))
    saved = saved_roles(saved_text or "")
    unsaved = [name for name in missing if name not in saved]
    if unsaved:
        raise ValueError("the backup needs roles that this server lacks and the set did not save: %s" % ", ".join(unsaved))
    plan = [(name, role_statements(sql, name, saved[name])) for name in missing]  # refuses before creating any
    groups = sorted(set(group for name in missing for group in saved[name].get("member_of", [])) - set(missing))
    if groups:
        cursor.execute(_POWERFUL_GROUPS, (groups,))
        powerful = set(row[0] for row in cursor.fetchall())
        granted = ["%s in %s" % (name, group) for name in missing for group in saved[name].get("member_of", [])
                   if group in powerful]
        if granted:
            raise ValueError("the saved roles make a role a member of a superuser, replication or bypassrls role, or of "
                             "one that runs the server's programs or reads or writes its files, which a restore does not "
                             "grant: %s; create the role by hand, then restore again" % ", ".join(granted))
    for dummy, statements in plan:
        for statement in statements:
            cursor.execute(statement)
    for name in missing:  # memberships once every role exists; only the created roles' own
        for group in saved[name].get("member_of", []):
            if not missing_roles(cursor, [group]):
                cursor.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name)))
    return missing
