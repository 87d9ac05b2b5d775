#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_diagnostics
short_description: Read a PostgreSQL database's tables, indexes, slowest statements and table privileges
description:
  - The read-only SQL diagnostics of the operators' runbook as one module. It reads the sizes and vacuum state
    of the tables (RV(tables)), their indexes with the unused and invalid ones flagged (RV(indexes)), the slowest
    statements recorded by C(pg_stat_statements) (RV(slow_queries)) and which privileges given roles hold on
    each table (RV(access)).
  - Reads only, in one C(REPEATABLE READ READ ONLY) transaction with C(statement_timeout) set to
    O(statement_timeout_ms), and never reports a change. It runs the same in check mode.
  - Table and role names are validated, then quoted as identifiers or passed as query parameters; no SQL is
    built from option values.
  - A table named in O(tables) that does not exist fails the module before anything else is read.
  - When C(pg_stat_statements) is not installed in the database (or installed but not loaded), RV(slow_queries)
    is empty and RV(notes) says why and what to do; that is not a failure. A role of O(roles) that does not
    exist is listed in RV(missing_roles) and in RV(notes), not a failure either.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.postgres
options:
  sections:
    description:
      - What to read. C(tables) and C(indexes) fill RV(tables) and RV(indexes), C(slow_queries) fills
        RV(slow_queries), C(access) fills RV(access) and RV(missing_roles).
      - A section left out returns an empty list.
    type: list
    elements: str
    choices: [tables, indexes, slow_queries, access]
    default: [tables, indexes, slow_queries, access]
  tables:
    description:
      - Only these tables in RV(tables), RV(indexes) and RV(access), each C(table) (found through the
        C(search_path)) or C(schema.table), matched exactly as given, case included, as quoted identifiers are. A name
        holding a C(.), a space or a C(") goes in double quotes as SQL writes it (C(crm."order.items"), C("Order Items"); a C(") in it doubled).
      - A partitioned table brings its partitions along.
      - Empty for every table outside C(pg_catalog), C(information_schema) and C(pg_toast).
    type: list
    elements: str
    default: []
  slow_queries_limit:
    description: At most this many statements in RV(slow_queries), the slowest on average first, 1 to 1000.
    type: int
    default: 10
  slow_queries_match:
    description:
      - Only statements whose text contains this string, ignoring case, for example the table name C(bot_events).
      - Matched literally, a C(%) or C(_) is no wildcard. Empty for every statement.
    type: str
    default: ""
  slow_queries_min_mean_ms:
    description: Only statements whose mean execution time is at least this many milliseconds.
    type: float
    default: 0.0
  roles:
    description:
      - The roles whose privileges on each table RV(access) lists, each a role name (letters, digits, C(_), C($) and
        C(-), starting with a letter or C(_); at most 63 bytes), matched exactly as stored, case included (a query
        parameter, never SQL text).
      - Empty to list only each table's owner.
    type: list
    elements: str
    default: []
  statement_timeout_ms:
    description: The C(statement_timeout) of the module's transaction, in milliseconds; 0 for none.
    type: int
    default: 30000
attributes:
  check_mode:
    support: full
    details: Reads the same in check mode; the module never changes anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - RV(slow_queries) are the statements of the connected database only. C(pg_stat_statements) shows other roles'
    statement texts to superusers and members of C(pg_read_all_stats) only; others see
    C(<insufficient privilege>).
  - C(pg_stat_statements) needs C(shared_preload_libraries = 'pg_stat_statements') in C(postgresql.conf) (a
    restart) and C(CREATE EXTENSION pg_stat_statements) in the database.
  - An index's scans count since the statistics were last reset; a partitioned table's own index has no scans
    of its own (its partitions' indexes do) and is never flagged unused.
seealso:
  - module: shipshape.ops.pg_backup_manifest
"""

EXAMPLES = r"""
- name: Check the indexes, slow queries and grants of the bot_events tables
  shipshape.ops.pg_diagnostics:
    db: sample_app
    tables: [bot_events, public.outbox]
    slow_queries_match: bot_events
    roles: [app_reader, app]
  become: true
  become_user: postgres
  register: diag

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ diag.msg }}"

