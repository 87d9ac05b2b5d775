"""shipshape.ops.rolling_serial and rolling_batches: the serial list of a rolling deploy and Ansible's batches."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.shipshape.ops.plugins.filter.rolling import FilterModule, rolling_batches, rolling_serial

HOSTS = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("serial, canary, expected", [
    ("100%", 0, ["100%"]),
    (1, 0, [1]),
    ("2", "0", [2]),
    ("30%", 1, [1, "30%"]),
    (3, "2", [2, 3]),
])
def test_serial_lists(serial, canary, expected):
    assert rolling_serial(serial, canary) == expected


@pytest.mark.parametrize("serial, canary, named", [
    (0, 0, "deploy_serial 0"),
    ("0", 0, "deploy_serial '0'"),
    ("0%", 0, "deploy_serial '0%'"),
    ("101%", 0, "deploy_serial '101%'"),
    ("-1", 0, "deploy_serial '-1'"),
    ("1.5", 0, "deploy_serial '1.5'"),
    (True, 0, "deploy_serial True"),
    ("{{ x }}", 0, "deploy_serial '{{ x }}'"),
    (1, -1, "deploy_canary -1"),
    (1, "one", "deploy_canary 'one'"),
    (1, True, "deploy_canary True"),
])
def test_bad_sizes_name_the_variable_and_value(serial, canary, named):
    with pytest.raises(AnsibleFilterError) as raised:
        rolling_serial(serial, canary)
    assert str(raised.value).startswith(named + " must be")


@pytest.mark.parametrize("serial, expected", [
    (["100%"], [HOSTS]),
    ([1], [["a"], ["b"], ["c"], ["d"], ["e"]]),
    ([1, "100%"], [["a"], ["b", "c", "d", "e"]]),
    ([1, 2], [["a"], ["b", "c"], ["d", "e"]]),
    # a percentage counts every host of the play, rounded down, at least one (as Ansible's pct_to_int)
    (["40%"], [["a", "b"], ["c", "d"], ["e"]]),
    (["10%"], [["a"], ["b"], ["c"], ["d"], ["e"]]),
    ([2, 1, "100%"], [["a", "b"], ["c"], ["d", "e"]]),
    (10, [HOSTS]),
])
def test_batches_are_ansibles(serial, expected):
    assert rolling_batches(HOSTS, serial) == expected


def test_no_hosts_no_batches():
    assert not rolling_batches([], [1])


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"rolling_serial", "rolling_batches", "rolling_losses", "rolling_max_fail",
                                             "rolling_rollout"}


@pytest.mark.parametrize("active, serial, limit, batch, lost, stop", [
    (["a", "b", "c", "d", "e"], ["100%"], 0, 1, [], False),
    (["b"], [2], 0, 1, ["a"], True),
    (["b"], [2], 50, 1, ["a"], False),  # 50 % lost, at most 50 % allowed
    (["d"], [1, 3], "34", 2, ["b", "c"], True),
    (["e"], [2], 0, 3, [], False),
])
def test_losses_of_a_batch(active, serial, limit, batch, lost, stop):
    found = FilterModule().filters()["rolling_losses"](active, HOSTS, serial, limit)
    assert (found["batch"], found["lost"], found["stop"]) == (batch, lost, stop)
    assert found["lost_percent"] == round(100.0 * len(lost) / len(found["hosts"]), 1)


def test_a_rescued_host_whose_deploy_failed_counts_as_lost_and_is_told_from_an_unreachable_one():
    # The Deploy play rescues a failed deploy so that its batch is counted even when every host of it failed.
    losses = FilterModule().filters()["rolling_losses"]
    found = losses(["b"], HOSTS, [1, 1], 0, ["b"])  # the only host of its batch
    assert (found["batch"], found["lost"], found["failed"], found["unreachable"], found["stop"]) == (
        2, ["b"], ["b"], [], True)
    assert found["later"] == ["c", "d", "e"] and found["lost_percent"] == 100.0
    found = losses(["b", "c"], HOSTS, [1, 3], 34, ["", "c"])  # as map(attribute=..., default='') gives them
    assert (found["lost"], found["failed"], found["unreachable"], found["stop"]) == (["c", "d"], ["c"], ["d"], True)
    found = losses(["b", "c"], HOSTS, [1, 3], 67, ["c"])
    assert found["lost_percent"] == 66.7 and not found["stop"]


@pytest.mark.parametrize("limit", [-1, "101", "x", True, "5.5", "\u00b2"])
def test_a_bad_max_fail_percentage_is_refused_naming_it(limit):
    with pytest.raises(AnsibleFilterError, match="deploy_max_fail_percentage .* must be a whole percentage"):
        FilterModule().filters()["rolling_losses"](["a"], HOSTS, [1], limit)


def test_how_a_rollout_ended_from_the_facts_its_batches_left():
    rollout = FilterModule().filters()["rolling_rollout"]
    stop = {"batch": 2, "stop": True, "later": ["e"]}
    facts = {
        "a": {"deploy_batch_result": {"batch": 1, "stop": False}, "__deploy_lock_taken": {"acquired": True},
              "__deploy_lock_released": {"changed": False, "failed": False}},
        "b": {"deploy_batch_result": stop, "deploy_failure": {"host": "b", "msg": "gate"},
              "__deploy_lock_taken": {"acquired": True}, "__deploy_lock_released": {"failed": False}},
        # lost for good after it took its lock: its release never ran
        "c": {"__deploy_lock_taken": {"acquired": True}},
        # a stopped container: its release ran and failed
        "d": {"deploy_batch_result": stop, "__deploy_lock_taken": {"acquired": True},
              "__deploy_lock_released": {"failed": True}},
        # refused by another run's lock: it never held it
        "e": {"__deploy_lock_taken": {"acquired": False, "failed": True}},
    }
    found = rollout(list(facts), ["a", "b", "d", "e"], facts, True)
    assert found == {"stopped": True, "stopped_after": stop, "failed": ["b"], "unreachable": ["c"],
                     "stale_locks": ["c", "d"], "switch_back": True}
    calm = {host: {"__deploy_lock_released": {"skipped": True}} for host in "ab"}
    assert rollout(["a", "b"], ["a", "b"], calm) == {"stopped": False, "stopped_after": {}, "failed": [],
                                                     "unreachable": [], "stale_locks": [], "switch_back": False}
