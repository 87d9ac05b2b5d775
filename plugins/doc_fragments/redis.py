# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options of the shipshape.ops modules that talk to Redis (module_utils.redis_client)."""

    DOCUMENTATION = r"""
options:
  host:
    description: The server's host name or address.
    type: str
    default: localhost
  port:
    description: The server's port (1 to 65535).
    type: int
    default: 6379
  db:
    description: The database number.
    type: int
    default: 0
  username:
    description: The ACL user to authenticate as (Redis 6+); empty for the C(default) user.
    type: str
    default: ""
  password:
    description: The password (C(requirepass) or the ACL user's); empty for none.
    type: str
    default: ""
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  ca_cert:
    description: With O(tls=true), a CA bundle to verify the server's certificate against instead of the system's.
    type: path
    default: ""
  validate_certs:
    description: With O(tls=true), whether to verify the server's certificate and host name.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the connection and for each reply (above 0).
    type: float
    default: 10.0
"""