- name: Unused and invalid indexes of the whole database
  shipshape.ops.pg_diagnostics:
    db: fastprep
    host: db.internal
    user: ops
    password: "{{ vault_ops_password }}"
    sections: [indexes]
  register: indexes

- name: Fail on an invalid index (a CREATE INDEX CONCURRENTLY that did not finish)
  ansible.builtin.assert:
    that: indexes.summary.invalid_indexes == 0
    fail_msg: "Invalid indexes: {{ indexes.indexes | selectattr('valid', 'equalto', false) | map(attribute='name') | join(', ') }}"
"""

RETURN = r"""
tables:
  description: The tables, the largest first (empty when the C(tables) section was not asked for).
  returned: always
  type: list
  elements: dict
  contains:
    schema:
      description: The table's schema.
      type: str
    name:
      description: The table's name.
      type: str
    kind:
      description: C(table), C(partitioned table) (which holds no rows itself) or C(partition).
      type: str
    owner:
      description: The table's owner.
      type: str
    rows_estimate:
      description: The planner's row estimate (C(reltuples)), C(null) before the first C(ANALYZE).
      type: int
    size_bytes:
      description: C(pg_total_relation_size), with indexes and TOAST (0 for a partitioned table).
      type: int
    seq_scan:
      description: Sequential scans since the statistics were reset.
      type: int
    idx_scan:
      description: Index scans since the statistics were reset.
      type: int
    n_dead_tup:
      description: Dead rows waiting for a vacuum.
      type: int
    last_vacuum:
      description: The last manual C(VACUUM), ISO 8601, or C(null).
      type: str
    last_autovacuum:
      description: The last autovacuum, ISO 8601, or C(null).
      type: str
    last_analyze:
      description: The last manual C(ANALYZE), ISO 8601, or C(null).
      type: str
  sample:
    - {"schema": "public", "name": "bot_events_2026_03", "kind": "partition", "owner": "app", "rows_estimate": 120000,
       "size_bytes": 26730496, "seq_scan": 3, "idx_scan": 5120, "n_dead_tup": 12, "last_vacuum": null,
       "last_autovacuum": "2026-03-02T04:10:11.120000+00:00", "last_analyze": null}
indexes:
  description: The indexes of those tables, by schema, table and name.
  returned: always
  type: list
  elements: dict
  contains:
    schema:
      description: The table's schema.
      type: str
    table:
      description: The table.
      type: str
    name:
      description: The index.
      type: str
    definition:
      description: Its C(CREATE INDEX) statement (C(pg_get_indexdef)).
      type: str
    size_bytes:
      description: Its size.
      type: int
    scans:
      description: Its scans (C(pg_stat_user_indexes.idx_scan)), C(null) for a partitioned table's own index.
      type: int
    unique:
      description: Whether it is unique.
      type: bool
    primary:
      description: Whether it is the primary key.
      type: bool
    valid:
      description: Whether the planner may use it (C(false) after a failed C(CREATE INDEX CONCURRENTLY)).
      type: bool
    unused:
      description: Never scanned, and neither unique nor the primary key (so only costs writes and space).
      type: bool
  sample:
    - {"schema": "public", "table": "bot_events", "name": "bot_events_kind_idx",
       "definition": "CREATE INDEX bot_events_kind_idx ON public.bot_events USING btree (kind)",
       "size_bytes": 16384, "scans": 0, "unique": false, "primary": false, "valid": true, "unused": true}
