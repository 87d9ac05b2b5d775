#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: disaster_recovery_report
short_description: Judge a disaster recovery run, write its JSON report and the state a re-run continues from
description:
  - Runs on the controller at the end of C(playbooks/disaster_recovery.yml). From the phase marks, the first failure,
    the state an earlier run left and what each host did, it settles the run's result (C(recovered), C(stopped) or
    C(failed)), a row per phase, the time to recover from nothing and what is left to do by hand.
  - A phase that this run skipped because an earlier run of the same backup did it (a restore already verified on
    every host) keeps that run's seconds, so the time to recover stays the sum of the phases across the runs of one
    recovery.
  - Writes the JSON report C(<report_dir>/dr-<run_id>.json) and the state file, each 0600 and replaced atomically.
    Reports are records of a run, so writing them is not reported as a change.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  run_id:
    description: The run's id (C(YYYYMMDDTHHMMSSZ)); names the report file.
    type: str
    required: true
  started_at:
    description: When the run started (ISO 8601, UTC).
    type: str
    required: true
  started_epoch:
    description: When the run started (seconds since the epoch), for the run's own duration.
    type: float
    required: true
  phases:
    description: The phases in order.
    type: list
    elements: str
    required: true
  marks:
    description: "Per phase, C(start) and C(end) times (seconds since the epoch) of the phases that ran."
    type: dict
    default: {}
  failure:
    description: The first failure (C(phase), C(host), C(message)); empty when none.
    type: dict
    default: {}
  stopped:
    description: The run stopped after O(stop_after) as asked.
    type: bool
    default: false
  stop_after:
    description: The phase the run was asked to stop after.
    type: str
    default: ""
  state:
    description: The state an earlier run left (C(backup), C(phases)); empty when none.
    type: dict
    default: {}
  plan:
    description: The plan the backups phase settled (C(sets), C(data), C(release)); empty when that phase failed.
    type: dict
    default: {}
  db_hosts:
    description: The db hosts, in order.
    type: list
    elements: str
    default: []
  app_hosts:
    description: The app hosts, in order.
    type: list
    elements: str
    default: []
  restored:
    description: Per host, what the restore phase did there (C(backup_id), C(parts), C(status), ...); null where it did not run.
    type: dict
    default: {}
  deployed:
    description: Per app host, the deploy role's C(deploy_result); null where it did not run.
    type: dict
    default: {}
  invalidated:
    description: Per db host, the caches phase's C(patterns), C(deleted) and C(total); null where it did not run.
    type: dict
    default: {}
  health:
    description: Per host, the preflight role's C(preflight_result); null where it did not run.
    type: dict
    default: {}
  by_hand:
    description: Per phase, what to do by hand when it did not finish.
    type: dict
    default: {}
  backup_dir:
    description: The directory of the off-host copies the run recovered from.
    type: str
    default: ""
  report_dir:
    description: Where the JSON report goes (created 0700 when missing).
    type: path
    required: true
  state_file:
    description: The state file a re-run continues from (written only when the plan found sets).
    type: path
    required: true
attributes:
  check_mode:
    support: full
    details: In check mode the result is settled and returned, and nothing is written.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Judge the run and write its report
  shipshape.ops.disaster_recovery_report:
    run_id: 20261202T101500Z
    started_at: "2026-12-02T10:15:00Z"
    started_epoch: 1796206500.0
    phases: [backups, provision, restore, deploy, caches, health]
    marks: {backups: {start: 1796206500.1, end: 1796206503.4}}
    plan: "{{ disaster_recovery_plan }}"
    db_hosts: [db1]
    app_hosts: [app1]
    restored: {db1: null, app1: null}
    report_dir: ~/.local/state/shipshape/disaster_recovery
    state_file: ~/.local/state/shipshape/disaster_recovery/state.json
  delegate_to: localhost
  register: disaster_recovery_report
"""

RETURN = r"""
report:
  description: The report, as written to C(<report_dir>/dr-<run_id>.json).
  returned: always
  type: dict
  contains:
    result:
      description: C(recovered), C(stopped) or C(failed).
      type: str
    recovery_s:
      description: The time to recover from nothing (the sum of the phases), null unless recovered.
      type: float
    phases:
      description: One row per phase (C(phase), C(status) done, failed or not run, C(seconds), C(run_id), C(note)).
      type: list
      elements: dict
    left_to_do:
      description: "C(<phase>: <what to do by hand>) for every phase not done."
      type: list
      elements: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import files

REPORT_FORMAT = 1


def phase_rows(phases, marks, failure, earlier, restore_skipped, run_id):
    rows = []
    for phase in phases:
        mark = marks.get(phase) or {}
        seconds = None
        if "start" in mark and "end" in mark:
            seconds = round(float(mark["end"]) - float(mark["start"]), 2)
        before = earlier.get(phase) or {}
        if failure.get("phase") == phase:
            rows.append(dict(phase=phase, status="failed", seconds=seconds, run_id=run_id))
        elif seconds is None:
            rows.append(dict(phase=phase, status="not run", seconds=None, run_id=None))
        elif phase == "restore" and restore_skipped and before.get("status") == "done":
            rows.append(dict(phase=phase, status="done", seconds=before.get("seconds"), run_id=before.get("run_id"),
                             note="restored and verified by run %s; this run checked the markers in %s s"
                             % (before.get("run_id"), seconds)))
        else:
            rows.append(dict(phase=phase, status="done", seconds=seconds, run_id=run_id))
    return rows


