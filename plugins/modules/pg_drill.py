#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_drill
short_description: Restore a PostgreSQL backup set into a scratch database, check it, time it and drop it
description:
  - The working part of a restore drill, in one process on the drill host, so that the phases are timed where
    the work happens and the drill adds no round trips to the time it measures.
  - C(checksum) recomputes the sha256 of every part of the set and checks the set's own C(.sha256) files (as
    M(shipshape.ops.backup_set) does, with the same module_utils); a mismatch, or a name in the manifest or a
    C(.sha256) file that leads outside the set, stops the drill before anything is restored.
  - C(restore) creates the scratch database O(db) with C(CREATE DATABASE), which cannot replace an existing
    database, after refusing a name that exists or that is O(source_db), and restores the C(postgres) part into
    it (C(pg_restore -j) for the custom and directory formats, C(psql) for plain SQL, gzip or zstd compressed,
    decompressed by a second process piped in Python, no shell), owners and grants included (O(privileges)).
    When O(catalog) records the database's C(database_locale), which pg_dump does not carry, the scratch database
    is created from C(template0) with that encoding, collation and locale provider. The database's own settings of
    O(catalog) (C(database_settings), such as a C(search_path)), which pg_dump does not carry either, are set on it
    after the restore, so that the revision query and the assertions run as the app's sessions do; one recorded
    without its value (a secret), or of a role the server lacks, is not.
    Roles of O(required_roles) missing on the server are first created from the set's saved roles
    (O(roles_file), O(create_roles)), or the drill stops before anything is created, naming them.
  - C(verify) reads the restored copy in one read-only snapshot (the whole catalog, row counts, schema revision,
    as M(shipshape.ops.pg_backup_manifest) records them), compares it with O(catalog), O(expected_row_counts),
    O(tables) and O(expected_revision), and runs each of O(assertions) in a read-only transaction with C(psql -tA),
    so a value compares as C(psql) prints it. Every comparison is returned in RV(checks), each by name.
  - A manifest that lists no tables (no O(catalog) tables, no O(expected_row_counts), no O(tables)) is a failed
    drill (RV(stopped_at) is C(verify)), as there would be nothing to verify.
  - C(cleanup) drops the scratch database again with O(drop=true), whatever happened before, and only when
    this run created it.
  - The module reports no change (the scratch database exists only while it runs) and does not fail on a failed
    check or phase; it returns the findings and RV(stopped_at), and the caller decides. It fails only on bad
    options.
  - Database work runs as O(os_user) (C(peer) authentication over the Unix socket); the module itself runs as
    root so that it can read backup files of any owner.
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.postgres
options:
  db:
    description: The scratch database to create, restore into, check and drop.
  set_dir:
    description: The backup set's directory; the files of O(parts) are relative to it.
    type: path
    required: true
  parts:
    description:
      - The C(parts) of the set's manifest, each with C(file), C(sha256), and optionally C(sha256_file) (default
        C(file) + C(.sha256)), C(format) (C(custom), C(directory) or C(plain)) and C(compression) (C(gzip),
        C(zstd) or none).
      - The part named C(postgres) is restored; every part is checksummed.
    type: dict
    required: true
  source_db:
    description: The database the backup was taken from; O(db) may never be this name.
    type: str
    required: true
  os_user:
    description: The OS user that runs C(psql), C(pg_restore) and the checks.
    type: str
    default: postgres
  jobs:
    description: Parallel jobs of C(pg_restore) (custom and directory formats).
    type: int
    default: 2
  tables:
    description:
      - Tables that must exist in the restored copy (C(table) or C(schema.table); a name holding a C(.) or a C(") in
        double quotes, as SQL writes it (C(crm."order.items"))), counted too; they add checks to
        those of O(catalog), never replace them.
    type: list
    elements: str
    default: []
  catalog:
    description:
      - The manifest's description of the whole database (C(catalog) of M(shipshape.ops.pg_backup_manifest));
        every table, row count, sequence, view, function, extension, owner and grant of it is checked, and the
        number of large objects (when the manifest records them).
      - Empty for a manifest made before catalogs were recorded.
    type: dict
    default: {}
  expected_row_counts:
    description: Row counts the manifest recorded by table name (its C(row_counts)), each checked.
    type: dict
    default: {}
  expected_revision:
    description: The schema revision the manifest recorded; checked when O(check_revision=true).
    type: str
  check_revision:
    description: Compare the restored copy's revision with O(expected_revision) (C(null) included).
    type: bool
    default: false
  row_count_tolerance:
    description:
      - Allowed difference of row counts, sequence values and the large objects' count, in percent of the manifest's.
    type: float
    default: 0
  privileges:
    description:
      - Restore owners and grants (no C(--no-owner)/C(--no-privileges)), so that the drill can check them.
      - With C(false), the restore runs without them, as it did before, and owner and grant checks are skipped.
    type: bool
    default: true
  required_roles:
    description: Roles the dump needs (the manifest's C(catalog.roles)); only these are ever created.
    type: list
    elements: str
    default: []
  roles_file:
    description: The set's saved roles (C(pg_dumpall --roles-only)), relative to O(set_dir); empty when the set has none.
    type: str
    default: ""
  create_roles:
    description:
      - Create the roles of O(required_roles) that the server lacks, from O(roles_file), before the restore.
      - With C(false), or when a role was not saved, the drill stops before creating anything, naming the roles.
      - A saved role with C(SUPERUSER), C(REPLICATION) or C(BYPASSRLS), or one made a member of a role that has them
        (or of C(pg_execute_server_program), C(pg_read_server_files), C(pg_write_server_files)), is refused the same
        way (create it by hand).
    type: bool
    default: true
  revision_query:
    description: The query whose first value is the schema revision; empty to skip.
    type: str
    default: SELECT version_num FROM alembic_version
  assertions:
    description:
      - SQL checks, each a dict with C(name), C(query) and optionally C(expected); the module returns what each
        printed, and a check of it against C(expected) (a boolean as C(t)/C(f), anything else as text).
    type: list
    elements: dict
    default: []
  drop:
    description: Drop the scratch database at the end (the C(cleanup) phase).
    type: bool
    default: true
attributes:
  check_mode:
    support: partial
    details: In check mode only the C(checksum) phase runs.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: shipshape.ops.pg_backup_manifest
  - module: shipshape.ops.backup_sets
"""

EXAMPLES = r"""
- name: Restore the newest set into a scratch database, check it and drop it
  shipshape.ops.pg_drill:
    db: drill_sample_app_20261125T040000
    set_dir: /var/backups/shipshape/sample_app-20261125T030000Z
    parts: "{{ manifest.parts }}"
    source_db: sample_app
    tables: [notes, outbox]
    assertions:
      - {name: notes exist, query: "SELECT count(*) > 0 FROM notes"}
  become: true
  register: drill
"""

RETURN = r"""
stopped_at:
  description: The phase that stopped the drill (C(checksum), C(restore) or C(verify)), or C(null) when all ran.
  returned: always
  type: str
error:
  description: Why the drill stopped, or C(null).
  returned: always
  type: str
phases:
  description: Seconds each phase that ran took, measured on the drill host.
  returned: always
  type: dict
  sample: {"checksum": 0.02, "restore": 2.61, "verify": 0.08, "cleanup": 0.15}
elapsed:
  description: Seconds from the start of C(checksum) to the end of the last phase that ran.
  returned: always
  type: float
sums:
  description:
    - Per part, its name, its sha256 now (C(missing) when the file is gone, C(refused) when the manifest names a
      file outside the set) and whether its C(.sha256) file still checks; RV(error) names the problems.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "postgres", "actual": "9f86d0...", "listed_ok": true}]