slow_queries:
  description:
    - The statements of C(pg_stat_statements) in this database, the slowest on average first (empty when the
      extension is missing, see RV(notes)).
    - Its constants are already replaced by C($1), C($2) and so on.
  returned: always
  type: list
  elements: dict
  contains:
    query:
      description: The statement's text, cut at 2000 characters.
      type: str
    calls:
      description: How often it ran.
      type: int
    total_ms:
      description: Its total execution time in milliseconds.
      type: float
    mean_ms:
      description: Its mean execution time in milliseconds.
      type: float
    rows:
      description: The rows it returned or changed, in total.
      type: int
  sample:
    - {"query": "SELECT * FROM bot_events WHERE chat_id = $1 ORDER BY created_at DESC LIMIT $2", "calls": 310,
       "total_ms": 251844.0, "mean_ms": 812.4, "rows": 6200}
access:
  description: Each table's owner and the privileges each existing role of O(roles) holds on it.
  returned: always
  type: list
  elements: dict
  contains:
    schema:
      description: The table's schema.
      type: str
    table:
      description: The table.
      type: str
    owner:
      description: The table's owner.
      type: str
    grants:
      description:
        - Role to the privileges it holds (directly, through a role it inherits, or through C(PUBLIC)), of
          C(SELECT), C(INSERT), C(UPDATE), C(DELETE), C(TRUNCATE), C(REFERENCES) and C(TRIGGER).
      type: dict
  sample:
    - {"schema": "public", "table": "bot_events", "owner": "app", "grants": {"app_reader": ["SELECT"]}}
missing_roles:
  description: The roles of O(roles) that do not exist on the server.
  returned: always
  type: list
  elements: str
  sample: [old_reporting]
summary:
  description: Counts of what was found.
  returned: always
  type: dict
  contains:
    tables:
      description: Tables in RV(tables).
      type: int
    indexes:
      description: Indexes in RV(indexes).
      type: int
    unused_indexes:
      description: Indexes flagged unused.
      type: int
    invalid_indexes:
      description: Indexes that are not valid.
      type: int
    slow_queries:
      description: Statements in RV(slow_queries).
      type: int
  sample: {"tables": 22, "indexes": 41, "unused_indexes": 3, "invalid_indexes": 0, "slow_queries": 10}
msg:
  description: The summary in one line.
  returned: always
  type: str
  sample: "sample_app: 22 tables, 41 indexes (3 unused, 0 invalid), 10 slow queries (slowest 812.4 ms mean)"
report:
  description:
    - What a person reads, one line each. The summary, every invalid index (with its table), every unused one, the
      slowest statements (up to five, each cut to 160 characters, with their mean time and calls), the roles that do
      not exist, and the notes.
  returned: always
  type: list
  elements: str
  sample:
    - "sample_app: 22 tables, 41 indexes (3 unused, 0 invalid), 10 slow queries (slowest 812.4 ms mean)"
    - "unused index public.bot_events_status_idx on bot_events (0 scans, 8192 bytes)"
    - "slow 812.4 ms mean, 12 calls: SELECT * FROM bot_events WHERE bot_id = $1 ORDER BY created_at DESC"
notes:
  description:
    - What could not be read and why, one sentence each (a missing C(pg_stat_statements), missing roles).
    - Not Ansible's C(warnings), which Ansible keeps for itself.
  returned: always
  type: list
  elements: str
driver:
  description: The Python library used, C(psycopg2) or C(psycopg).
  returned: always
  type: str
  sample: psycopg2
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import pg_catalog, postgres

SECTIONS = ["tables", "indexes", "slow_queries", "access"]
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
QUERY_CHARS = 2000
#: SQLSTATE of "pg_stat_statements must be loaded via shared_preload_libraries" (object_not_in_prerequisite_state).
NOT_LOADED = "55000"
QUERY_CANCELED = "57014"

# The schemas of pg_catalog's queries; doubled %: these queries take parameters.
USER_SCHEMAS = pg_catalog.USER_SCHEMAS.replace("%", "%%")

TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relispartition, pg_get_userbyid(c.relowner), c.reltuples,
       pg_total_relation_size(c.oid), s.seq_scan, s.idx_scan, s.n_dead_tup, s.last_vacuum, s.last_autovacuum,
       s.last_analyze
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p') AND %s AND (%%s OR c.oid::bigint = ANY(%%s::bigint[]))
 ORDER BY 8 DESC, 2, 3
""" % USER_SCHEMAS

INDEXES = """
SELECT n.nspname, t.relname, c.relname, pg_get_indexdef(c.oid), pg_relation_size(c.oid), s.idx_scan,
       i.indisunique, i.indisprimary, i.indisvalid
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
 WHERE t.relkind IN ('r', 'p') AND %s AND (%%s OR t.oid::bigint = ANY(%%s::bigint[]))
 ORDER BY 1, 2, 3
""" % USER_SCHEMAS

#: has_table_privilege of each role on each table: constants only, the roles and tables are parameters.
ACCESS = """
SELECT c.oid, r.rolname, %s
  FROM pg_class c CROSS JOIN pg_roles r
 WHERE c.oid::bigint = ANY(%%s::bigint[]) AND r.rolname = ANY(%%s)
""" % ", ".join("has_table_privilege(r.oid, c.oid, '%s')" % p for p in PRIVILEGES)

RESOLVE_QUALIFIED = "SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s))"
RESOLVE = "SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass(quote_ident(%s))"
#: a partitioned table's partitions, at every level (the oid as bigint: psycopg 3 may send a small int as int2).
PARTITIONS = "SELECT relid::oid FROM pg_partition_tree(%s::bigint::oid::regclass)"

STAT_STATEMENTS_SCHEMA = ("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                          "WHERE e.extname = 'pg_stat_statements'")
STAT_STATEMENTS_COLUMNS = ("SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident(%s) || "
                           "'.pg_stat_statements') AND a.attnum > 0 AND NOT a.attisdropped")

NOT_INSTALLED_NOTE = ("slow_queries: pg_stat_statements is not installed in database %s, so no statements are listed: "
                      "run CREATE EXTENSION pg_stat_statements in this database (the server also needs "
                      "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, which takes a restart)")
NOT_LOADED_NOTE = ("slow_queries: pg_stat_statements is installed in database %s but the server has not loaded it, so "
                   "no statements are listed: add pg_stat_statements to shared_preload_libraries in postgresql.conf "
                   "and restart the server")
UNKNOWN_COLUMNS_NOTE = ("slow_queries: the pg_stat_statements view of database %s has neither mean_exec_time nor "
                        "mean_time, so no statements are listed: update the extension (ALTER EXTENSION "
                        "pg_stat_statements UPDATE)")


def validate(params):
    """Problems with the options, one line each naming the option, the value and what was expected."""
    problems = []
    if not params["db"]:
        # libpq would connect to the database named like the user (postgres): a report of the wrong database
        problems.append("db: empty: expected the name of the database to report on")
    if not params["sections"]:
        problems.append("sections: empty: expected one or more of %s" % ", ".join(SECTIONS))
    for name in params["tables"]:
        try:
            postgres.split_table_name(name)
        except ValueError as exc:
            problems.append("tables: %s" % exc)
    for name in params["roles"]:
        error = postgres.role_name_error("roles", name)
        if error:
            problems.append(error)
    if not 1 <= params["slow_queries_limit"] <= 1000:
        problems.append("slow_queries_limit: %s is out of range: expected 1 to 1000" % params["slow_queries_limit"])
    if params["slow_queries_min_mean_ms"] < 0:
        problems.append("slow_queries_min_mean_ms: %s is negative: expected 0 (every statement) or more"
                        % params["slow_queries_min_mean_ms"])
    if params["statement_timeout_ms"] < 0:
        problems.append("statement_timeout_ms: %s is negative: expected 0 (no timeout) or more"
                        % params["statement_timeout_ms"])
    return problems


def iso(value):
    """A timestamp as ISO 8601 (the drivers give datetimes), or None."""
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def count(value):
    return None if value is None else int(value)


def table_kind(relkind, is_partition):
    if relkind == "p":
        return pg_catalog.RELKINDS["p"]
    return "partition" if is_partition else pg_catalog.RELKINDS["r"]


def resolve_tables(cursor, names):
    """(oids of the named tables and of the partitions of the partitioned ones, [names not found], [names that are
    not tables])."""
    oids, missing, not_tables = [], [], []
    for name in names:
        parts = postgres.split_table_name(name)
        cursor.execute(RESOLVE_QUALIFIED if len(parts) == 2 else RESOLVE, list(parts))
        row = cursor.fetchone()
        if not row:
            missing.append(name)
            continue
        oid, relkind = int(row[0]), row[1]
        if relkind not in ("r", "p"):
            not_tables.append("%s (%s)" % (name, pg_catalog.RELKINDS.get(relkind, "relkind %s" % relkind)))
            continue
        if oid not in oids:
            oids.append(oid)
        if relkind == "p":
            cursor.execute(PARTITIONS, [oid])
            oids.extend(int(r[0]) for r in cursor.fetchall() if int(r[0]) not in oids)
    return oids, missing, not_tables


def read_tables(cursor, oids):
    """[(oid, entry)] of the tables (every user table when ``oids`` is None), the largest first."""
    cursor.execute(TABLES, [oids is None, oids or []])
    found = []
    for (oid, schema, name, relkind, is_partition, owner, reltuples, size, seq_scan, idx_scan, dead, last_vacuum,
         last_autovacuum, last_analyze) in cursor.fetchall():
        found.append((int(oid), dict(
            schema=schema, name=name, kind=table_kind(relkind, is_partition), owner=owner,
            rows_estimate=None if reltuples is None or reltuples < 0 else int(reltuples),
            size_bytes=int(size or 0), seq_scan=count(seq_scan), idx_scan=count(idx_scan), n_dead_tup=count(dead),
            last_vacuum=iso(last_vacuum), last_autovacuum=iso(last_autovacuum), last_analyze=iso(last_analyze))))
    found.sort(key=lambda item: (-item[1]["size_bytes"], item[1]["schema"], item[1]["name"]))
    return found


def read_indexes(cursor, oids):
    cursor.execute(INDEXES, [oids is None, oids or []])
    indexes = []
    for schema, table, name, definition, size, scans, unique, primary, valid in cursor.fetchall():
        scans = count(scans)
        indexes.append(dict(schema=schema, table=table, name=name, definition=definition, size_bytes=int(size or 0),
                            scans=scans, unique=bool(unique), primary=bool(primary), valid=bool(valid),
                            unused=scans == 0 and not unique and not primary))
    indexes.sort(key=lambda i: (i["schema"], i["table"], i["name"]))
    return indexes


def read_access(cursor, tables, roles):
    """Each table's owner and the privileges of each role of ``roles`` (existing ones) on it."""
    grants = dict((oid, {}) for oid, dummy in tables)
    if roles and tables:
        cursor.execute(ACCESS, [[oid for oid, dummy in tables], list(roles)])
        for row in cursor.fetchall():
            held = [p for p, has in zip(PRIVILEGES, row[2:]) if has]
            grants.setdefault(int(row[0]), {})[row[1]] = held
    access = [dict(schema=t["schema"], table=t["name"], owner=t["owner"], grants=grants[oid]) for oid, t in tables]
    access.sort(key=lambda a: (a["schema"], a["table"]))
    return access


