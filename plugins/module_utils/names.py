# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The names that reach a command line as one argv item, checked the same way everywhere.

A systemd unit (``systemctl``, ``journalctl --unit``) and a compose service (``docker compose ... SERVICE``)
start with a letter or digit, so a name can never be read as an option, and hold no space, quote, slash,
backslash or control character. systemd's own escapes (``\\x2d``) are refused on purpose: shipshape names the
units it writes, and a name that needs escaping is a mistake to stop on, not to pass on.
"""

from __future__ import annotations

import re

# systemd allows 255 characters in a unit name; compose service names are DNS labels (at most 63).
SYSTEMD_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.@-]{0,254}")
COMPOSE_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target")


def is_unit_name(value, suffixes=None):
    """Whether ``value`` is a systemd unit name; with ``suffixes``, one ending in one of them."""
    if not isinstance(value, str) or not SYSTEMD_UNIT.fullmatch(value):
        return False
    return suffixes is None or value.endswith(tuple(suffixes))


def is_compose_service(value):
    """Whether ``value`` is a compose service name."""
    return isinstance(value, str) and bool(COMPOSE_SERVICE.fullmatch(value))