refused:
  description: Why the scratch name was refused, or C(null).
  returned: always
  type: str
created:
  description: Whether this run created the scratch database.
  returned: always
  type: bool
create_s:
  description: Seconds C(CREATE DATABASE) took, or C(null).
  returned: always
  type: float
pg_restore_s:
  description: Seconds the restore itself took, or C(null).
  returned: always
  type: float
found:
  description: What the restored copy holds (C(row_counts), C(tables_missing), C(revision), C(catalog)), or C(null).
  returned: always
  type: dict
checks:
  description:
    - Every comparison, each C(name), C(kind) (C(checksum), C(table), C(row_count), C(sequence), C(view),
      C(materialized_view), C(function), C(schema), C(extension), C(owner), C(grant), C(revision), C(assertion),
      C(manifest)), C(expected), C(actual) and C(ok).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "rows shop.orders_2026_01", "kind": "row_count", "expected": 258, "actual": 257, "ok": false}]
compared:
  description: How much the copy was checked against, C(tables) (parents included), C(leaf_tables), C(rows) (the
    manifest's, in the leaves), C(rows_found), C(sequences), C(views), C(materialized_views), C(functions),
    C(extensions), C(large_objects); C(null) when verify did not run.
  returned: always
  type: dict
  sample: {"tables": 24, "leaf_tables": 22, "rows": 3853, "rows_found": 3853}
roles_created:
  description: Roles created from the saved roles before the restore.
  returned: always
  type: list
  elements: str
assertions:
  description: Per assertion, C(name), C(query), C(rc) of C(psql) and what it printed (C(stdout), C(stderr)).
  returned: always
  type: list
  elements: dict
dropped:
  description: Whether the scratch database is gone at the end (C(null) when it was never created or O(drop=false)).
  returned: always
  type: bool
"""

import json
import os
import pwd
import subprocess
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import checksums, pg_catalog, postgres

NO_TABLES = "the backup's manifest lists no tables: nothing to verify"


class Stop(Exception):
    """A phase failed: the drill stops there (cleanup still runs)."""


class Drill(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = dict(changed=False, stopped_at=None, error=None, phases={}, elapsed=0.0, sums=[],
                           refused=None, created=False, create_s=None, pg_restore_s=None, found=None,
                           assertions=[], dropped=None, checks=[], compared=None, roles_created=[])
        self.account = pwd.getpwnam(self.p["os_user"])

    # --- running things as os_user ---------------------------------------------------------------------
    def _demote(self):
        if os.geteuid() == 0 and self.account.pw_uid != 0:
            os.setgroups([])
            os.setgid(self.account.pw_gid)
            os.setuid(self.account.pw_uid)

    def _env(self):
        env = dict(os.environ, HOME=self.account.pw_dir, PGPORT=str(self.p["port"]), PGCONNECT_TIMEOUT=str(self.p["connect_timeout"]))
        for key, option in (("PGHOST", "host"), ("PGUSER", "user"), ("PGPASSWORD", "password")):
            if self.p[option]:
                env[key] = self.p[option]
        if not self.p["host"] and self.p["unix_socket"]:
            env["PGHOST"] = self.p["unix_socket"]
        return env

    def run(self, cmd):
        return subprocess.run(cmd, cwd=self.p["set_dir"], env=self._env(), preexec_fn=self._demote,
                              capture_output=True, text=True, check=False)

    def psql(self, dbname, sql, read_only=False, variables=None):
        cmd = ["psql", "-X", "-tA", "-v", "ON_ERROR_STOP=1", "-d", postgres.conninfo_dbname(dbname)]
        for key, value in (variables or {}).items():
            cmd += ["-v", "%s=%s" % (key, value)]
        env = {"PGOPTIONS": "-c default_transaction_read_only=on"} if read_only else None
        # -c does not interpolate psql variables; stdin does.
        proc = subprocess.run(cmd, input=sql, env=dict(self._env(), **(env or {})), cwd=self.p["set_dir"],
                              preexec_fn=self._demote, capture_output=True, text=True, check=False)
        return proc

    def as_os_user(self, func):
        """func() in a child process that runs as os_user; its JSON-able return value, or Stop."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            try:
                self._demote()
                payload = {"value": func()}
            except Exception as exc:  # reported to the parent
                payload = {"error": str(exc).strip() or exc.__class__.__name__}
            with os.fdopen(write_fd, "w") as pipe:
                pipe.write(json.dumps(payload, default=str))
            os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        payload = json.loads(data or '{"error": "the checking process died"}')
        if "error" in payload:
            raise Stop(payload["error"])
        return payload["value"]

    # --- the phases -------------------------------------------------------------------------------------
    def checksum(self):
        # As root (the module's user): some sets keep their .sha256 files readable by root only. Every name is
        # checked to stay inside the set before it is read (module_utils/checksums); nothing runs.
        problems = {}
        for name in sorted(self.p["parts"]):
            checked = checksums.verify_part(self.p["set_dir"], name, self.p["parts"][name])
            self.result["sums"].append(dict(name=name, actual=checked["actual"], listed_ok=checked["listed_ok"]))
            problems[name] = checked["problems"]
        parts = self.p["parts"]
        for s in self.result["sums"]:
            part = parts[s["name"]]
            self.result["checks"].append(pg_catalog.check(
                "checksum " + part["file"], "checksum", part.get("sha256") or "", s["actual"],
                ok=s["actual"] == part.get("sha256") and s["listed_ok"]))
        bad = [s["name"] for s in self.result["sums"] if s["actual"] != parts[s["name"]].get("sha256") or not s["listed_ok"]]
        if bad:
            raise Stop("checksum mismatch: %s" % "; ".join(
                "%s (%s)" % (name, ", ".join(problems[name]) or "no sha256 in the manifest") for name in bad))

    def restore(self):
        db = self.p["db"]
        if db == self.p["source_db"]:
            self.result["refused"] = "it is the source database of the backup"
        elif len(db.encode()) > 63:
            self.result["refused"] = "it is longer than 63 bytes"
        else:
            listing = self.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = :'db';\n", variables={"db": db})
            if listing.returncode != 0:
                raise Stop("cannot list the databases: %s" % listing.stderr.strip())
            if listing.stdout.strip() != "0":
                self.result["refused"] = "a database of that name already exists"
        if self.result["refused"]:
            raise Stop("refusing scratch database %s: %s" % (db, self.result["refused"]))
        if self.p["privileges"] and self.p["required_roles"]:
            self.result["roles_created"] = self.as_os_user(self.ensure_roles)

        # The backup's encoding and locale (pg_dump does not carry them; template1's would sort text differently):
        # keywords from pg_catalog's fixed list, values as psql variables quoted by psql (:'name').
        try:
            options = pg_catalog.database_locale_options(self.p["catalog"].get("database_locale"))
        except ValueError as exc:
            raise Stop("cannot create scratch database %s: %s" % (db, exc))
        variables = dict((("opt%d" % i, value) for i, (dummy, value) in enumerate(options)), db=db)
        clauses = "".join(" %s :'opt%d'" % (keyword, i) for i, (keyword, dummy) in enumerate(options))
        t0 = time.time()
        created = self.psql("postgres", 'CREATE DATABASE :"db"%s;\n' % clauses, variables=variables)
        if created.returncode != 0:
            if options:  # most often a drill host that lacks the backup's locale
                raise Stop("CREATE DATABASE %s with %s failed: %s; %s" % (
                    db, pg_catalog.locale_words(self.p["catalog"]["database_locale"]), created.stderr.strip(),
                    pg_catalog.LOCALE_MISSING_HINT))
            raise Stop("CREATE DATABASE %s failed: %s" % (db, created.stderr.strip()))
        self.result["created"] = True
        t1 = time.time()
        self.result["create_s"] = round(t1 - t0, 3)

        part = self.p["parts"]["postgres"]
        fmt = part.get("format") or "custom"
        # Inside the set (checked in the checksum phase), and never read as "-", which the tools take for stdin.
        path = os.path.join(".", part["file"])
        no_privileges = [] if self.p["privileges"] else ["--no-owner", "--no-privileges"]
        procs = []
        if fmt in ("custom", "directory"):
            procs.append(self.run(["pg_restore", "--exit-on-error"] + no_privileges
                                  + ["-j", str(self.p["jobs"]), "-d", postgres.conninfo_dbname(db), "--", path]))
        else:
            psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", postgres.conninfo_dbname(db), "-o", os.devnull, "-f"]
            unpack = {"gzip": ["gzip", "-dc", "--"], "zstd": ["zstd", "-dcq", "--"]}.get(part.get("compression") or "")
            if unpack:
                procs.extend(postgres.pipe(unpack + [path], psql + ["-"], cwd=self.p["set_dir"], env=self._env(),
                                           preexec_fn=self._demote))
            else:
                procs.append(self.run(psql + [path]))
        self.result["pg_restore_s"] = round(time.time() - t1, 3)
        for proc in procs:
            if proc.returncode != 0:
                err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
                tail = postgres.error_tail(err)  # without the SQL it echoes: a dump's SQL may hold passwords
                raise Stop("restoring into %s failed (%s rc %s): %s" % (db, proc.args[0], proc.returncode, tail))
        if [s for s in self.p["catalog"].get("database_settings") or [] if "=" in s[1]]:
            self.as_os_user(self.copy_settings)

    def copy_settings(self):
        """As os_user: the database's own settings (ALTER DATABASE / ALTER ROLE ... IN DATABASE ... SET, which pg_dump of
        one database does not carry) onto the scratch copy, so that the revision query and the assertions run as the
        app's sessions do (a search_path = app finds app.alembic_version). A setting recorded without its value (a
        secret) cannot be, nor one of a role this server lacks."""
        conn = postgres.DRIVER.connect(**postgres.connect_kwargs(dict(self.p, db="postgres")))
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            for role, setting in self.p["catalog"].get("database_settings") or []:
                if "=" in setting and not (role and pg_catalog.missing_roles(cursor, [role])):
                    cursor.execute(pg_catalog.setting_statement(postgres.sql, self.p["db"], role, setting))
        finally:
            conn.close()

    def ensure_roles(self):
        """As os_user, on the maintenance database: create the missing roles the dump needs, or raise naming them."""
        saved = ""
        if self.p["roles_file"]:
            # As the set's own files are read: inside the set, and a regular file (a FIFO would block for ever).
            try:
                with checksums.open_regular(checksums.member(self.p["set_dir"], self.p["roles_file"]), "r",
                                            encoding="utf-8", errors="surrogateescape") as fh:
                    saved = fh.read()
            except (checksums.Refused, OSError) as exc:
                raise ValueError("roles_file: %r cannot be read: %s (expected the set's saved roles, a regular file in %s)"
                                 % (self.p["roles_file"], getattr(exc, "strerror", None) or exc, self.p["set_dir"]))
        conn = postgres.DRIVER.connect(**postgres.connect_kwargs(dict(self.p, db="postgres")))
        try:
            conn.autocommit = False
            created = pg_catalog.ensure_roles(conn.cursor(), postgres.sql, self.p["required_roles"], saved,
                                              self.p["create_roles"])
            conn.commit()  # all roles or none
            return created
        finally:
            conn.close()

    def verify(self):
        params = dict(self.p)

        expected_tables = set(self.p["catalog"].get("tables") or {}) | set(self.p["expected_row_counts"]) | set(self.p["tables"])
        if not expected_tables:
            self.result["checks"].append(pg_catalog.check("tables in the manifest", "manifest", "at least one", 0, ok=False))
            raise Stop(NO_TABLES)
        tables = sorted(set(self.p["tables"]) | set(self.p["expected_row_counts"]))

        def read():
            conn = postgres.DRIVER.connect(**postgres.connect_kwargs(params))
            try:
                return postgres.describe(conn.cursor(), tables, params["revision_query"], catalog=bool(params["catalog"]))
            finally:
                conn.rollback()
                conn.close()

        found = self.result["found"] = self.as_os_user(read)
        self.result["checks"].extend(self.compare(found))
        for check in self.p["assertions"]:
            proc = self.psql(self.p["db"], check["query"] + ("\n" if check["query"].rstrip().endswith(";") else ";\n"),
                             read_only=True)
            run = dict(name=check.get("name"), query=check["query"], rc=proc.returncode,
                       stdout=proc.stdout.strip(), stderr=proc.stderr.strip())
            self.result["assertions"].append(run)
            if "expected" in check:
                expected = check["expected"]
                expected = ("t" if expected else "f") if isinstance(expected, bool) else str(expected)
                actual = run["stdout"] if run["rc"] == 0 else "error: " + run["stderr"]
                self.result["checks"].append(dict(pg_catalog.check("assertion %s" % run["name"], "assertion", expected, actual,
                                                                   ok=run["rc"] == 0 and actual == expected),
                                                  query=check["query"]))

    def compare(self, found):
        """The checks of the restored copy against the manifest, each difference by name (module_utils/pg_catalog)."""
        p = self.p
        tolerance = p["row_count_tolerance"]
        checks = []
        catalog = p["catalog"]
        if catalog:
            checks.extend(c for c in pg_catalog.compare(catalog, found["catalog"], tolerance)
                          if p["privileges"] or c["kind"] not in ("owner", "grant"))
            self.result["compared"] = pg_catalog.compared(catalog, found["catalog"])
        else:
            rows = dict((t, int(n)) for t, n in p["expected_row_counts"].items())
            self.result["compared"] = dict(tables=len(set(rows) | set(p["tables"])), leaf_tables=None,
                                           rows=sum(rows.values()),
                                           rows_found=sum(found["row_counts"].get(t, 0) for t in rows))
        # Configured tables and the manifest's row_counts: assertions added to the catalog's, under the names given.
        for name in sorted(set(p["tables"]) | set(p["expected_row_counts"])):
            present = name not in found["tables_missing"]
            checks.append(pg_catalog.check("table " + name, "table", "present", "present" if present else "missing"))
            if name in p["expected_row_counts"]:
                want, got = int(p["expected_row_counts"][name]), found["row_counts"].get(name)
                checks.append(dict(pg_catalog.check("rows " + name, "row_count", want, got,
                                                    ok=got is not None and abs(got - want) <= want * tolerance / 100),
                                   tolerance_pct=float(tolerance)))
        if p["check_revision"]:
            checks.append(pg_catalog.check("schema revision", "revision", p["expected_revision"], found["revision"]))
        # The same name twice (the catalog's "table public.notes" and a configured "public.notes"): keep the first.
        seen, unique = set(), []
        for c in checks:
            if c["name"] not in seen:
                seen.add(c["name"])
                unique.append(c)
        return unique

    def cleanup(self):
        dropped = self.psql("postgres", 'DROP DATABASE IF EXISTS :"db" WITH (FORCE);\n'
                            "SELECT count(*) FROM pg_database WHERE datname = :'db';\n", variables={"db": self.p["db"]})
        self.result["dropped"] = dropped.returncode == 0 and dropped.stdout.strip().splitlines()[-1:] == ["0"]
        if not self.result["dropped"] and not self.result["error"]:
            self.result["error"] = "the scratch database %s could not be dropped: %s" % (self.p["db"], dropped.stderr.strip())

    def main(self):
        phases = ["checksum"] if self.module.check_mode else ["checksum", "restore", "verify"]
        started = time.time()
        try:
            for phase in phases:
                t0 = time.time()
                try:
                    getattr(self, phase)()
                except Stop as exc:
                    self.result["stopped_at"] = phase
                    self.result["error"] = str(exc)
                    break
                except Exception as exc:
                    self.result["stopped_at"] = phase
                    self.result["error"] = "%s: %s" % (exc.__class__.__name__, str(exc).strip())
                    self.result["exception"] = traceback.format_exc()
                    break
                finally:
                    self.result["phases"][phase] = round(time.time() - t0, 3)
        finally:
            if self.result["created"] and self.p["drop"]:
                t0 = time.time()
                self.cleanup()
                self.result["phases"]["cleanup"] = round(time.time() - t0, 3)
        self.result["elapsed"] = round(time.time() - started, 3)
        return self.result


def main():
    argument_spec = postgres.postgres_argument_spec()
    argument_spec.update(
        set_dir=dict(type="path", required=True),
        parts=dict(type="dict", required=True),
        source_db=dict(type="str", required=True),
        os_user=dict(type="str", default="postgres"),
        jobs=dict(type="int", default=2),
        tables=dict(type="list", elements="str", default=[]),
        catalog=dict(type="dict", default={}),
        expected_row_counts=dict(type="dict", default={}),
        expected_revision=dict(type="str"),
        check_revision=dict(type="bool", default=False),
        row_count_tolerance=dict(type="float", default=0),
        privileges=dict(type="bool", default=True),
        required_roles=dict(type="list", elements="str", default=[]),
        roles_file=dict(type="str", default=""),
        create_roles=dict(type="bool", default=True),
        revision_query=dict(type="str", default="SELECT version_num FROM alembic_version"),
        assertions=dict(type="list", elements="dict", default=[]),
        drop=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if "postgres" not in p["parts"]:
        module.fail_json(msg="parts: the set has no postgres part (parts: %s)" % (", ".join(p["parts"]) or "none"))
    for name, part in p["parts"].items():
        if not isinstance(part, dict) or not part.get("file"):
            module.fail_json(msg="parts: part %s has no file" % name)
    if not os.path.isdir(p["set_dir"]):
        module.fail_json(msg="set_dir: %s is not a directory" % p["set_dir"])
    if p["jobs"] < 1:
        module.fail_json(msg="jobs: at least 1, got %s" % p["jobs"])
    for i, check in enumerate(p["assertions"]):
        if not check.get("query"):
            module.fail_json(msg="assertions[%d]: a query is required" % i)
    for name in p["tables"]:
        try:
            postgres.split_table_name(name)
        except ValueError as exc:
            module.fail_json(msg="tables: %s" % exc)
    for name, count in p["expected_row_counts"].items():
        try:
            postgres.split_table_name(name)
            int(count)
        except (TypeError, ValueError):
            module.fail_json(msg="expected_row_counts: %r: %r: expected a table or schema.table and a row count" % (name, count))
    for name in p["required_roles"]:
        if not name or len(name.encode("utf-8")) > postgres.MAX_IDENTIFIER_BYTES:
            module.fail_json(msg="required_roles: %r: expected a role name of 1 to 63 bytes" % (name,))
    if p["row_count_tolerance"] < 0:
        module.fail_json(msg="row_count_tolerance: %s: expected 0 or more (percent)" % p["row_count_tolerance"])
    try:
        pwd.getpwnam(p["os_user"])
    except KeyError:
        module.fail_json(msg="os_user: no OS user %s on this host" % p["os_user"])
    postgres.ensure_driver(module)  # before anything is created: verify needs it
    module.exit_json(**Drill(module).main())


if __name__ == "__main__":
    main()
