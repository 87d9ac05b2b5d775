#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: outbox_requeue
short_description: Put failed rows of a transactional outbox back to pending, with counts
description:
  - Runs C(UPDATE <table> SET <status>='pending', <attempts>=0, <updated_at>=now() WHERE <status>='failed')
    with the optional filters O(max_age) (rows created within that interval) and O(min_attempts), so the
    outbox worker picks the rows up again.
  - Table and column names are quoted as identifiers by the driver and every value is a query parameter; no
    SQL is built from strings.
  - Counts the rows by status before and after, in the same transaction as the update.
  - With O(max_rows), refuses (and rolls back) when more rows would be requeued than that.
  - In check mode, counts the rows that would be requeued and changes nothing.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.postgres
options:
  table:
    description: The outbox table, C(table) (found through the C(search_path)) or C(schema.table); a name holding a
      C(.) or a C(") in double quotes, as SQL writes it (C(crm."order.items")).
    type: str
    default: outbox
  status_column:
    description: The column holding the row's status.
    type: str
    default: status
  attempts_column:
    description:
      - The column counting delivery attempts, reset to 0 and used by O(min_attempts).
      - Empty to neither reset nor filter on attempts.
    type: str
    default: attempts
  created_column:
    description: The column holding the row's creation time, used by O(max_age).
    type: str
    default: created_at
  updated_column:
    description: The column set to C(now()) on the requeued rows; empty to leave it alone.
    type: str
    default: updated_at
  failed_status:
    description: The status of the rows to requeue.
    type: str
    default: failed
  pending_status:
    description: The status they are given.
    type: str
    default: pending
  max_age:
    description:
      - Only rows created within this PostgreSQL interval before now, for example C(2 days) or C(6 hours).
      - Empty for no age limit.
    type: str
    default: ""
  min_attempts:
    description:
      - Only rows with at least this many attempts; 0 for no limit.
      - Needs O(attempts_column).
    type: int
    default: 0
  max_attempts:
    description:
      - Only rows with fewer than this many attempts (the runbooks' C(attempts < 3)); 0 for no limit.
      - Needs O(attempts_column).
    type: int
    default: 0
  reset_attempts:
    description: Set O(attempts_column) to 0 on the requeued rows.
    type: bool
    default: true
  null_columns:
    description: Columns set to NULL on the requeued rows, for example C(last_error).
    type: list
    elements: str
    default: []
  now_columns:
    description: Columns set to C(now()) on the requeued rows, for example C(scheduled_at) (delivery is due now).
    type: list
    elements: str
    default: []
  max_rows:
    description:
      - Refuse, and change nothing, when more than this many rows match; 0 for no limit.
      - The count and the update are in one transaction, so rows failing meanwhile cannot exceed it.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Counts the rows that would be requeued (RV(matched)) and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The rows are locked (C(SELECT ... FOR UPDATE)) while counted, so a worker updating them at the same time
    waits for the requeue to commit.
"""

EXAMPLES = r"""
- name: Requeue the failed messages of the last day that were tried at least 3 times
  shipshape.ops.outbox_requeue:
    db: sample_app
    max_age: 1 day
    min_attempts: 3
  become: true
  become_user: postgres
  register: requeued

- name: How many would be requeued (check mode counts, changes nothing)
  shipshape.ops.outbox_requeue:
    db: fastprep
    host: db.internal
    user: ops
    password: "{{ vault_ops_password }}"
    table: messaging.outbox
    updated_column: ""
  check_mode: true
"""

RETURN = r"""
matched:
  description: The rows that match (in check mode, that would be requeued).
  returned: always
  type: int
  sample: 5
requeued:
  description: The rows requeued (0 in check mode and when refused).
  returned: always
  type: int
  sample: 5
counts_before:
  description: Rows by status before the update.
  returned: always
  type: dict
  sample: {"failed": 5, "pending": 3, "sent": 40}
counts_after:
  description: Rows by status after the update (in check mode, as they would be).
  returned: always
  type: dict
  sample: {"pending": 8, "sent": 40}
driver:
  description: The Python library used, C(psycopg2) or C(psycopg).
  returned: always
  type: str
  sample: psycopg2
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import postgres

IDENTIFIER_OPTIONS = ("status_column", "attempts_column", "created_column", "updated_column")


def where_clause(params):
    """(sql.Composed WHERE ..., [values]) for the failed rows and the optional filters."""
    sql = postgres.sql
    conditions = [sql.SQL("{} = %s").format(sql.Identifier(params["status_column"]))]
    values = [params["failed_status"]]
    if params["max_age"]:
        conditions.append(sql.SQL("{} > now() - %s::interval").format(sql.Identifier(params["created_column"])))
        values.append(params["max_age"])
    if params["min_attempts"] and params["attempts_column"]:
        conditions.append(sql.SQL("{} >= %s").format(sql.Identifier(params["attempts_column"])))
        values.append(params["min_attempts"])
    if params["max_attempts"] and params["attempts_column"]:
        conditions.append(sql.SQL("{} < %s").format(sql.Identifier(params["attempts_column"])))
        values.append(params["max_attempts"])
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions), values


def count_query(table, params):
    """Lock and count the matching rows (FOR UPDATE cannot take count(*): count the locked ids)."""
    sql = postgres.sql
    where, values = where_clause(params)
    inner = sql.SQL("SELECT 1 FROM {}").format(sql.Identifier(*table)) + where + sql.SQL(" FOR UPDATE")
    return sql.SQL("SELECT count(*) FROM (") + inner + sql.SQL(") AS matched"), values


def update_query(table, params):
    sql = postgres.sql
    assignments = [sql.SQL("{} = %s").format(sql.Identifier(params["status_column"]))]
    values = [params["pending_status"]]
    if params["attempts_column"] and params["reset_attempts"]:
        assignments.append(sql.SQL("{} = 0").format(sql.Identifier(params["attempts_column"])))
    if params["updated_column"]:
        assignments.append(sql.SQL("{} = now()").format(sql.Identifier(params["updated_column"])))
    for column in params["null_columns"]:
        assignments.append(sql.SQL("{} = NULL").format(sql.Identifier(column)))
    for column in params["now_columns"]:
        assignments.append(sql.SQL("{} = now()").format(sql.Identifier(column)))
    where, where_values = where_clause(params)
    query = sql.SQL("UPDATE {} SET ").format(sql.Identifier(*table)) + sql.SQL(", ").join(assignments) + where
    return query, values + where_values


def status_counts(cursor, table, params):
    sql = postgres.sql
    query = sql.SQL("SELECT {col}::text, count(*) FROM {table} GROUP BY 1").format(
        col=sql.Identifier(params["status_column"]), table=sql.Identifier(*table))
    cursor.execute(query)
    return dict((str(status), int(count)) for status, count in cursor.fetchall())


def predicted(counts, params, matched):
    """The counts after requeuing `matched` rows (check mode)."""
    after = dict(counts)
    if matched:
        after[params["failed_status"]] = after.get(params["failed_status"], 0) - matched
        after[params["pending_status"]] = after.get(params["pending_status"], 0) + matched
    return dict((k, v) for k, v in after.items() if v)


def main():
    argument_spec = postgres.postgres_argument_spec()
    argument_spec.update(
        table=dict(type="str", default="outbox"),
        status_column=dict(type="str", default="status"),
        attempts_column=dict(type="str", default="attempts"),
        created_column=dict(type="str", default="created_at"),
        updated_column=dict(type="str", default="updated_at"),
        failed_status=dict(type="str", default="failed"),
        pending_status=dict(type="str", default="pending"),
        max_age=dict(type="str", default=""),
        min_attempts=dict(type="int", default=0),
        max_attempts=dict(type="int", default=0),
        reset_attempts=dict(type="bool", default=True),
        null_columns=dict(type="list", elements="str", default=[]),
        now_columns=dict(type="list", elements="str", default=[]),
        max_rows=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    try:
        table = postgres.split_table_name(p["table"])
    except ValueError as exc:
        module.fail_json(msg="table: %s" % exc)
    if not p["status_column"]:
        module.fail_json(msg="status_column cannot be empty")
    if p["max_age"] and not p["created_column"]:
        module.fail_json(msg="max_age needs created_column")
    for name in ("min_attempts", "max_attempts", "max_rows"):
        if p[name] < 0:
            module.fail_json(msg="%s cannot be negative, got %s" % (name, p[name]))
    # Without the column the filter would be dropped, and every failed row requeued.
    for name in ("min_attempts", "max_attempts"):
        if p[name] and not p["attempts_column"]:
            module.fail_json(msg="%s needs attempts_column" % name)
    if p["max_attempts"] and p["min_attempts"] >= p["max_attempts"]:
        module.fail_json(msg="min_attempts (%s) must be below max_attempts (%s): no row could match"
                         % (p["min_attempts"], p["max_attempts"]))
    touched = [p["status_column"], p["updated_column"]] + ([p["attempts_column"]] if p["reset_attempts"] else [])
    for name in ("null_columns", "now_columns"):
        for column in p[name]:
            if not column or column in touched:
                module.fail_json(msg="%s: %r is empty or a column the requeue already sets (%s)"
                                 % (name, column, ", ".join(c for c in touched if c)))
            touched.append(column)
    if p["failed_status"] == p["pending_status"]:
        module.fail_json(msg="failed_status and pending_status are both %r" % p["failed_status"])

    result = dict(changed=False, matched=0, requeued=0, counts_before={}, counts_after={},
                  driver=postgres.DRIVER_NAME)
    conn = postgres.connect(module)  # fails with missing_required_lib() when there is no driver
    refused = False
    try:
        cursor = conn.cursor()
        query, values = count_query(table, p)
        cursor.execute(query, values)
        result["matched"] = int(cursor.fetchone()[0])
        result["counts_before"] = status_counts(cursor, table, p)
        if p["max_rows"] and result["matched"] > p["max_rows"]:
            refused = True
        elif module.check_mode or not result["matched"]:
            result["counts_after"] = predicted(result["counts_before"], p, result["matched"])
        else:
            query, values = update_query(table, p)
            cursor.execute(query, values)
            result["requeued"] = int(cursor.rowcount)
            if p["max_rows"] and result["requeued"] > p["max_rows"]:
                # Rows marked failed after the count (it locked only the rows failed then) matched the UPDATE too.
                refused = True
                result.update(matched=result["requeued"], requeued=0)
            else:
                result["counts_after"] = status_counts(cursor, table, p)
        if result["requeued"]:
            conn.commit()
            result["changed"] = True
        else:
            conn.rollback()
    except Exception as exc:
        conn.rollback()
        module.fail_json(
            msg="Cannot requeue the %s rows of %s in database %s: %s"
            % (p["failed_status"], p["table"], p["db"], str(exc).strip()),
            exception=traceback.format_exc(), **result)
    finally:
        conn.close()

    if refused:
        result["counts_after"] = result["counts_before"]
        module.fail_json(msg="Refusing to requeue %d %s rows of %s: more than max_rows (%d). Nothing was changed."
                         % (result["matched"], p["failed_status"], p["table"], p["max_rows"]), **result)
    if module.check_mode and result["matched"]:
        result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
