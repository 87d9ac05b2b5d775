#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_history
short_description: Append to or read an app's deploy history (JSON lines)
description:
  - The deploy history of an app on a host is a JSON-lines file; each deploy or rollback appends one record
    (who, when, from, to, result, duration).
  - Reading it returns the records and the previous good release, which is what a rollback goes back to
    (from history, never from file times), and the rollback that put the current release in place when nothing
    has been switched since (so a second rollback right after the first one changes nothing).
  - O(action=rollback) chooses a rollback's target from the history in the same run, refuses when there is none
    or it is not on the host, and appends the rollback's C(started) record (its intent) before the caller switches,
    so that a rollback stopped after its switch is finished by the next one instead of going one release further
    back.
  - With O(action=append) and O(metrics_file), the same run writes the run's series into a node_exporter textfile,
    as M(shipshape.ops.prometheus_textfile) does (the series of O(metrics_labels) replaced, other writers' kept), so
    the record and the metrics of one run take one call. The metrics are checked before the record is appended, and
    written after it; writing them reports no change of its own.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.prometheus_metrics
options:
  path:
    description: The history file.
    type: path
    required: true
  action:
    description: C(append) adds O(record); C(read) returns the history; C(rollback) chooses a rollback's target and
      records its intent.
    type: str
    choices: [append, read, rollback]
    default: read
  record:
    description:
      - The record to append. C(at) is filled in when missing.
      - With O(action=rollback), the fields of the C(started) record besides C(kind), C(from), C(to) and C(result)
        (for example C(user) and C(message)).
    type: dict
    default: {}
  report_change:
    description:
      - Whether an append reports a change. A deploy that changed nothing still records its run, without
        reporting a change.
    type: bool
    default: true
  current:
    description:
      - With O(action=read) or O(action=rollback), the release running now. C(previous_good) is the newest other
        release that a
        successful deploy or rollback switched to, leaving out any release a rollback moved away from (or set out
        to, by its C(started) record), unless a successful deploy switched to it again after that rollback.
    type: str
    default: ""
  exclude:
    description: With O(action=read) or O(action=rollback), release ids never to return as C(previous_good) (for
      example failed ones).
    type: list
    elements: str
    default: []
  limit:
    description: With O(action=read), how many of the newest records to return (0 for all).
    type: int
    default: 50
  to:
    description: With O(action=rollback), the release asked for (C(rollback_to)); empty, the history chooses.
    type: str
    default: ""
  releases:
    description: With O(action=rollback), the ids of the releases on the host; the target must be one of them.
    type: list
    elements: str
    default: []
  host:
    description: With O(action=rollback), the host's name, for the messages.
    type: str
    default: this host
  metrics_file:
    description: With O(action=append), the node_exporter textfile (C(*.prom)) to write O(metrics) into; empty, no
      metrics are written. Its directory is created (0755) when missing; the file is written atomically, mode 0644.
    type: path
    default: ""
  metrics_labels:
    description: Labels added to every series of O(metrics); they identify the series this call replaces.
    type: dict
    default: {}
  metrics_prefix:
    description: When set, every metric must start with it, and every family in the file that starts with it is owned
      by this call (its series with O(metrics_labels) are removed unless written again).
    type: str
    default: ""
  metrics:
    description: With O(metrics_file), the run's metrics (refused without it).
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record a deploy
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    action: append
    record: {kind: deploy, user: alice, from: 1.0.0-ab12cd34, to: 2.0.0-ef56ab78, result: success, duration_s: 42}

- name: Choose the release to roll back to, and record the rollback's intent
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    action: rollback
    current: 2.0.0-ef56ab78
    releases: [1.0.0-ab12cd34, 2.0.0-ef56ab78]
    host: app1
    record: {user: alice, message: "5xx after 2.0.0"}
  register: rollback

- name: Record a rollback, and its metrics for the alerting rules
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    action: append
    record: {kind: rollback, user: alice, from: 2.0.0-ef56ab78, to: 1.0.0-ab12cd34, result: success, duration_s: 4.1}
    metrics_file: /var/lib/prometheus/node-exporter/shipshape_deploy.prom
    metrics_prefix: shipshape_rollback_
    metrics_labels: {app: sample_app}
    metrics:
      - name: shipshape_rollback_success
        help: 1 when this app's last rollback succeeded.
        value: 1

- name: Find the previous good release
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    current: 2.0.0-ef56ab78
  register: history
"""

RETURN = r"""
entries:
  description: The newest records, oldest first.
  returned: action=read
  type: list
  elements: dict
previous_good:
  description: The release to roll back to, or an empty string when the history names none.
  returned: action=read
  type: str
rollback_in_effect:
  description:
    - With O(action=read), the record of the rollback that switched to O(current), when no successful deploy or
      rollback has switched since (a rollback retried right after it finds this and changes nothing); else C({}).
      A rollback whose release then failed its health gate (C(unhealthy)) counts, since it switched.
      So does a rollback's C(started) record (written before its switch) when O(current) is its target - the rollback
      was stopped after its switch, and a retry finishes it rather than going one release further back.
  returned: action=read or action=rollback
  type: dict
  sample: {"kind": "rollback", "from": "2.0.0-ef56ab78", "to": "1.0.0-ab12cd34", "result": "success",
           "user": "alice@laptop", "at": "2026-12-02T15:00:00Z"}
record:
  description: The record appended (with O(action=rollback), the C(started) record, or C({}) when the target already
    runs).
  returned: action=append or action=rollback
  type: dict
target:
  description: The release to roll back to - O(to), else the release a rollback in effect switched to, else the
    previous good one.
  returned: action=rollback
  type: str
from:
  description: The release the rollback leaves - O(current), or where an interrupted rollback set out from.
  returned: action=rollback
  type: str
already:
  description: A rollback right after a rollback, not interrupted - what runs stays.
  returned: action=rollback
  type: bool
interrupted:
  description: The last rollback stopped after its switch (its C(started) record names the release running now).
  returned: action=rollback
  type: bool
metrics:
  description: With O(metrics_file), what was written there - C(path), C(written), C(removed) and C(kept) as
    M(shipshape.ops.prometheus_textfile) returns them (the content is not returned); C({}) without.
  returned: action=append
  type: dict
"""

import json
import os
import traceback
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import prometheus_text

GOOD = ("success",)
# A rollback records its intent (from, to) before it switches; its outcome follows as a second record.
STARTED = "started"
FIELDS = ("kind", "result", "from", "to")


def read_entries(path):
    """The records of the history, oldest first: a line that is not a JSON object (a torn line from a killed run,
    bytes that are not UTF-8) or whose FIELDS are not strings is skipped, so it never hides the rest."""
    entries = []
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    entry = json.loads(line.decode("utf-8"))
                except ValueError:  # UnicodeDecodeError is one too; so is an empty line
                    continue
                # A record whose kind, result, from or to is not a string (or null) says nothing a choice can use
                # (and a list there cannot be looked up in a set of ids).
                if isinstance(entry, dict) and all(isinstance(entry.get(k), (str, type(None))) for k in FIELDS):
                    entries.append(entry)
    except FileNotFoundError:
        pass
    return entries


def previous_good(entries, current, exclude):
    """The newest release a successful run switched to, other than current, the excluded ones, and any
    release a rollback moved away from (it was live and found wanting) unless a successful deploy has
    switched to it again since."""
    rolled_back_from = set()
    for entry in entries:
        if entry.get("kind") == "rollback" and entry.get("result") == STARTED:
            # a rollback that may have been killed after its switch: what it left is never a retry's target
            rolled_back_from.add(entry.get("from"))
        if entry.get("result") not in GOOD:
            continue
        if entry.get("kind") == "rollback":
            rolled_back_from.add(entry.get("from"))
        elif entry.get("kind") == "deploy":
            rolled_back_from.discard(entry.get("to"))
    skip = set(exclude) | rolled_back_from | {current}
    for entry in reversed(entries):
        target = entry.get("to") or ""
        if entry.get("result") in GOOD and target and target not in skip:
            return target
    return ""


def rollback_in_effect(entries, current):
    """The rollback record that switched to CURRENT, if the newest run that switched anything is that rollback; a
    rollback's 'started' record when it was stopped after its switch (CURRENT is its target), so a retry finishes it
    instead of going one release further back."""
    if not current:
        return {}
    for entry in reversed(entries):
        rollback = entry.get("kind") == "rollback"
        if rollback and entry.get("result") == STARTED and entry.get("to") != current:
            continue  # stopped before its switch: what runs did not change
        switched = entry.get("result") in GOOD or (rollback and entry.get("result") in ("unhealthy", STARTED))
        if not switched:
            continue  # unchanged, refused, rolled back by the deploy itself: what runs did not change
        if entry.get("kind") == "rollback" and entry.get("to") == current:
            return entry
        return {}
    return {}


class Refused(Exception):
    """A rollback with nothing to go back to."""


def choose_rollback(entries, current, to, releases, exclude, host):
    """The rollback's plan: target, from, already, interrupted, previous_good, rollback_in_effect; Refused when the
    target is empty or not on the host."""
    in_effect = rollback_in_effect(entries, current)
    good = previous_good(entries, current, exclude)
    interrupted = not to and in_effect.get("result") == STARTED
    target = to or (current if in_effect else good)
    there = ", ".join(releases) or "none"
    if not target:
        raise Refused("No previous good release in the history of %s; name one with rollback_to (releases there: %s)."
                      % (host, there))
    if target not in releases:
        raise Refused("rollback_to: release '%s' does not exist on %s (releases there: %s)." % (target, host, there))
    return {"target": target, "from": in_effect.get("from", "") if interrupted else current,
            "already": not to and bool(in_effect) and not interrupted, "interrupted": interrupted,
            "previous_good": good, "rollback_in_effect": in_effect}


def append(module, path, record):
    """RECORD with its time, appended (and synced) unless in check mode."""
    record = dict(record)
    record.setdefault("at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if not module.check_mode:
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            module.fail_json(msg="The history directory %s does not exist" % directory)
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # a torn last line (a killed run) must not swallow this record
                data = line.encode("utf-8")
                while data:  # a short write (a disk filling up) writes the rest, or fails on it
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            module.fail_json(msg="release_history: cannot append to %s: %s" % (path, exc.strerror or exc))
    return record


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            action=dict(type="str", choices=["append", "read", "rollback"], default="read"),
            record=dict(type="dict", default={}),
            report_change=dict(type="bool", default=True),
            current=dict(type="str", default=""),
            exclude=dict(type="list", elements="str", default=[]),
            limit=dict(type="int", default=50),
            to=dict(type="str", default=""),
            releases=dict(type="list", elements="str", default=[]),
            host=dict(type="str", default="this host"),
            metrics_file=dict(type="path", default=""),
            metrics_labels=dict(type="dict", default={}),
            metrics_prefix=dict(type="str", default=""),
            metrics=dict(type="list", elements="dict", default=[], options=prometheus_text.METRIC_OPTIONS),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["limit"] < 0:
        module.fail_json(msg="release_history: limit is %d; expected how many of the newest records to return (0 for all)"
                         % p["limit"])
    if os.path.lexists(p["path"]) and not os.path.isfile(p["path"]):
        # A directory (or a FIFO, which would hold the run) is no history: one message, not a traceback or a hang.
        module.fail_json(msg="release_history: path '%s' is not a regular file; expected the history file (JSON lines) "
                         "or nothing there" % p["path"])
    if p["metrics_file"] and p["action"] != "append":
        module.fail_json(msg="metrics_file '%s': metrics are written with action=append only (action is %s)"
                         % (p["metrics_file"], p["action"]))
    if p["metrics"] and not p["metrics_file"]:
        # Metrics with nowhere to go would be dropped without a word.
        module.fail_json(msg="metrics: %d given, but metrics_file is empty: expected the textfile (*.prom) to write "
                         "them into" % len(p["metrics"]))
    if p["action"] == "read":
        entries = read_entries(p["path"])
        newest = entries[-p["limit"]:] if p["limit"] else entries
        module.exit_json(changed=False, entries=newest, previous_good=previous_good(entries, p["current"], p["exclude"]),
                         rollback_in_effect=rollback_in_effect(entries, p["current"]))

    if p["action"] == "rollback":
        try:
            plan = choose_rollback(read_entries(p["path"]), p["current"], p["to"], p["releases"], p["exclude"], p["host"])
        except Refused as exc:
            module.fail_json(msg=str(exc))
        record = {}
        if plan["target"] != p["current"]:
            # Before the switch: a rollback stopped after it leaves this record, and the next one finishes it.
            record = append(module, p["path"], dict(p["record"], kind="rollback", result=STARTED,
                                                    to=plan["target"], **{"from": plan["from"]}))
        module.exit_json(changed=False, record=record, **plan)

    metrics = None
    if p["metrics_file"]:
        # Checked before the record is appended: a bad metric appends nothing.
        metrics = prometheus_text.plan_or_fail(module, p["metrics_file"], p["metrics_labels"], p["metrics_prefix"],
                                               p["metrics"], writer="shipshape.ops.release_history", what="metrics: ")
    record = append(module, p["path"], p["record"])
    written = {}
    if metrics is not None:
        if not module.check_mode:
            try:
                prometheus_text.write(metrics)
            except OSError as err:
                module.fail_json(msg="The record was appended to %s, but the metrics could not be written to %s: %s"
                                 % (p["path"], p["metrics_file"], err), exception=traceback.format_exc(), record=record)
        written = dict((k, v) for k, v in metrics.result().items() if k != "content")
    module.exit_json(changed=p["report_change"], record=record, metrics=written)


if __name__ == "__main__":
    main()
