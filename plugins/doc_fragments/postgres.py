# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options of the shipshape.ops modules that talk to PostgreSQL."""

    DOCUMENTATION = r"""
options:
  db:
    description: The database to connect to.
    type: str
    required: true
  host:
    description:
      - The server's host name or address.
      - When empty, the module connects through the local Unix socket (see O(unix_socket)), where
        C(peer) authentication lets the OS user the module runs as (for example with
        C(become_user=postgres)) log in as the database role of the same name without a password.
    type: str
    default: ""
  port:
    description: The server's port (also the suffix of the Unix socket's name).
    type: int
    default: 5432
  user:
    description:
      - The database role to log in as.
      - When empty, libpq's default applies, which is the name of the OS user the module runs as.
    type: str
    default: ""
  password:
    description: The role's password. Not needed for C(peer) or C(trust) authentication.
    type: str
    default: ""
  unix_socket:
    description:
      - The directory holding the server's Unix socket, used when O(host) is empty.
      - When empty, libpq's compiled-in default applies (C(/var/run/postgresql) on Debian).
    type: path
    default: ""
  connect_timeout:
    description: Seconds to wait for the connection before failing.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian C(python3-psycopg2)) or psycopg 3 on the host that runs the module
notes:
  - The module prefers psycopg2 when both libraries are installed.
"""