def time_columns(columns):
    """(total, mean) column names of pg_stat_statements: PostgreSQL 13+ total_exec_time/mean_exec_time, older
    total_time/mean_time; None when neither is there."""
    columns = set(columns)
    for total, mean in (("total_exec_time", "mean_exec_time"), ("total_time", "mean_time")):
        if total in columns and mean in columns:
            return total, mean
    return None


def slow_query(schema, total, mean, match):
    """The statements of this database in pg_stat_statements, slowest on average first: the view's schema and time
    columns as identifiers, the filters and the limit as parameters."""
    sql = postgres.sql
    query = sql.SQL("SELECT left(query, {chars}), calls, {total}, {mean}, rows FROM {view} "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND {mean} >= %s").format(chars=sql.SQL(str(QUERY_CHARS)), total=sql.Identifier(total),
                                               mean=sql.Identifier(mean),
                                               view=sql.Identifier(schema, "pg_stat_statements"))
    if match:
        query = query + sql.SQL(" AND strpos(lower(query), lower(%s)) > 0")
    return query + sql.SQL(" ORDER BY {mean} DESC LIMIT %s").format(mean=sql.Identifier(mean))


def read_slow_queries(cursor, params, notes):
    """The slowest statements, or [] with a note when pg_stat_statements is missing or not loaded."""
    cursor.execute(STAT_STATEMENTS_SCHEMA)
    row = cursor.fetchone()
    if not row:
        notes.append(NOT_INSTALLED_NOTE % params["db"])
        return []
    schema = row[0]
    cursor.execute(STAT_STATEMENTS_COLUMNS, [schema])
    columns = time_columns(r[0] for r in cursor.fetchall())
    if columns is None:
        notes.append(UNKNOWN_COLUMNS_NOTE % params["db"])
        return []
    values = [params["slow_queries_min_mean_ms"]]
    if params["slow_queries_match"]:
        values.append(params["slow_queries_match"])
    values.append(params["slow_queries_limit"])
    cursor.execute("SAVEPOINT shipshape_slow_queries")
    try:
        cursor.execute(slow_query(schema, columns[0], columns[1], params["slow_queries_match"]), values)
        rows = cursor.fetchall()
    except Exception as exc:  # the driver's ObjectNotInPrerequisiteState
        if postgres.sqlstate(exc) != NOT_LOADED and "shared_preload_libraries" not in str(exc):
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT shipshape_slow_queries")
        notes.append(NOT_LOADED_NOTE % params["db"])
        return []
    cursor.execute("RELEASE SAVEPOINT shipshape_slow_queries")
    found = [dict(query=text, calls=int(calls), total_ms=round(float(total), 3), mean_ms=round(float(mean), 3),
                  rows=int(rows_))
             for text, calls, total, mean, rows_ in rows]
    found.sort(key=lambda q: -q["mean_ms"])
    return found