def host_sections(p):
    """The per-host parts of the report: what was restored, what runs, the caches invalidated, the health."""
    db_hosts, app_hosts = p["db_hosts"], p["app_hosts"]
    did = dict((name, dict((kind, (p[kind] or {}).get(name)) for kind in ("restored", "deployed", "invalidated", "health")))
               for name in db_hosts + app_hosts)
    restored, running, caches, health = {}, {}, {}, {}
    for name in db_hosts + app_hosts:
        r = did[name].get("restored")
        if r:
            restored[name] = dict(backup_id=r.get("backup_id"), parts=r.get("parts") or [], status=r.get("status"),
                                  database=r.get("database") or "", row_counts=r.get("row_counts") or {},
                                  redis_keys=r.get("redis_keys"), files=r.get("files") or [])
        h = did[name].get("health")
        if h is not None:
            checks = h.get("checks") or []
            health[name] = dict(status=h.get("status") or "unknown", message=h.get("message") or "",
                                checks=[c.get("name") for c in checks],
                                not_ok=[c.get("name") for c in checks if c.get("status") != "ok"])
    for name in app_hosts:
        d = did[name].get("deployed")
        if d:
            migrations = d.get("migrations") or {}
            running[name] = dict(release=d.get("release"), version=d.get("version"), sha=d.get("sha"),
                                 deploy=d.get("result"), migrations_applied=bool(migrations.get("applied")),
                                 revision=migrations.get("after"))
    for name in db_hosts:
        i = did[name].get("invalidated")
        if i is not None:
            caches[name] = i
    # Every host either restored nothing new (its markers said an earlier run did) or was not reached.
    seen = [did[name].get("restored") for name in db_hosts + app_hosts if did[name].get("restored")]
    restore_skipped = len(seen) == len(db_hosts + app_hosts) and all(r.get("status") != "restored" for r in seen)
    return restored, running, caches, health, restore_skipped


def write_private(path, data):
    """Replace path atomically with data, 0600, in a 0700 directory it creates when missing."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    files.write_atomically(path, json.dumps(data, indent=4, sort_keys=True) + "\n", 0o600)


def settle(p, now):
    plan, state, failure = p["plan"] or {}, p["state"] or {}, p["failure"] or {}
    sets = plan.get("sets") or {}
    this_backup = dict(db=(sets.get("db") or {}).get("id", ""), app=(sets.get("app") or {}).get("id", ""))
    same_backup = (state.get("backup") or {}) == this_backup
    earlier = (state.get("phases") or {}) if same_backup else {}
    result = "failed" if failure else ("stopped" if p["stopped"] else "recovered")
    restored, running, caches, health, restore_skipped = host_sections(p)
    rows = phase_rows(p["phases"], p["marks"] or {}, failure, earlier, restore_skipped, p["run_id"])
    data = plan.get("data") or {}
    report_base = os.path.join(p["report_dir"], "dr-%s" % p["run_id"])
    report = dict(
        format_version=REPORT_FORMAT,
        run_id=p["run_id"],
        result=result,
        started_at=p["started_at"],
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        this_run_s=round(now - p["started_epoch"], 2),
        recovery_s=round(sum(float(r["seconds"] or 0) for r in rows), 2) if result == "recovered" else None,
        phases=rows,
        failure=failure or None,
        stopped_after=p["stop_after"] if result == "stopped" else None,
        left_to_do=["%s: %s" % (r["phase"], (p["by_hand"].get(r["phase"]) or "").strip())
                    for r in rows if r["status"] != "done"],
        data=dict(backup_id=data.get("backup_id", ""), database=data.get("database", ""),
                  taken_at=data.get("taken_at", ""),
                  age_s=int(now - float(data["epoch"])) if data.get("epoch") not in (None, "") else None,
                  revision=data.get("revision"), row_counts=data.get("row_counts") or {}),
        backups=dict(dir=p["backup_dir"], sets=sets),
        restored=restored,
        release=dict(asked=plan.get("release") or {}, running=running),
        caches=caches,
        health=health,
        report_files=dict(json=report_base + ".json", markdown=report_base + ".md"),
        state_file=p["state_file"],
    )
    new_state = None
    if sets:
        phases = dict(earlier)
        for r in rows:
            if r["status"] in ("done", "failed"):
                phases[r["phase"]] = dict(status=r["status"], seconds=r["seconds"], run_id=r["run_id"])
        new_state = dict(backup=this_backup, updated_at=report["finished_at"], last_run=p["run_id"], last_result=result,
                         last_report=report["report_files"]["json"], phases=phases)
    return report, new_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            run_id=dict(type="str", required=True),
            started_at=dict(type="str", required=True),
            started_epoch=dict(type="float", required=True),
            phases=dict(type="list", elements="str", required=True),
            marks=dict(type="dict", default={}),
            failure=dict(type="dict", default={}),
            stopped=dict(type="bool", default=False),
            stop_after=dict(type="str", default=""),
            state=dict(type="dict", default={}),
            plan=dict(type="dict", default={}),
            db_hosts=dict(type="list", elements="str", default=[]),
            app_hosts=dict(type="list", elements="str", default=[]),
            restored=dict(type="dict", default={}),
            deployed=dict(type="dict", default={}),
            invalidated=dict(type="dict", default={}),
            health=dict(type="dict", default={}),
            by_hand=dict(type="dict", default={}),
            backup_dir=dict(type="str", default=""),
            report_dir=dict(type="path", required=True),
            state_file=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not all(ch.isalnum() for ch in p["run_id"]):
        module.fail_json(msg="run_id=%r: expected letters and digits only (it names the report file)" % p["run_id"])
    report, new_state = settle(p, time.time())
    if not module.check_mode:
        try:
            write_private(report["report_files"]["json"], report)
            if new_state is not None:
                write_private(p["state_file"], new_state)
        except OSError as exc:
            module.fail_json(msg="cannot write the disaster recovery report: %s" % exc, report=report)
    module.exit_json(changed=False, report=report)


if __name__ == "__main__":
    main()
