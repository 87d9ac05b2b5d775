# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_derived_name: a database name with a suffix, within PostgreSQL's 63 bytes, as the restore derives its own."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.module_utils.postgres import MAX_IDENTIFIER_BYTES, derived_name


def pg_derived_name(name, suffix):
    name, suffix = str(name), str(suffix)
    if not name or len(suffix.encode("utf-8")) > MAX_IDENTIFIER_BYTES - 8:
        raise AnsibleFilterError("pg_derived_name: expected a name and a suffix of at most %d bytes, got %r and %r"
                                 % (MAX_IDENTIFIER_BYTES - 8, name, suffix))
    return derived_name(name, suffix)


class FilterModule:
    """PostgreSQL names."""

    def filters(self):
        return {"pg_derived_name": pg_derived_name}