def summarize(db, sections, roles, result):
    """RV(summary) and the one-line RV(msg); ``roles`` is how many roles O(roles) names."""
    indexes = result["indexes"]
    summary = dict(tables=len(result["tables"]), indexes=len(indexes),
                   unused_indexes=len([i for i in indexes if i["unused"]]),
                   invalid_indexes=len([i for i in indexes if not i["valid"]]),
                   slow_queries=len(result["slow_queries"]))
    parts = []
    if "tables" in sections:
        parts.append("%d tables" % summary["tables"])
    elif "access" in sections:
        parts.append("%d tables" % len(result["access"]))
    if "indexes" in sections:
        parts.append("%d indexes (%d unused, %d invalid)"
                     % (summary["indexes"], summary["unused_indexes"], summary["invalid_indexes"]))
    if "slow_queries" in sections:
        slow = result["slow_queries"]
        parts.append("%d slow queries%s" % (len(slow), " (slowest %.1f ms mean)" % slow[0]["mean_ms"] if slow else ""))
    if "access" in sections and roles:
        parts.append("access of %d roles (%d missing)" % (roles, len(result["missing_roles"])))
    return summary, "%s: %s" % (db, ", ".join(parts))


def report_lines(msg, result):
    """RV(report): the summary, then what needs a look."""
    lines = [msg]
    for index in result["indexes"]:
        if not index["valid"] or index["unused"]:
            lines.append("%s index %s.%s on %s (%s scans, %s bytes)" % (
                "invalid" if not index["valid"] else "unused", index["schema"], index["name"], index["table"],
                index["scans"], index["size_bytes"]))
    for query in result["slow_queries"][:5]:
        text = " ".join(query["query"].split())
        lines.append("slow %.1f ms mean, %s calls: %s" % (
            query["mean_ms"], query["calls"], text if len(text) <= 160 else text[:157] + "..."))
    lines.extend("no such role: %s" % role for role in result["missing_roles"])
    lines.extend(result["notes"])
    return lines


