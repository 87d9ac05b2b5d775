#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_archive_rows
short_description: Move a table's old rows into a checksummed CSV file, delete them in batches, then VACUUM ANALYZE
description:
  - The Zen Ops runbook's archiving of old rows, as one procedure that loses nothing. The rows whose O(time_column)
    is older than O(older_than) (the cut-off is fixed once, at the start) move, O(batch_size) at a time, into
    C(<dest>/<table>-<stamp>.csv.gz) (a C(/) in the name as C(_); CSV with a header, gzip) through
    C(COPY (DELETE ... RETURNING *) TO STDOUT).
    A batch's rows reach the file and are flushed to disk before its DELETE commits, so a failure can leave a row
    in both places, never in neither.
  - The file is written as C(.partial-<name>) and renamed, with its C(.sha256) beside it (the backup sets' format),
    once every batch is in. Files are 0600 in a 0700 O(dest). A name already taken (an archive of the same table
    in the same second) is never replaced; the file is then C(<table>-<stamp>-2.csv.gz), and so on.
  - O(max_rows) refuses, deleting nothing, when more rows match; the count and the refusal come before any change.
    At most RV(matched) rows move; old rows written during the run are left for the next one.
  - A table that a foreign key references C(ON DELETE CASCADE), C(SET NULL) or C(SET DEFAULT) is refused before any
    change, as deleting its rows would delete or change rows of another table, which the archive does not hold.
  - Ends with C(VACUUM (ANALYZE)) of the table (O(vacuum)).
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.postgres
options:
  table:
    description: The table, C(table) (found through the C(search_path)) or C(schema.table); a name holding a C(.) or a
      C(") in double quotes, as SQL writes it (C(crm."order.items")).
    type: str
    required: true
  time_column:
    description: The column whose age decides (a timestamp or date).
    type: str
    default: created_at
  older_than:
    description: A PostgreSQL interval; rows older than C(now() - older_than) move, for example C(90 days).
    type: str
    required: true
  dest:
    description: The directory of the archive files (created 0700 when missing), absolute.
    type: path
    required: true
  batch_size:
    description: Rows per batch (per DELETE and commit), 1 to 1000000.
    type: int
    default: 10000
  max_rows:
    description: Refuse, deleting nothing, when more rows than this match; 0 for no limit.
    type: int
    default: 0
  vacuum:
    description: Run C(VACUUM (ANALYZE)) on the table after the rows went.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Counts the rows that would move (RV(matched)) and writes and deletes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The rows are deleted by their C(tableoid) and C(ctid) within each batch's transaction, so the table needs no
    primary key, and a partitioned table loses only its old rows.
seealso:
  - module: shipshape.ops.outbox_requeue
"""

EXAMPLES = r"""
- name: Archive the audit rows older than 90 days
  shipshape.ops.pg_archive_rows:
    db: shop
    table: audit.events
    time_column: created_at
    older_than: 90 days
    dest: /var/backups/shop/archive
    max_rows: 1000000
  become: true
  become_user: postgres
  register: archived
"""

RETURN = r"""
matched:
  description: Rows older than the cut-off when the run started.
  returned: always
  type: int
archived:
  description: Rows moved into the file (and deleted from the table).
  returned: always
  type: int
cutoff:
  description: The cut-off time, as PostgreSQL printed it.
  returned: always
  type: str
file:
  description: The archive file (absent when nothing moved or in check mode).
  returned: when rows moved
  type: str
sha256:
  description: The file's sha256, also in C(<file>.sha256).
  returned: when rows moved
  type: str
vacuumed:
  description:
    - Whether C(VACUUM (ANALYZE)) ran.
    - False, with the server's warning among the task's warnings, when the server skipped it (a role that does
      not own the table).
  returned: always
  type: bool
"""

import gzip
import os
import re
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import checksums, postgres

# A PostgreSQL interval as people write it: "90 days", "6 hours", "1 year 2 months", "36h".
INTERVAL = re.compile(r"^\s*(\d+\s*[a-zA-Z]+\s*)+$")


def execute_noting_warnings(conn, cursor, query):
    """Run query; the warnings the server sent meanwhile. A VACUUM the role may not run is skipped with a warning,
    not an error."""
    if postgres.DRIVER_NAME == "psycopg2":
        conn.notices = []
        cursor.execute(query)
        return [n.strip() for n in conn.notices if not n.startswith(("NOTICE", "INFO", "LOG", "DEBUG"))]
    warnings = []

    def note(diagnostic):
        if diagnostic.severity_nonlocalized == "WARNING":
            warnings.append("WARNING:  %s" % diagnostic.message_primary)
    conn.add_notice_handler(note)
    try:
        cursor.execute(query)
    finally:
        conn.remove_notice_handler(note)
    return warnings


def copy_out(cursor, query, out):
    """Run COPY ... TO STDOUT into the file object ``out`` with either driver."""
    if postgres.DRIVER_NAME == "psycopg2":
        cursor.copy_expert(query.as_string(cursor.connection), out)
        return
    with cursor.copy(query) as copy:
        for chunk in copy:
            out.write(bytes(chunk))


# Foreign keys whose ON DELETE action changes other rows when a row of the table (or of a partition or child) goes.
CASCADING_KEYS = """
WITH RECURSIVE tree(oid) AS (
    SELECT %s::regclass::oid
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
SELECT DISTINCT c.conrelid::regclass::text, c.conname::text, c.confdeltype::text
FROM pg_constraint c JOIN tree ON c.confrelid = tree.oid
WHERE c.contype = 'f' AND c.confdeltype IN ('c', 'n', 'd') AND c.conparentid = 0
ORDER BY 1, 2
"""
ON_DELETE = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def regclass_name(table):
    """The table's parts as a regclass input, each in double quotes (matched exactly, as sql.Identifier does)."""
    return ".".join('"%s"' % part.replace('"', '""') for part in table)


def create_partial(dest, stem):
    """(name, fd) of a new C(.partial-<name>) in dest, for a name that no file has taken: C(<stem>.csv.gz), else
    C(<stem>-2.csv.gz)... An archive of the same table and second (another database's table of the same name, a
    second run) holds the only copy of its rows, and the rename at the end would replace it."""
    for number in range(1, 1000):
        name = "%s%s.csv.gz" % (stem, "" if number == 1 else "-%d" % number)
        if os.path.lexists(os.path.join(dest, name)):
            continue
        try:
            fd = os.open(os.path.join(dest, ".partial-" + name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:  # another run's file in progress
            continue
        return name, fd
    raise OSError("no free archive file name for %s in %s (%s.csv.gz to %s-999.csv.gz are taken)" % (stem, dest, stem, stem))


def main():
    argument_spec = postgres.postgres_argument_spec()
    argument_spec.update(
        table=dict(type="str", required=True),
        time_column=dict(type="str", default="created_at"),
        older_than=dict(type="str", required=True),
        dest=dict(type="path", required=True),
        batch_size=dict(type="int", default=10000),
        max_rows=dict(type="int", default=0),
        vacuum=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        table = postgres.split_table_name(p["table"])
    except ValueError as exc:
        module.fail_json(msg="table: %s" % exc)
    if not p["time_column"]:
        module.fail_json(msg="time_column: cannot be empty")
    if not INTERVAL.match(p["older_than"]):
        module.fail_json(msg="older_than: %r is not an interval such as '90 days' or '6 hours'" % p["older_than"])
    if not os.path.isabs(p["dest"]):
        module.fail_json(msg="dest: %r is not an absolute directory" % p["dest"])
    if not 1 <= p["batch_size"] <= 1000000:
        module.fail_json(msg="batch_size: %s is out of range: expected 1 to 1000000" % p["batch_size"])
    if p["max_rows"] < 0:
        module.fail_json(msg="max_rows: %s is negative: expected 0 (no limit) or more" % p["max_rows"])

    sql = postgres.sql
    ident = sql.Identifier(*table)
    column = sql.Identifier(p["time_column"])
    result = dict(changed=False, matched=0, archived=0, cutoff="", vacuumed=False, driver=postgres.DRIVER_NAME)
    conn = postgres.connect(module)
    partial = None
    try:
        cursor = conn.cursor()
        # The archive holds the deleted rows only: rows of other tables a cascade deletes or changes would be lost.
        cursor.execute(CASCADING_KEYS, [regclass_name(table)])
        cascades = cursor.fetchall()
        if cascades:
            conn.rollback()
            module.fail_json(msg="table: %s is referenced by %s: deleting its rows would delete or change rows there, which "
                                 "the archive does not hold. Nothing was changed; expected a table no foreign key "
                                 "cascades from (archive the referencing rows first)."
                                 % (p["table"], ", ".join("%s (%s) ON DELETE %s" % (child, name, ON_DELETE[action])
                                                          for child, name, action in cascades)), **result)
        cursor.execute(sql.SQL("SELECT now() - %s::interval"), [p["older_than"]])
        cutoff = cursor.fetchone()[0]
        result["cutoff"] = str(cutoff)
        cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} < %s").format(ident, column), [cutoff])
        result["matched"] = int(cursor.fetchone()[0])
        conn.rollback()
        if p["max_rows"] and result["matched"] > p["max_rows"]:
            module.fail_json(msg="Refusing to archive %d rows of %s older than %s: more than max_rows (%d). Nothing was "
                                 "changed." % (result["matched"], p["table"], p["older_than"], p["max_rows"]), **result)
        if module.check_mode or not result["matched"]:
            result["changed"] = bool(result["matched"])
            module.exit_json(**result)

        os.makedirs(p["dest"], mode=0o700, exist_ok=True)
        # A '/' is legal in a table's name, never in a file's: the file stays in dest.
        stem = "%s-%s" % (".".join(table).replace("/", "_"), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        name, fd = create_partial(p["dest"], stem)
        partial = os.path.join(p["dest"], ".partial-" + name)
        # A ctid is unique within one table only: a partitioned table (or one with inheritance children) has the
        # same ctids in each partition, so a row is named by its tableoid and ctid.
        pick = sql.SQL("SELECT tableoid::text, ctid::text FROM {} WHERE {} < %s LIMIT %s FOR UPDATE").format(ident, column)
        move = sql.SQL("COPY (DELETE FROM {t} WHERE ctid = ANY({ids}::tid[]) "
                       "AND (tableoid, ctid) IN (SELECT * FROM unnest({oids}::oid[], {ids}::tid[])) RETURNING *) "
                       "TO STDOUT WITH (FORMAT csv, HEADER {header})")
        left = sql.SQL("SELECT count(*) FROM {} WHERE ctid = ANY(%s::tid[]) "
                       "AND (tableoid, ctid) IN (SELECT * FROM unnest(%s::oid[], %s::tid[]))").format(ident)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename=name[:-3], mode="wb", fileobj=raw) as out:
                first = True
                while True:
                    # At most the rows counted (and allowed by max_rows): old rows written meanwhile (a backfill)
                    # wait for the next run, and a writer as fast as the archive cannot keep it running.
                    limit = min(p["batch_size"], result["matched"] - result["archived"])
                    rows = []
                    if limit > 0:  # the batch's rows, locked: the DELETE below removes exactly these
                        cursor.execute(pick, [cutoff, limit])
                        rows = cursor.fetchall()
                    if not rows:
                        conn.rollback()
                        break
                    oids, ids = [row[0] for row in rows], [row[1] for row in rows]
                    copy_out(cursor, move.format(t=ident, ids=sql.Literal(ids), oids=sql.Literal(oids),
                                                 header=sql.SQL("true" if first else "false")),
                             out)
                    # A trigger or rule that keeps the rows (a soft delete) would have the same batch picked
                    # forever: stop, with the batch rolled back.
                    cursor.execute(left, [ids, oids, ids])
                    kept = int(cursor.fetchone()[0])
                    if kept:
                        conn.rollback()
                        raise RuntimeError("%d rows of the batch were not deleted (a trigger or rule on %s keeps "
                                           "them?); the batch was rolled back" % (kept, p["table"]))
                    moved = len(rows)
                    # The rows are on disk before their DELETE commits.
                    out.flush()
                    raw.flush()
                    os.fsync(raw.fileno())
                    conn.commit()
                    first = False
                    result["archived"] += moved
                    result["changed"] = True
            raw.flush()
            os.fsync(raw.fileno())
        final = os.path.join(p["dest"], name)
        os.rename(partial, final)
        partial = None
        sums = checksums.write(p["dest"], name)
        result.update(file=final, sha256=sums["sha256"])
        if p["vacuum"]:
            conn.autocommit = True
            cursor = conn.cursor()
            skipped = execute_noting_warnings(conn, cursor, sql.SQL("VACUUM (ANALYZE) {}").format(ident))
            for warning in skipped:
                module.warn("VACUUM (ANALYZE) of %s: %s" % (p["table"], warning))
            result["vacuumed"] = not skipped
    except Exception as exc:  # pylint: disable=broad-except
        try:
            conn.rollback()
        except Exception:  # pylint: disable=broad-except
            pass
        module.fail_json(msg="Archiving the rows of %s older than %s stopped after %d rows: %s%s"
                             % (p["table"], p["older_than"], result["archived"], str(exc).strip(),
                                (" (the rows moved so far are in %s)" % partial) if partial and result["archived"] else ""),
                         exception=traceback.format_exc(), **result)
    finally:
        if partial and not result["archived"] and os.path.exists(partial):
            os.unlink(partial)
        conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
