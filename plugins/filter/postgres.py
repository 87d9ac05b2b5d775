# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_derived_name: a database name with a suffix, within PostgreSQL's 63 bytes, as the restore derives its own."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.module_utils.postgres import derived_name


def pg_derived_name(name, suffix):
    try:
        return derived_name(str(name), str(suffix))
    except ValueError as exc:
        raise AnsibleFilterError("pg_derived_name: %s" % exc) from None


class FilterModule:
    """PostgreSQL names."""

    def filters(self):
        return {"pg_derived_name": pg_derived_name}
