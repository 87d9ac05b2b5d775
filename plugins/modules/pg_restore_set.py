#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_restore_set
short_description: Restore a PostgreSQL dump beside a live database, check it, and swap it in by renaming
description:
  - Restores the dump O(path) into a scratch database C(<name>_restoring), counts the rows of the tables in
    O(expected_row_counts) and compares them, then swaps the copy in with two renames in one transaction. The
    database it replaces is kept as C(<name>_before_<stamp>) (O(keep_previous)) or dropped.
  - A database that holds data (a table with at least one row) is replaced only when O(confirm) equals its name.
  - Names never reach a shell or an SQL string as text. O(name) and O(owner) (or the owner of the database it
    replaces) must be PostgreSQL identifiers or hold C(-) after their first character (C(my-app), C(app-owner)),
    that is C([A-Za-z_][A-Za-z0-9_$-]*), of at most 63 bytes. A name too long for C(_restoring) or
    C(_before_YYYYmmddHHMMSS) to fit PostgreSQL's 63 bytes keeps as much of its start as fits, then C(_) and six hex
    digits of its SHA-256, before the suffix (RV(restoring), RV(previous)).
    SQL quotes them as identifiers and C(pg_restore) and C(psql) get them as separate arguments.
  - Owners and grants are restored (O(privileges)). The database's own privileges (C(GRANT CONNECT ON DATABASE),
    a C(REVOKE) from C(PUBLIC)), which C(pg_dump) of one database does not carry, are copied from the database it
    replaces to the restored copy before the swap, or, into a new database, taken from O(expected_catalog)'s
    C(database_privileges) (RV(database_privileges)). Its settings (C(ALTER DATABASE ... SET),
    C(ALTER ROLE ... IN DATABASE ... SET)), which the server keeps by the database's oid, go with them the same way
    (C(database_settings), RV(database_settings)); a manifest records a secret-looking setting's name only (a
    secret-looking name, or a value holding a password), so a new database gets no value for it and a warning
    names it.
  - The restored copy is created from C(template0) in the encoding, collation and locale provider of
    O(expected_catalog)'s C(database_locale) (or, for a manifest without one, of the database it replaces), which
    C(pg_dump) does not carry either; with neither, as C(CREATE DATABASE) makes one.
  - Roles the dump needs (O(required_roles)) that the server lacks
    are first created from the set's saved roles (O(roles_file)), or, with O(create_roles=false), the module stops
    before touching anything, naming them.
  - With O(expected_catalog) (the manifest's C(catalog)), the restored copy is compared with the whole database as
    the backup described it (tables, row counts, indexes, constraints, triggers, row level security and its
    policies, sequences, views, functions, extensions, owners, grants) before
    the swap, and a difference, named, stops it (O(check_row_counts)).
  - Every failure after the scratch database is created drops it again, and every failure after the live
    database stops accepting connections lets them in again, so a failed run leaves the live database as it was.
  - In check mode, validates the options and reports the target's state (RV(target)) and changes nothing.
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  name:
    description: The database to restore into (replaced when it exists, created when not).
    type: str
    required: true
  path:
    description:
      - The dump. A file for the C(custom) and C(plain) formats, a directory for C(directory).
    type: path
    required: true
  format:
    description: The dump's format, as the backup's manifest records it (C(pg_dump --format)).
    type: str
    choices: [custom, directory, plain]
    default: custom
  compression:
    description:
      - How a C(plain) dump is compressed (decompressed into C(psql)). The custom and directory formats carry
        their compression inside, which C(pg_restore) reads, so for them this is only recorded and ignored.
    type: str
    choices: [none, gzip, zstd]
    default: none
  owner:
    description:
      - The owner of the restored database, and, with O(privileges=false), the role the dump is restored as.
      - Empty for the owner of the database it replaces, else C(postgres).
    type: str
    default: ""
  jobs:
    description: Parallel jobs of C(pg_restore) (custom and directory formats).
    type: int
    default: 2
  confirm:
    description:
      - A database that holds data (a table with a row, or a large object) is replaced only when this equals its name.
      - Its tables are read with row level security off; one the connecting role cannot read stops the restore.
    type: str
    default: ""
  keep_previous:
    description: Keep the replaced database as C(<name>_before_<stamp>); else drop it after the swap.
    type: bool
    default: true
  expected_row_counts:
    description:
      - Row counts per table (C(table) or C(schema.table); a name holding a C(.) or a C(") in double quotes, as SQL
        writes it (C(crm."order.items"))) that the restored copy must hold, as the backup's
        manifest records them. The copy's counts of these tables are returned in RV(row_counts).
    type: dict
    default: {}
  check_row_counts:
    description: Refuse to swap in a copy whose counts differ from O(expected_row_counts), or that differs from O(expected_catalog).
    type: bool
    default: true
  expected_catalog:
    description: The manifest's description of the whole database (its C(catalog)); empty to check only O(expected_row_counts).
    type: dict
    default: {}
  privileges:
    description:
      - Restore the dump's owners and grants (no C(--no-owner), C(--no-privileges)); needs a superuser connection.
      - With C(false), the old way, everything is owned by O(owner) and no grant is restored.
    type: bool
    default: true
  required_roles:
    description: The roles the dump needs (the manifest's C(catalog.roles)); only these are ever created.
    type: list
    elements: str
    default: []
  roles_file:
    description: The set's saved roles (C(pg_dumpall --roles-only) output); empty when the set has none.
    type: path
    default: ""
  create_roles:
    description:
      - Create the roles of O(required_roles) the server lacks from O(roles_file), before anything else.
      - With C(false), or when a needed role was not saved, the module fails before touching anything, naming them.
      - A saved role with C(SUPERUSER), C(REPLICATION) or C(BYPASSRLS), or one made a member of a role that has them
        (or of C(pg_execute_server_program), C(pg_read_server_files), C(pg_write_server_files)), is refused the same
        way (create it by hand).
    type: bool
    default: true
  backup_id:
    description: The backup's id, only to name it in messages.
    type: str
    default: ""
  maintenance_db:
    description: The database the module connects to to create, rename and drop databases.
    type: str
    default: postgres
  host:
    description: The server's host name; empty for the Unix socket (peer authentication as the OS user).
    type: str
    default: ""
  port:
    description: The server's port.
    type: int
    default: 5432
  user:
    description: The role to connect as; empty for the OS user's name.
    type: str
    default: ""
  password:
    description: The password, when the server asks for one.
    type: str
    default: ""
  unix_socket:
    description: The directory of the server's Unix socket, when not the default.
    type: path
    default: ""
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    details: Validates, reads the target's state and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - psycopg2 (python3-psycopg2) or psycopg 3 on the host
  - pg_restore and psql (postgresql-client) on the host
notes:
  - Run it as the OS user that owns the cluster (C(become_user=postgres)) to use peer authentication; C(pg_restore)
    and C(psql) run as that user too, with C(PGPASSWORD) in their environment when O(password) is set.
  - The swap ends the live database's sessions (the application reconnects after the rename); it is tried five
    times, one second apart.
"""

EXAMPLES = r"""
- name: Restore the backup's dump into sample_app, replacing the live one
  shipshape.ops.pg_restore_set:
    name: sample_app
    path: /var/backups/shipshape/20260101T000000Z/postgres.dump
    format: custom
    confirm: sample_app
    expected_row_counts:
      notes: 2
  become: true
  become_user: postgres

- name: What would a restore replace (check mode reads, changes nothing)
  shipshape.ops.pg_restore_set:
    name: sample_app
    path: /var/backups/shipshape/20260101T000000Z/postgres.dump
  check_mode: true
  become: true
  become_user: postgres
  register: target
"""

RETURN = r"""
target:
  description: The target database before the restore.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether it existed.
      type: bool
    owner:
      description: Its owner (empty when it did not exist).
      type: str
    tables_with_rows:
      description: How many of its tables hold at least one row.
      type: int
    privileges:
      description: Its database-level privileges other than its owner's, as C([grantee, privilege, grantable]) (grantee C("") for PUBLIC).
      type: list
      elements: list
    settings:
      description: Its settings' names, never their values, as C([role, name]) (role C("") for the database's own).
      type: list
      elements: list
  sample: {"exists": true, "owner": "app", "tables_with_rows": 3, "privileges": [["", "CONNECT", false]],
           "settings": [["", "search_path"]]}
database:
  description: The database restored into (O(name)).
  returned: always
  type: str
  sample: sample_app
restoring:
  description: The scratch database the dump is restored into before the swap.
  returned: always
  type: str
  sample: sample_app_restoring
previous:
  description: The name the replaced database is kept as (empty when there was none to replace, or when dropped).
  returned: always
  type: str
  sample: sample_app_before_20260101120000
keep_as:
  description:
    - With O(keep_previous), the name a replaced database is kept as, with C(<time>) for the stamp of the swap
      (C(<name>_before_<time>), a long name shortened as the swap shortens it), for messages written before the
      restore; empty without O(keep_previous).
  returned: always
  type: str
  sample: sample_app_before_<time>
replaced:
  description: What became of the replaced database, its new name or C((dropped)); empty when there was none.
  returned: always
  type: str
  sample: sample_app_before_20260101120000
row_counts:
  description: The restored copy's row counts of the tables of O(expected_row_counts) (empty in check mode).
  returned: always
  type: dict
  sample: {"notes": 2}
owner:
  description: The owner the restored database was given.
  returned: always
  type: str
  sample: app
database_privileges:
  description:
    - The database-level privileges given to the restored copy (the replaced database's, or the manifest's for a new
      database), as C(<grantee>:<privilege>) (C(PUBLIC) for everyone, C(*) after a privilege given with grant
      option). Empty with O(privileges=false) or when a new database's manifest does not record them.
  returned: always
  type: list
  elements: str
  sample: ["PUBLIC:TEMPORARY", "app:CONNECT", "reporting:CONNECT*"]
database_settings:
  description:
    - The names of the settings given to the restored copy (the replaced database's, or the manifest's for a new
      database), after C(<role>:) for a role's setting in this database; never their values, which may be secrets.
      A setting that the manifest recorded without its value (a secret-looking name, or a value holding a password)
      is not set and is named with
      C(" (not restored, no value in the backup)") and in a warning.
    - Empty with O(privileges=false) or when a new database's manifest does not record them.
  returned: always
  type: list
  elements: str
  sample: ["search_path", "reporting:statement_timeout"]
roles_created:
  description: The roles created from the saved roles before the restore.
  returned: always
  type: list
  elements: str
  sample: [reporting]
checks:
  description: The comparisons with O(expected_catalog) that failed (C(name), C(kind), C(expected), C(actual)).
  returned: always
  type: list
  elements: dict
"""

import os
import time
import traceback
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import checksums, pg_catalog, postgres

SWAP_ATTEMPTS = 5


class RestoreFailed(Exception):
    """A step failed; the message says which and why."""


def tail(text, lines=3):
    """The end of a tool's error output, without the SQL it echoes (a dump's SQL may hold passwords)."""
    return postgres.error_tail(text, lines)


def pipe(producer, consumer, env):
    """``producer | consumer`` without a shell (module_utils/postgres.pipe). Returns both CompletedProcess."""
    return postgres.pipe(producer, consumer, env=env)


def validate(p):
    """One message per bad option, in order; an empty list when all are good."""
    errors = []
    error = postgres.database_name_error("name", p["name"])
    if error:
        errors.append(error)
    if p["owner"]:
        error = postgres.role_name_error("owner", p["owner"])
        if error:
            errors.append(error)
    if p["maintenance_db"] == p["name"]:
        errors.append("maintenance_db: %r is the database to restore into; expected another one, such as postgres"
                      % p["maintenance_db"])
    if p["jobs"] < 1:
        errors.append("jobs: %s: expected 1 or more" % p["jobs"])
    for table, count in p["expected_row_counts"].items():
        try:
            postgres.split_table_name(table)
            int(count)
        except (TypeError, ValueError):
            errors.append("expected_row_counts: %r: %r: expected a table or schema.table and a row count" % (table, count))
    for role in p.get("required_roles") or []:
        if not role or len(role.encode("utf-8")) > postgres.MAX_IDENTIFIER_BYTES:
            errors.append("required_roles: %r: expected a role name of 1 to 63 bytes" % (role,))
    return errors


# What GRANT ... ON DATABASE can give (aclexplode's privilege_type); nothing else reaches the SQL.
DATABASE_PRIVILEGES = ("CREATE", "CONNECT", "TEMPORARY")


class Restore(object):
    """The procedure, over an autocommit connection to the maintenance database (``admin``)."""

    def __init__(self, module, admin, now=None):
        self.module = module
        self.p = module.params
        self.admin = admin
        self.name = self.p["name"]
        self.restoring = postgres.derived_name(self.name, postgres.RESTORING_SUFFIX)
        stamp = (now or datetime.now(timezone.utc)).strftime(postgres.BEFORE_STAMP_FORMAT)
        self.before = postgres.before_name(self.name, stamp)
        self.connections_off = False
        self.created = False
        self.swapped = False
        self.failed_checks = []
        self.live_settings = []  # the replaced database's settings with their values, never returned
        self.live_locale = None  # the replaced database's encoding and locale, which the copy is created with
        self.live_large_objects = 0  # how many large objects the replaced database holds

    # --- SQL on the maintenance connection, names as identifiers ---

    def execute(self, query, *names, **kwargs):
        cursor = self.admin.cursor()
        try:
            statement = postgres.sql.SQL(query).format(*[postgres.sql.Identifier(n) for n in names])
            cursor.execute(statement, kwargs.get("args"))
            return cursor.fetchall() if cursor.description else None
        finally:
            cursor.close()

    def inspect(self):
        """{exists, owner, tables_with_rows, privileges} of the target."""
        rows = self.execute("SELECT pg_get_userbyid(datdba), datallowconn FROM pg_database WHERE datname = %(db)s",
                            args={"db": self.name})
        if not rows:
            return dict(exists=False, owner="", tables_with_rows=0, privileges=[], settings=[])
        owner, allowed = rows[0]
        if not allowed:
            raise RestoreFailed(
                "database %s does not accept connections (an earlier restore may have been killed during its swap); "
                "check it, then run ALTER DATABASE %s WITH ALLOW_CONNECTIONS true"
                % (self.name, postgres.sql.Identifier(self.name).as_string(self.admin)))
        conn = postgres.connect_to(self.module, self.name, autocommit=True)
        try:
            cursor = conn.cursor()
            # Every table, from pg_class (information_schema lists only those this role has a privilege on), read
            # with row level security off (a policy would show none of its rows): a table this role cannot read
            # whole is an error, never "empty", so a database with data is never replaced unconfirmed.
            # (for the session: this connection commits each statement, which would end a SET LOCAL's)
            cursor.execute("SELECT set_config('row_security', 'off', false)")
            cursor.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE c.relkind IN ('r', 'p') AND " + pg_catalog.USER_SCHEMAS)
            with_rows = 0
            for schema, table in cursor.fetchall():
                cursor.execute(postgres.sql.SQL("SELECT 1 FROM {} LIMIT 1").format(postgres.sql.Identifier(schema, table)))
                with_rows += 1 if cursor.fetchone() else 0
            # An app may keep its files as large objects, in no table.
            cursor.execute("SELECT count(*) FROM pg_largeobject_metadata")
            self.live_large_objects = int((cursor.fetchone() or [0])[0])
            cursor.close()
        finally:
            conn.close()
        # The live settings' values stay here (they may be secrets); the target, which is returned, names them.
        self.live_settings = self.database_settings(self.name)
        cursor = self.admin.cursor()
        try:
            self.live_locale = pg_catalog.database_locale_of(cursor, self.name)
        finally:
            cursor.close()
        return dict(exists=True, owner=owner, tables_with_rows=with_rows, privileges=self.database_privileges(self.name),
                    settings=[[role, setting.partition("=")[0]] for role, setting in self.live_settings])

    def database_privileges(self, name):
        """[grantee, privilege, grantable] of a database's ACL (its default when none was ever set); grantee '' is
        PUBLIC. The owner's own privileges are left out: they come with ownership."""
        rows = self.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable "
            "FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
            "WHERE d.datname = %(db)s AND a.grantee <> d.datdba ORDER BY 1, 2", args={"db": name})
        return [list(row) for row in rows or []]

    def copy_database_privileges(self, privileges):
        """The replaced database's privileges onto the restored copy: everything from PUBLIC and the grantees
        first (a new database lets PUBLIC connect), then each grant again. Returns them as grantee:privilege."""
        sql = postgres.sql
        revoke_from = {entry[0] for entry in privileges + self.database_privileges(self.restoring)}
        for grantee in sorted(revoke_from):
            who = sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC")
            self.run(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(self.restoring), who))
        shown = []
        for grantee, privilege, grantable in privileges:
            if privilege not in DATABASE_PRIVILEGES:
                raise RestoreFailed("database %s has a privilege this module does not know: %r" % (self.name, privilege))
            who = sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC")
            statement = sql.SQL("GRANT {} ON DATABASE {} TO {}" + (" WITH GRANT OPTION" if grantable else "")).format(
                sql.SQL(privilege), sql.Identifier(self.restoring), who)
            self.run(statement)
            shown.append("%s:%s%s" % (grantee or "PUBLIC", privilege, "*" if grantable else ""))
        return shown

    def database_settings(self, name):
        """[role, "name=value"] of a database's settings; role '' is the database's own."""
        cursor = self.admin.cursor()
        try:
            return pg_catalog.database_settings_of(cursor, name)
        finally:
            cursor.close()

    def copy_database_settings(self, settings):
        """The settings onto the restored copy (a new database has none). Returns their names as [role:]name: values
        may be secrets. A manifest's setting recorded without its value is named in a warning."""
        shown = []
        for role, setting in settings:
            name = "%s%s" % (role + ":" if role else "", setting.partition("=")[0])
            if "=" not in setting:
                self.module.warn("database %s: the backup recorded setting %s without its value (it may be a secret), so "
                                 "the restored database does not have it: set it again with ALTER %s"
                                 % (self.name, name, "ROLE %s IN DATABASE %s SET" % (role, self.name) if role
                                    else "DATABASE %s SET" % self.name))
                shown.append(name + " (not restored, no value in the backup)")
                continue
            try:
                statement = pg_catalog.setting_statement(postgres.sql, self.restoring, role, setting)
            except ValueError as exc:
                raise RestoreFailed("database %s: %s" % (self.name, exc))
            self.run(statement)
            shown.append(name)
        return shown

    def run(self, statement):
        """A statement composed with psycopg's sql (identifiers and keywords only, no text)."""
        cursor = self.admin.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    # --- the steps ---

    def ensure_roles(self):
        """The roles the dump needs, created from the saved roles when missing (all or none, in one transaction),
        or RestoreFailed naming them; runs before anything else is touched."""
        if not self.p["privileges"] or not self.p["required_roles"]:
            return []
        saved = ""
        if self.p["roles_file"]:
            # A regular file only: a FIFO put there after the check in main() would block for ever.
            try:
                with checksums.open_regular(self.p["roles_file"], "r", encoding="utf-8", errors="surrogateescape") as fh:
                    saved = fh.read()
            except (checksums.Refused, OSError) as exc:
                raise RestoreFailed("roles_file: %s cannot be read: %s (expected the set's saved roles, a regular file)"
                                    % (self.p["roles_file"], getattr(exc, "strerror", None) or exc))
        cursor = self.admin.cursor()
        try:
            if self.module.check_mode:
                missing = pg_catalog.missing_roles(cursor, self.p["required_roles"])
                if missing and not self.p["create_roles"]:
                    raise ValueError("the backup needs roles that this server lacks: %s" % ", ".join(missing))
                return missing
            self.admin.autocommit = False
            created = pg_catalog.ensure_roles(cursor, postgres.sql, self.p["required_roles"], saved, self.p["create_roles"])
            self.admin.commit()
            return created
        except ValueError as exc:
            raise RestoreFailed(str(exc))
        finally:
            cursor.close()
            if not self.admin.autocommit:
                self.admin.rollback()
                self.admin.autocommit = True

    def create_scratch(self, owner, locale=None):
        """The scratch database, with ``locale`` (encoding, collation, provider: pg_dump does not carry them) when
        known, else as CREATE DATABASE makes one."""
        sql = postgres.sql
        try:
            options = pg_catalog.database_locale_options(locale)
        except ValueError as exc:
            raise RestoreFailed("database %s: %s" % (self.name, exc))
        self.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.restoring)
        self.created = True
        statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.restoring), sql.Identifier(owner))
        for keyword, value in options:  # keywords from pg_catalog's fixed list, values as literals
            statement = sql.SQL("{} {} {}").format(statement, sql.SQL(keyword), sql.Literal(value))
        try:
            self.run(statement)
        except Exception as exc:
            if not options:
                raise
            # Most often a restore host that lacks the backup's locale (a new host in a disaster recovery).
            raise RestoreFailed("the copy %s could not be created with %s: %s; %s" % (
                self.restoring, pg_catalog.locale_words(locale), str(exc).strip(), pg_catalog.LOCALE_MISSING_HINT))

    def env(self):
        env = {}
        if self.p["password"]:
            env["PGPASSWORD"] = self.p["password"]
        return env

    def connection_args(self):
        args = ["-p", str(self.p["port"])]
        if self.p["host"] or self.p["unix_socket"]:
            args += ["-h", self.p["host"] or self.p["unix_socket"]]
        if self.p["user"]:
            args += ["-U", self.p["user"]]
        return args

    def load(self, owner):
        """pg_restore (custom, directory) or psql (plain, decompressed by gzip or zstd), as argv lists."""
        path = self.p["path"]
        if self.p["format"] in ("custom", "directory"):
            # With privileges the dump's own owners and grants are restored (as the connecting superuser).
            as_owner = [] if self.p["privileges"] else ["--no-owner", "--no-privileges", "--role", owner]
            argv = (["pg_restore"] + self.connection_args() + ["--exit-on-error"] + as_owner
                    + ["--jobs", str(self.p["jobs"]), "--dbname", self.restoring, "--", path])
            rc, out, err = self.module.run_command(argv, environ_update=self.env())
            if rc != 0:
                raise RestoreFailed("pg_restore exited %s: %s" % (rc, tail(err or out)))
            return
        role = postgres.sql.SQL("SET ROLE {}").format(postgres.sql.Identifier(owner)).as_string(self.admin)
        set_role = [] if self.p["privileges"] else ["-c", role]
        psql = (["psql"] + self.connection_args()
                + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", self.restoring] + set_role + ["-f"])
        if self.p["compression"] == "none":
            rc, out, err = self.module.run_command(psql + [path], environ_update=self.env())
            if rc != 0:
                raise RestoreFailed("psql exited %s: %s" % (rc, tail(err)))
            return
        decompress = {"gzip": ["gzip", "-dc", "--", path], "zstd": ["zstd", "-dcq", "--", path]}[self.p["compression"]]
        source, sink = pipe(decompress, psql + ["-"], dict(os.environ, **self.env()))
        if source.returncode != 0:
            raise RestoreFailed("%s exited %s: %s" % (decompress[0], source.returncode, tail(source.stderr.decode("utf-8", "replace"))))
        if sink.returncode != 0:
            raise RestoreFailed("psql exited %s: %s" % (sink.returncode, tail(sink.stderr.decode("utf-8", "replace"))))

    def count(self):
        tables = sorted(self.p["expected_row_counts"])
        catalog = self.p["expected_catalog"]
        if not tables and not catalog:
            return {}
        conn = postgres.connect_to(self.module, self.restoring)
        try:
            cursor = conn.cursor()
            found = postgres.describe(cursor, tables, None, catalog=bool(catalog))
            cursor.close()
            conn.rollback()
        finally:
            conn.close()
        if catalog:
            self.failed_checks = [c for c in pg_catalog.compare(catalog, found["catalog"])
                                  if not c["ok"] and (self.p["privileges"] or c["kind"] not in ("owner", "grant"))]
            if self.p["check_row_counts"] and self.failed_checks:
                raise RestoreFailed("the restored copy differs from the backup's manifest in %d checks: %s"
                                    % (len(self.failed_checks), "; ".join(
                                        "%s: expected %s, got %s" % (c["name"], c["expected"], c["actual"])
                                        for c in self.failed_checks[:10])))
        counts = found["row_counts"]
        expected = dict((t, int(c)) for t, c in self.p["expected_row_counts"].items())
        if self.p["check_row_counts"] and counts != expected:
            raise RestoreFailed("the restored copy does not match the backup: rows %s, manifest %s%s"
                                % (counts, expected, (", tables missing: %s" % ", ".join(found["tables_missing"]))
                                   if found["tables_missing"] else ""))
        return counts

    def swap(self, exists):
        if not exists:
            self.execute("ALTER DATABASE {} RENAME TO {}", self.restoring, self.name)
            self.created = False
            return
        # No new sessions on the live database, then end the ones it has; the app reconnects after the swap.
        self.execute("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", self.name)
        self.connections_off = True
        last_error = None
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            self.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname IN (%(db)s, %(restoring)s) AND pid <> pg_backend_pid()",
                         args={"db": self.name, "restoring": self.restoring})
            try:
                self.admin.autocommit = False
                self.execute("ALTER DATABASE {} RENAME TO {}", self.name, self.before)
                self.execute("ALTER DATABASE {} RENAME TO {}", self.restoring, self.name)
                self.admin.commit()
                break
            except Exception as exc:  # a session came back between the terminate and the rename
                self.admin.rollback()
                last_error = exc
                if attempt < SWAP_ATTEMPTS:
                    time.sleep(1)
            finally:
                self.admin.autocommit = True
        else:
            raise RestoreFailed("the swap failed %d times: %s" % (SWAP_ATTEMPTS, str(last_error).strip()))
        # From here the live name is the restored copy; the old one is <name>_before_<stamp>.
        self.connections_off = False
        self.created = False
        self.swapped = True
        self.execute("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", self.before)
        if not self.p["keep_previous"]:
            self.execute("DROP DATABASE {} WITH (FORCE)", self.before)

    def clean_up(self):
        """After a failure: connections back on, the scratch database dropped. Returns what could not be done."""
        problems = []
        try:
            self.admin.rollback()
        except Exception:  # not in a transaction, or the connection is gone
            pass
        self.admin.autocommit = True
        if self.connections_off or self.swapped:
            # Before the swap the live database has its name; after it, the replaced one is <name>_before_<stamp>.
            name = self.before if self.swapped else self.name
            try:
                self.execute("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", name)
                self.connections_off = False
            except Exception as exc:
                problems.append("connections to %s are still off (%s)" % (name, str(exc).strip()))
        if self.created:
            try:
                self.execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.restoring)
                self.created = False
            except Exception as exc:
                problems.append("%s is left behind (%s)" % (self.restoring, str(exc).strip()))
        return problems


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        path=dict(type="path", required=True),
        format=dict(type="str", choices=["custom", "directory", "plain"], default="custom"),
        compression=dict(type="str", choices=["none", "gzip", "zstd"], default="none"),
        owner=dict(type="str", default=""),
        jobs=dict(type="int", default=2),
        confirm=dict(type="str", default=""),
        keep_previous=dict(type="bool", default=True),
        expected_row_counts=dict(type="dict", default={}),
        check_row_counts=dict(type="bool", default=True),
        expected_catalog=dict(type="dict", default={}),
        privileges=dict(type="bool", default=True),
        required_roles=dict(type="list", elements="str", default=[]),
        roles_file=dict(type="path", default=""),
        create_roles=dict(type="bool", default=True),
        backup_id=dict(type="str", default=""),
        maintenance_db=dict(type="str", default="postgres"),
    )
    connection = postgres.postgres_argument_spec()
    del connection["db"]
    argument_spec.update(connection)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    errors = validate(p)
    if errors:
        module.fail_json(msg=errors[0], errors=errors)

    result = dict(changed=False, database=p["name"], restoring=postgres.derived_name(p["name"], postgres.RESTORING_SUFFIX),
                  previous="", replaced="", keep_as=postgres.before_name_shown(p["name"]) if p["keep_previous"] else "",
                  row_counts={}, owner="", target={}, roles_created=[], checks=[], database_privileges=[],
                  database_settings=[])
    backup = ("backup %s" % p["backup_id"]) if p["backup_id"] else p["path"]
    if not os.path.exists(p["path"]):
        module.fail_json(msg="path: %s does not exist: expected the dump of %s" % (p["path"], backup), **result)

    admin = postgres.connect_to(module, p["maintenance_db"], autocommit=True)
    restore = Restore(module, admin)
    try:
        target = result["target"] = restore.inspect()
        owner = result["owner"] = p["owner"] or target["owner"] or "postgres"
        # The option was checked with the others; the replaced database's owner is a role the server has (any name,
        # "App Owner" too), quoted in SQL and one argv item after --role (which takes it whole, a leading '-' too).
        if not 0 < len(owner.encode("utf-8")) <= postgres.MAX_IDENTIFIER_BYTES or "\0" in owner:
            raise RestoreFailed("owner: %r is not a role name of 1 to %d bytes" % (owner, postgres.MAX_IDENTIFIER_BYTES))
        if (target["tables_with_rows"] or restore.live_large_objects) and p["confirm"] != p["name"]:
            large_objects = (", %d large objects" % restore.live_large_objects) if restore.live_large_objects else ""
            module.fail_json(
                msg="Refusing to replace database '%s': it holds data (%d tables with rows%s). To replace it with %s, "
                    "give confirm=%s (the current one is %s)."
                    % (p["name"], target["tables_with_rows"], large_objects, backup, p["name"],
                       ("kept as " + result["keep_as"]) if result["keep_as"] else "dropped"), **result)
        if p["roles_file"] and not os.path.isfile(p["roles_file"]):
            raise RestoreFailed("roles_file: %s does not exist: expected the saved roles of %s" % (p["roles_file"], backup))
        if module.check_mode:
            restore.ensure_roles()  # only looks: names the missing roles when they may not be created
            result["changed"] = True
            module.exit_json(**result)

        result["roles_created"] = restore.ensure_roles()
        result["changed"] = True
        # The backup's encoding and locale, else the replaced database's: a copy in template1's sorts text differently.
        restore.create_scratch(owner, p["expected_catalog"].get("database_locale") or restore.live_locale)
        restore.load(owner)
        # The live database's own privileges when it is replaced (what its operators set now), else the backup's.
        database_privileges = target["privileges"] if target["exists"] else p["expected_catalog"].get("database_privileges")
        if p["privileges"] and database_privileges is not None:
            result["database_privileges"] = restore.copy_database_privileges(database_privileges)
        # Before the count: a table of expected_row_counts named without its schema is found through the database's
        # search_path, as it was when the manifest counted it.
        database_settings = restore.live_settings if target["exists"] else p["expected_catalog"].get("database_settings")
        if p["privileges"] and database_settings is not None:
            result["database_settings"] = restore.copy_database_settings(database_settings)
        try:
            result["row_counts"] = restore.count()
        finally:
            result["checks"] = restore.failed_checks
        restore.swap(target["exists"])
        if target["exists"]:
            result["previous"] = restore.before if p["keep_previous"] else ""
            result["replaced"] = restore.before if p["keep_previous"] else "(dropped)"
    except Exception as exc:
        if restore.swapped:
            where = "after the swap (the restored copy is live as %s; the replaced one is %s)" % (p["name"], restore.before)
        elif restore.connections_off:
            where = "during the swap; connections to %s are let in again and it keeps its name" % p["name"]
        else:
            where = "before the swap, so the live database is untouched"
        problems = restore.clean_up()
        reason = str(exc).strip() if isinstance(exc, RestoreFailed) else "%s: %s" % (type(exc).__name__, str(exc).strip())
        msg = "Restore of %s into %s failed %s: %s" % (backup, p["name"], where, reason)
        if problems:
            msg += ". Clean-up incomplete: %s" % "; ".join(problems)
        admin.close()
        module.fail_json(msg=msg, exception=traceback.format_exc(), **result)
    admin.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
