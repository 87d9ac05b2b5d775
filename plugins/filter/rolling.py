# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling deploys: the play's serial from deploy_serial and deploy_canary, and the batches Ansible makes of it.

A play's serial is worked out before any host is chosen, so Ansible reads it from extra vars and play vars only:
deploy_serial set in an inventory's group_vars is silently not used. rolling_batches lets the deploy's first task
see what batches the play was meant to make, so a host whose own variables ask for other batches is refused
instead of deployed all at once.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

PERCENT = re.compile(r"^([1-9][0-9]?|100)%$")
#: ASCII digits only: str.isdigit() also takes "²", which int() refuses.
WHOLE = re.compile(r"\A[0-9]+\Z")


def _batch_size(value, name):
    """A batch size as Ansible's serial takes it: a positive whole number or 'N%' (1 to 100)."""
    if isinstance(value, bool):
        raise AnsibleFilterError("%s %r must be a whole number of hosts (at least 1) or a percentage like '30%%'" % (name, value))
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if PERCENT.match(text):
            return text
        if not WHOLE.match(text):
            raise AnsibleFilterError("%s %r must be a whole number of hosts (at least 1) or a percentage like '30%%'" % (name, value))
        number = int(text)
    if number < 1:
        raise AnsibleFilterError("%s %r must be a whole number of hosts (at least 1) or a percentage like '30%%'" % (name, value))
    return number


def rolling_serial(serial, canary=0):
    """The play's serial list: [canary, serial] with a canary (deployed and gated alone first), else [serial]."""
    size = _batch_size(serial, "deploy_serial")
    if isinstance(canary, bool) or not WHOLE.match(str(canary).strip()):
        raise AnsibleFilterError("deploy_canary %r must be 0 (no canary) or a whole number of hosts" % (canary,))
    canary = int(str(canary).strip())
    return [canary, size] if canary > 0 else [size]


def _count(size, total):
    # As Ansible's pct_to_int: a percentage of every host in the play, rounded down, at least one.
    if isinstance(size, str):
        return int(int(size[:-1]) / 100.0 * total) or 1
    return size


def rolling_batches(hosts, serial):
    """The batches a play with this serial list makes of hosts, in order (the last size repeats)."""
    sizes = serial if isinstance(serial, list) else [serial]
    sizes = [_batch_size(size, "serial") for size in sizes] or ["100%"]
    pending = list(hosts)
    total = len(pending)
    batches = []
    index = 0
    while pending:
        count = _count(sizes[index], total)
        batches.append(pending[:count])
        pending = pending[count:]
        index = min(index + 1, len(sizes) - 1)
    return batches


def rolling_max_fail(value):
    """deploy_max_fail_percentage as a whole percentage, 0 (any lost host stops the rest) to 100, as the play keyword
    it replaces; checked before the lock and again after each batch."""
    text = str(value).strip()
    if isinstance(value, bool) or not WHOLE.match(text) or int(text) > 100:
        raise AnsibleFilterError("deploy_max_fail_percentage %r must be a whole percentage from 0 (no host of a batch may "
                                 "fail) to 100" % (value,))
    return int(text)


def rolling_losses(active, hosts, serial, max_fail_percentage=0, failed=None):
    """The batch that the active hosts (ansible_play_batch) belong to, the hosts it lost (failed, or unreachable: no
    longer active), their share of it, and whether that is more than max_fail_percentage allows, so that the batches
    after it must not start. failed: active hosts whose deploy failed (the play rescued them so that the batch's count
    runs even when every host of it failed; Ansible ends the whole run, later plays too, after a batch that failed
    entirely). Ansible counts only failed hosts against a play's max_fail_percentage, and reads it from extra vars
    only; this counts both, with the value each host sees."""
    limit = rolling_max_fail(max_fail_percentage)
    active = list(active)
    failed = [host for host in (failed or []) if host]
    batches = rolling_batches(hosts, serial)
    for number, batch in enumerate(batches, start=1):
        if any(host in batch for host in active):
            unreachable = [host for host in batch if host not in active]
            lost = [host for host in batch if host not in active or host in failed]
            percent = round(100.0 * len(lost) / len(batch), 1)
            return dict(batch=number, batches=len(batches), hosts=batch, lost=lost, lost_percent=percent,
                        failed=[host for host in lost if host not in unreachable], unreachable=unreachable,
                        max_fail_percentage=limit, stop=percent > limit,
                        later=[host for later in batches[number:] for host in later])
    raise AnsibleFilterError("none of the active hosts %s is in a batch of %s" % (active, list(hosts)))


def _released(result):
    # The lock's release task as registered: missing (the host was lost before it), failed or skipped is not released.
    return isinstance(result, dict) and not result.get("failed") and not result.get("skipped")


def rolling_rollout(hosts, active, facts, switch_back_wanted=False):
    """How a rolling deploy ended, from each host's facts (hostvars): whether a batch stopped the rollout (its
    deploy_batch_result) and which, the hosts whose deploy failed (deploy_failure, set by the Deploy play's rescue),
    the hosts lost for good (not active), the hosts that took their deploy lock and never released it (stale locks),
    and whether the hosts deployed are to be switched back."""
    active = list(active)
    per_host = [(host, facts[host]) for host in hosts]
    stopped_by = [found.get("deploy_batch_result") for _host, found in per_host
                  if isinstance(found.get("deploy_batch_result"), dict) and found.get("deploy_batch_result").get("stop")]
    return dict(
        stopped=bool(stopped_by),
        stopped_after=stopped_by[0] if stopped_by else {},
        failed=[host for host, found in per_host if found.get("deploy_failure")],
        unreachable=[host for host in hosts if host not in active],
        stale_locks=[host for host, found in per_host
                     if (found.get("__deploy_lock_taken") or {}).get("acquired")
                     and not _released(found.get("__deploy_lock_released"))],
        switch_back=bool(switch_back_wanted) and bool(stopped_by),
    )


class FilterModule:
    """Rolling deploy batches."""

    def filters(self):
        return {"rolling_serial": rolling_serial, "rolling_batches": rolling_batches, "rolling_losses": rolling_losses,
                "rolling_max_fail": rolling_max_fail, "rolling_rollout": rolling_rollout}
