# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""env_file_value: a value of a service's environment file, quoted for the program that reads the file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.module_utils.env_files import quote_value


def env_file_value(value, syntax):
    try:
        return quote_value("" if value is None else str(value), syntax)
    except ValueError as exc:
        raise AnsibleFilterError("env_file_value: %s" % exc) from None


class FilterModule:
    """Environment files."""

    def filters(self):
        return {"env_file_value": env_file_value}