def diagnose(cursor, params):
    """Every asked-for section, read in the caller's transaction: (result keys, [tables not found or not tables])."""
    sections = params["sections"]
    notes = []
    result = dict(tables=[], indexes=[], slow_queries=[], access=[], missing_roles=[], notes=notes)
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(params["statement_timeout_ms"])])
    oids = None
    if params["tables"]:
        oids, missing, not_tables = resolve_tables(cursor, params["tables"])
        if missing or not_tables:
            return result, missing, not_tables
    tables = []
    if "tables" in sections or "access" in sections:
        tables = read_tables(cursor, oids)
    if "tables" in sections:
        result["tables"] = [entry for dummy, entry in tables]
    if "indexes" in sections:
        result["indexes"] = read_indexes(cursor, oids)
    if "slow_queries" in sections:
        result["slow_queries"] = read_slow_queries(cursor, params, notes)
    roles = []
    if "access" in sections:
        result["missing_roles"] = pg_catalog.missing_roles(cursor, params["roles"])
        if result["missing_roles"]:
            notes.append("access: no role %s on the server, so its privileges are not listed"
                         % ", ".join(result["missing_roles"]))
        roles = [r for r in params["roles"] if r not in result["missing_roles"]]
        result["access"] = read_access(cursor, tables, sorted(set(roles)))
    return result, [], []


def main():
    argument_spec = postgres.postgres_argument_spec()
    argument_spec.update(
        sections=dict(type="list", elements="str", choices=SECTIONS, default=list(SECTIONS)),
        tables=dict(type="list", elements="str", default=[]),
        slow_queries_limit=dict(type="int", default=10),
        slow_queries_match=dict(type="str", default=""),
        slow_queries_min_mean_ms=dict(type="float", default=0.0),
        roles=dict(type="list", elements="str", default=[]),
        statement_timeout_ms=dict(type="int", default=30000),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    problems = validate(p)
    if problems:
        module.fail_json(msg="; ".join(problems))

    conn = postgres.connect(module)  # fails with missing_required_lib() when there is no driver
    try:
        cursor = conn.cursor()
        found, missing, not_tables = diagnose(cursor, p)
        conn.rollback()  # nothing was written; end the read-only transaction
    except Exception as exc:
        hint = ""
        if postgres.sqlstate(exc) == QUERY_CANCELED:
            hint = " (statement_timeout_ms is %d: raise it, or narrow tables and sections)" % p["statement_timeout_ms"]
        # the password is a no_log option: AnsibleModule hides it in the message and the traceback, as for the
        # other postgres modules
        module.fail_json(msg="Cannot read the diagnostics of database %s: %s%s" % (p["db"], " ".join(str(exc).split()), hint),
                         exception=traceback.format_exc(), driver=postgres.DRIVER_NAME)
    finally:
        conn.close()

    if missing:
        module.fail_json(msg="Tables not found in database %s: %s" % (p["db"], ", ".join(missing)),
                         driver=postgres.DRIVER_NAME)
    if not_tables:
        module.fail_json(msg="tables: not a table in database %s: %s" % (p["db"], ", ".join(not_tables)),
                         driver=postgres.DRIVER_NAME)
    summary, msg = summarize(p["db"], p["sections"], len(set(p["roles"])), found)
    module.exit_json(changed=False, summary=summary, msg=msg, report=report_lines(msg, found), driver=postgres.DRIVER_NAME,
                     **found)


if __name__ == "__main__":
    main()
