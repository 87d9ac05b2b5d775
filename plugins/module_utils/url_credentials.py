# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The credentials a URL carries in itself (scheme://user:password@host), found, masked or taken out in one place:
the health probes' messages, the log search's redaction, release records and the git source all read URLs the
same way."""

from __future__ import annotations

import re

from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

# The password runs to the last @ before the path or a quote: a raw @ in it (p@ss) must not leave its end shown.
URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s/\"'<>]+@")
# The user information of a URL (https://user:token@host/...), up to its last '@' before the path: a credential.
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def mask_passwords(text, mask):
    """TEXT with the password of each URL in it replaced by MASK (scheme://user:MASK@host): the user stays, to
    tell which account a message is about."""
    return URL_PASSWORD.sub(r"\1:" + mask.replace("\\", "\\\\") + "@", text)


def without_credentials(text):
    """TEXT with the user information of each URL in it taken out (https://ci:token@host/app.git reads
    https://host/app.git): a record of where a release came from is readable by every user of the host."""
    return URL_USERINFO.sub(r"\1", text)


def url_secrets(url):
    """What a URL holds that must not be shown, as written and as it is read: its password
    (https://ci:token@host/app.git), or a long user name given alone, which is a token (https://<token>@host/).
    A short one alone (ssh://git@host/) is a user name: masked everywhere, it would mask a common word; messages
    and records leave the user information out whole anyway (without_credentials)."""
    try:
        parts = urlsplit(url)
        secret = parts.password or (parts.username if parts.username and len(parts.username) >= 16 else None)
    except ValueError:
        return []
    return sorted(set(value for value in (secret, unquote(secret or "")) if value))
