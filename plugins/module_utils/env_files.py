# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values of a service's environment file, written so that its reader gets them back byte for byte.

Two readers, two syntaxes:

- systemd's ``EnvironmentFile=``: inside double quotes a backslash escapes only ``"``, ``\\``, ``$`` and a backquote,
  and keeps any other backslash (so JSON's ``\\t`` or ``\\u00e9`` would reach the service as written). Those four
  are the characters a POSIX shell's double quotes treat specially too, so the value is double-quoted with exactly
  them escaped and everything else as it is (UTF-8): systemd and ``set -a; . app.env`` (how runbooks run a one-off
  command with the service's environment) read the same value.
- docker compose's ``env_file`` (compose-go): a double-quoted value expands ``$VAR`` and ``${VAR}`` and reads
  ``\\t``, ``\\n``, ``\\"``, ``\\\\`` and ``\\$`` as escapes. The value is double-quoted with ``\\``, ``"`` and ``$``
  escaped, so a password with a ``$`` in it is not cut at its first ``$``.

A line break, a carriage return or a NUL has no place in either file (the roles refuse them before this runs:
``check_vars`` kind ``env``); they are refused here too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

_FORBIDDEN = ("\n", "\r", "\0")
_ESCAPED = {
    "systemd": ("\\", '"', "$", "`"),
    "compose": ("\\", '"', "$"),
}
SYNTAXES = tuple(_ESCAPED)


def quote_value(value, syntax):
    """VALUE (a string) as the double-quoted right-hand side of a NAME=value line of SYNTAX's environment file.

    Raises ValueError for an unknown syntax or a value with a line break, a carriage return or a NUL."""
    if syntax not in _ESCAPED:
        raise ValueError("unknown environment file syntax %r (expected one of: %s)" % (syntax, ", ".join(SYNTAXES)))
    if any(char in value for char in _FORBIDDEN):
        raise ValueError("an environment file value cannot hold a line break, a carriage return or a NUL")
    out = []
    for char in value:
        if char in _ESCAPED[syntax]:
            out.append("\\")
        out.append(char)
    return '"%s"' % "".join(out)
