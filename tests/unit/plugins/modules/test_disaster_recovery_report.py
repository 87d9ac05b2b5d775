"""shipshape.ops.disaster_recovery_report: how a run is judged, how a re-run carries an earlier restore's time,
and that the report and the state are written 0600 (and not at all in check mode)."""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.shipshape.ops.plugins.modules import disaster_recovery_report as dr

PHASES = ["backups", "provision", "restore", "deploy", "caches", "health"]
PLAN = {"sets": {"db": {"id": "20261201T020000Z"}, "app": {"id": "20261201T020001Z"}},
        "data": {"backup_id": "20261201T020000Z", "database": "sample_app", "taken_at": "2026-12-01T02:00:00Z",
                 "epoch": 1000.0, "revision": "0002", "row_counts": {"notes": 3}},
        "release": {"ref": "abc", "from": "deploy history"}, "stop_after": ""}


def marks(*phases, start=2000.0, each=1.5):
    out = {}
    for i, phase in enumerate(phases):
        out[phase] = {"start": start + i * 10, "end": start + i * 10 + each}
    return out


def args(tmp_path, **over):
    base = dict(run_id="20261202T100000Z", started_at="2026-12-02T10:00:00Z", started_epoch=1990.0, phases=PHASES,
                marks=marks(*PHASES), plan=PLAN, db_hosts=["db"], app_hosts=["app"],
                restored={"db": {"backup_id": "20261201T020000Z", "parts": ["postgres"], "status": "restored"},
                          "app": {"backup_id": "20261201T020001Z", "parts": ["files"], "status": "restored"}},
                deployed={"db": None,
                          "app": {"release": "2.0.0-abc", "version": "2.0.0", "sha": "abc", "result": "success",
                                  "migrations": {"applied": True, "after": "0002"}}},
                invalidated={"db": {"patterns": ["cache:*"], "deleted": {"cache:*": 2}, "total": 2}, "app": None},
                health={"db": {"status": "ok", "checks": [{"name": "redis", "status": "ok"}]},
                        "app": {"status": "failed", "message": "1 failed",
                                "checks": [{"name": "api", "status": "failed"}, {"name": "unit", "status": "ok"}]}},
                by_hand={p: "do %s by hand" % p for p in PHASES},
                report_dir=str(tmp_path / "dr"), state_file=str(tmp_path / "dr" / "state.json"))
    base.update(over)
    return base


def test_a_full_run_is_recovered_with_the_sum_of_its_phases_and_every_host_section(run_module, tmp_path):
    failed, result = run_module(dr, args(tmp_path))
    assert not failed and result["changed"] is False
    report = result["report"]
    assert report["result"] == "recovered" and report["left_to_do"] == []
    assert [r["phase"] for r in report["phases"]] == PHASES
    assert report["recovery_s"] == 9.0
    assert report["release"]["running"] == {"app": {"release": "2.0.0-abc", "version": "2.0.0", "sha": "abc",
                                                    "deploy": "success", "migrations_applied": True, "revision": "0002"}}
    assert report["caches"] == {"db": {"patterns": ["cache:*"], "deleted": {"cache:*": 2}, "total": 2}}
    assert report["health"]["app"]["not_ok"] == ["api"] and report["health"]["db"]["not_ok"] == []
    assert set(report["restored"]) == {"db", "app"}
    written = json.loads((tmp_path / "dr" / "dr-20261202T100000Z.json").read_text())
    assert written == report
    for path in (tmp_path / "dr" / "dr-20261202T100000Z.json", tmp_path / "dr" / "state.json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "dr").st_mode) == 0o700
    state = json.loads((tmp_path / "dr" / "state.json").read_text())
    assert state["backup"] == {"db": "20261201T020000Z", "app": "20261201T020001Z"}
    assert state["phases"]["restore"] == {"status": "done", "seconds": 1.5, "run_id": "20261202T100000Z"}


def test_a_failed_phase_names_what_is_left_and_is_not_a_recovery(run_module, tmp_path):
    failure = {"phase": "deploy", "host": "app", "message": "pip failed"}
    failed, result = run_module(dr, args(tmp_path, marks=marks("backups", "provision", "restore", "deploy"), failure=failure))
    report = result["report"]
    assert not failed and report["result"] == "failed" and report["recovery_s"] is None
    assert [r["status"] for r in report["phases"]] == ["done", "done", "done", "failed", "not run", "not run"]
    assert report["left_to_do"] == ["deploy: do deploy by hand", "caches: do caches by hand", "health: do health by hand"]


def test_a_rerun_of_the_same_backup_keeps_the_earlier_restore_time_when_no_host_restored_again(run_module, tmp_path):
    earlier = {"backup": {"db": "20261201T020000Z", "app": "20261201T020001Z"},
               "phases": {"restore": {"status": "done", "seconds": 42.0, "run_id": "20261202T090000Z"}}}
    skipped = {"db": {"backup_id": "x", "parts": [], "status": "already restored"},
               "app": {"backup_id": "y", "parts": [], "status": "already restored"}}
    failed, result = run_module(dr, args(tmp_path, state=earlier, restored=skipped))
    restore = result["report"]["phases"][2]
    assert restore["seconds"] == 42.0 and restore["run_id"] == "20261202T090000Z" and "20261202T090000Z" in restore["note"]
    assert result["report"]["recovery_s"] == 7.5 + 42.0


def test_an_earlier_state_of_another_backup_is_not_carried_over(run_module, tmp_path):
    earlier = {"backup": {"db": "OLD", "app": "OLD"},
               "phases": {"restore": {"status": "done", "seconds": 42.0, "run_id": "20261101T090000Z"}}}
    skipped = {"db": {"status": "already restored"}, "app": {"status": "already restored"}}
    failed, result = run_module(dr, args(tmp_path, state=earlier, restored=skipped))
    assert result["report"]["phases"][2]["seconds"] == 1.5
    state = json.loads((tmp_path / "dr" / "state.json").read_text())
    assert state["phases"]["restore"]["run_id"] == "20261202T100000Z"


def test_a_stopped_run_says_after_which_phase(run_module, tmp_path):
    plan = dict(PLAN, stop_after="restore")
    failed, result = run_module(dr, args(tmp_path, plan=plan, stopped=True, stop_after="restore",
                                         marks=marks("backups", "provision", "restore")))
    assert result["report"]["result"] == "stopped" and result["report"]["stopped_after"] == "restore"


def test_check_mode_writes_nothing(run_module, tmp_path):
    failed, result = run_module(dr, args(tmp_path), check_mode=True)
    assert not failed and result["report"]["result"] == "recovered"
    assert not (tmp_path / "dr").exists()


def test_no_state_is_written_when_the_plan_found_no_sets(run_module, tmp_path):
    failure = {"phase": "backups", "host": "localhost", "message": "checksum mismatch"}
    failed, result = run_module(dr, args(tmp_path, plan={}, failure=failure, marks=marks("backups")))
    assert not failed and result["report"]["result"] == "failed"
    assert (tmp_path / "dr" / "dr-20261202T100000Z.json").is_file()
    assert not (tmp_path / "dr" / "state.json").exists()


def test_a_run_id_that_is_not_a_plain_stamp_is_refused_before_anything_is_written(run_module, tmp_path):
    failed, result = run_module(dr, args(tmp_path, run_id="../../etc/x"))
    assert failed and "run_id='../../etc/x'" in result["msg"]
    assert not (tmp_path / "dr").exists()
