#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_backup_manifest
short_description: Describe a PostgreSQL database for a backup manifest (the whole catalog, revision, row counts)
description:
  - Connects to a database and collects what a backup manifest records so that a restore can be checked against
    it later, the server version, the schema revision the application's migrations reached, and, with
    O(catalog=true), the whole database discovered from its catalogs (RV(manifest.catalog)), every table
    (partitions and their parents told apart, rows counted on the leaves only), sequences with their values,
    views, materialized views, functions and procedures, schemas, extensions, owners, grants, default privileges,
    each table's indexes, constraints, triggers and row level security policies (by name, as PostgreSQL prints
    them) and whether row level security is enabled or forced, and the roles all of these name.
  - O(tables) only adds names to count (RV(manifest.row_counts), as before) and to require; it never narrows what
    the catalog describes.
  - Reads only, in one C(REPEATABLE READ READ ONLY) transaction, so all row counts come from the same snapshot
    and O(revision_query) cannot write. It never reports a change.
  - A named table that does not exist is listed in RV(manifest.tables_missing) and fails the module only with
    O(fail_on_missing=true).
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.postgres
options:
  tables:
    description:
      - Tables whose rows to count with C(SELECT count(*)), each C(table) (found through the C(search_path)) or
        C(schema.table).
      - Names are matched exactly as given, case included, as quoted identifiers are; a name holding a C(.) or a C(")
        in double quotes, as SQL writes it (C(crm."order.items")).
    type: list
    elements: str
    default: []
  revision_query:
    description:
      - A query whose first column of the first row is the schema revision (C(null) when it returns no rows).
      - The default reads Alembic's revision. When the query's table does not exist (a database the
        migrations never ran on), the revision is C(null), not an error; other errors fail the module.
      - An empty string skips the query.
    type: str
    default: SELECT version_num FROM alembic_version
  catalog:
    description:
      - Describe the whole database in RV(manifest.catalog) (see M(shipshape.ops.pg_drill), which checks a restored
        copy against it).
    type: bool
    default: true
  fail_on_missing:
    description: Fail when one of O(tables) does not exist (they are listed in RV(manifest.tables_missing) either way).
    type: bool
    default: false
  extra:
    description:
      - Keys to add to RV(manifest), for example the name and checksum of the dump file.
      - Collected keys take precedence over keys of the same name in O(extra).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: The module only reads, and runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: community.postgresql.postgresql_info
"""

EXAMPLES = r"""
- name: Describe the database next to its dump (peer authentication over the Unix socket)
  shipshape.ops.pg_backup_manifest:
    db: sample_app
    tables: [users, orders, audit.events]
    extra:
      dump: /var/backups/sample_app/sample_app-20261125.dump
  become: true
  become_user: postgres
  register: backup_manifest

- name: Write the manifest
  ansible.builtin.copy:
    content: "{{ backup_manifest.manifest | to_nice_json }}"
    dest: /var/backups/sample_app/sample_app-20261125.manifest.json
    mode: "0640"

- name: Over TCP, a Django app's latest migration as the revision, failing when a table is gone
  shipshape.ops.pg_backup_manifest:
    db: shop
    host: db.internal
    user: backup
    password: "{{ vault_backup_password }}"
    tables: [shop_order]
    revision_query: SELECT app || ':' || name FROM django_migrations ORDER BY id DESC LIMIT 1
    fail_on_missing: true
"""

RETURN = r"""
manifest:
  description: What the database holds now, with the keys of O(extra) added.
  returned: always
  type: dict
  contains:
    database:
      description: The database's name (C(current_database())).
      type: str
      sample: sample_app
    server_version:
      description: The server's C(server_version) setting.
      type: str
      sample: 15.8 (Debian 15.8-0+deb12u1)
    revision:
      description: The schema revision from O(revision_query), or C(null) when its table does not exist, it
        returned no rows, or O(revision_query) is empty.
      type: str
      sample: 3f2a1b9c0d4e
    row_counts:
      description: Row count of each existing table of O(tables), under the name as given.
      type: dict
      sample: {"users": 1200, "audit.events": 53111}
    tables_missing:
      description: The names of O(tables) that do not exist.
      type: list
      elements: str
      sample: ["orders"]
    catalog:
      description:
        - The whole database, with O(catalog=true). C(tables) (by C(schema.name), a part holding C(.) or C(") in
          double quotes as SQL writes it, C(a."b.c"); each with C(kind) C(table),
          C(partitioned table) or C(foreign table), C(parent) for a partition, C(rows) (a parent's is the sum of its
          leaves), C(owner), C(acl), C(column_acl), C(indexes), C(constraints), C(triggers) and C(policies) (each
          name to its definition, as C(pg_get_indexdef), C(pg_get_constraintdef), C(pg_get_triggerdef) print it) and
          C(row_security) (C(disabled) or C(enabled), C(, forced) added when forced)), C(sequences) (C(last_value),
          C(is_called)), C(views) (C(triggers)), C(materialized_views) (C(populated), C(rows), C(indexes)),
          C(functions) (by C(schema.name(args))), C(schemas), C(extensions) (name to version), C(default_privileges),
          C(database_locale) (C(encoding), C(collate), C(ctype), C(provider) and its C(locale), which pg_dump does not
          carry), C(large_objects) (how many each role owns), C(roles) (the roles the objects name, which a restore needs) and C(totals).
        - ACLs are C(aclitem) texts; a default ACL is written out with C(acldefault()), so it compares equal.
        - Objects that belong to an extension are left out (C(CREATE EXTENSION) makes them).
      type: dict
      returned: when O(catalog=true)
      sample: {"tables": {"public.notes": {"kind": "table", "parent": null, "rows": 2, "owner": "app",
               "acl": ["app=arwdDxt/app", "reader=r/app"]}}, "totals": {"tables": 1, "leaf_tables": 1, "rows": 2}}
    collected_at:
      description: When the counts were taken (UTC, ISO 8601).
      type: str
      sample: "2026-11-25T09:00:00Z"
driver:
  description: The Python library used, C(psycopg2) or C(psycopg).
  returned: always
  type: str
  sample: psycopg2
"""

import traceback
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import postgres


def collect(cursor, params):
    manifest = dict(params["extra"])
    manifest.update(postgres.describe(cursor, params["tables"], params["revision_query"], catalog=params["catalog"]))
    manifest["collected_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return manifest


def main():
    argument_spec = postgres.postgres_argument_spec()
    argument_spec.update(
        tables=dict(type="list", elements="str", default=[]),
        revision_query=dict(type="str", default="SELECT version_num FROM alembic_version"),
        fail_on_missing=dict(type="bool", default=False),
        catalog=dict(type="bool", default=True),
        extra=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    for name in module.params["tables"]:
        try:
            postgres.split_table_name(name)
        except ValueError as exc:
            module.fail_json(msg="tables: %s" % exc)

    conn = postgres.connect(module)  # fails with missing_required_lib() when there is no driver
    try:
        cursor = conn.cursor()
        manifest = collect(cursor, module.params)
        conn.rollback()  # nothing was written; end the read-only transaction
    except Exception as exc:
        module.fail_json(
            msg="Cannot collect the manifest of database %s: %s" % (module.params["db"], str(exc).strip()),
            driver=postgres.DRIVER_NAME,
            exception=traceback.format_exc(),
        )
    finally:
        conn.close()

    result = dict(changed=False, manifest=manifest, driver=postgres.DRIVER_NAME)
    if manifest["tables_missing"] and module.params["fail_on_missing"]:
        module.fail_json(msg="Tables not found in database %s: %s"
                         % (manifest["database"], ", ".join(manifest["tables_missing"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
