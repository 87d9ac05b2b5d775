"""The notify role as a playbook uses it: in an always: section after a deploy, judged from each host's
deploy_result, received by a local listener; a failed notification never fails a good run."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading

import pytest

SECRET_PATH = "/hooks/secret-path-do-not-leak"

PLAYBOOK = """
- name: Deploy (simulated) and tell people how it went
  hosts: app_servers
  gather_facts: false
  tasks:
    - name: Deploy, then notify whatever happened
      block:
        - name: Record this host's result as the deploy role does
          ansible.builtin.set_fact:
            deploy_result: "{{ {'result': outcome, 'message': message} }}"
        - name: Fail where the deploy failed
          ansible.builtin.fail:
            msg: "{{ message }}"
          when: outcome != 'success'
        - name: Fail later on a host whose deploy_result said success (its failure must still be told)
          ansible.builtin.fail:
            msg: copying the report failed
          when: fail_later | default(false)
      always:
        - name: Tell people how the deploy went
          ansible.builtin.include_role:
            name: shipshape.ops.notify
          vars:
            notify_event:
              kind: deploy
              app: sample_app
              details: {release: "20261202-1500"}
            notify_result_var: deploy_result
            notify_targets: "{{ targets }}"
            notify_on: "{{ on_outcomes }}"
            notify_retries: 0
        - name: Keep notify_result for the test
          ansible.builtin.copy:
            content: "{{ notify_result | to_json }}"
            dest: "{{ result_file }}"
            mode: "0600"
          delegate_to: localhost
          run_once: true
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        self.received.append({"path": self.path,
                              "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def run(tmp_path, ansible_env, outcomes, targets, on=("failure",), check=False):
    Receiver.received.clear()
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    hosts = {h: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                 "outcome": o.replace("+fail_later", ""), "fail_later": o.endswith("+fail_later"),
                 "message": "GET /healthz answered 500" if o != "success" else ""}
             for h, o in outcomes.items()}
    (tmp_path / "hosts.yml").write_text(json.dumps({"app_servers": {"hosts": hosts}}))
    extra = {"targets": targets, "on_outcomes": list(on), "result_file": str(tmp_path / "notify_result.json")}
    cmd = ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "-e", json.dumps(extra)]
    if check:
        cmd.append("--check")
    out = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env, check=False)
    assert "secret-path-do-not-leak" not in out.stdout + out.stderr
    result_file = tmp_path / "notify_result.json"
    return out, (json.loads(result_file.read_text()) if result_file.exists() else None)


def test_a_failed_deploy_is_received_by_a_local_listener(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "success", "web2": "rolled_back"},
                      [{"type": "json", "url": receiver + SECRET_PATH}])
    assert out.returncode == 2, out.stdout  # web2's failure stays the play's failure
    assert "web1                       : ok=" in out.stdout and "failed=0" in out.stdout.split("web1")[-1].splitlines()[0]
    (post,) = Receiver.received  # once for the play, not once per host
    body = post["body"]
    assert post["path"] == SECRET_PATH
    assert body["kind"] == "deploy" and body["result"] == "rolled_back" and body["outcome"] == "failure"
    assert body["hosts"] == ["web1", "web2"]
    assert body["details"] == {"release": "20261202-1500", "per_host": {"web1": "success", "web2": "rolled_back"}}
    assert "web2: rolled_back (GET /healthz answered 500)" in body["summary"]
    assert result == {"outcome": "failure", "sent": ["json#0"], "not_sent": [], "skipped": []}


def test_a_host_that_failed_after_its_result_is_told_as_failed(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "success", "web3": "success+fail_later"},
                      [{"type": "json", "url": receiver + SECRET_PATH}])
    assert out.returncode == 2, out.stdout
    (post,) = Receiver.received
    assert post["body"]["details"]["per_host"] == {"web1": "success", "web3": "failed"}
    assert post["body"]["result"] == "failed" and result["sent"] == ["json#0"]


def test_a_good_deploy_tells_nobody_by_default(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "success"}, [{"type": "json", "url": receiver + SECRET_PATH}])
    assert out.returncode == 0, out.stdout
    assert Receiver.received == [] and result["skipped"] == ["json#0"]


def test_success_is_told_when_asked(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "success"},
                      [{"type": "slack", "url": receiver + SECRET_PATH}], on=("failure", "success"))
    assert out.returncode == 0 and result["sent"] == ["slack#0"]
    assert "Deploy success: sample_app" in Receiver.received[0]["body"]["text"]


def test_an_unreachable_target_does_not_fail_a_good_deploy(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "success"},
                      [{"type": "json", "url": "http://127.0.0.1:9" + SECRET_PATH}, {"type": "json", "url": "file:///etc/passwd"}],
                      on=("success",))
    assert out.returncode == 0, out.stdout
    assert [f["name"] for f in result["not_sent"]] == ["json#0", "json#1"]
    assert "not told" in out.stdout + out.stderr  # the warning and the summary say so


def test_check_mode_sends_nothing(tmp_path, ansible_env, receiver):
    out, result = run(tmp_path, ansible_env, {"web1": "failed"}, [{"type": "json", "url": receiver + SECRET_PATH}],
                      check=True)
    assert out.returncode == 2 and Receiver.received == []


def test_an_event_without_kind_is_refused_naming_the_variable(tmp_path, ansible_env, receiver):
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_role:\n"
        "        name: shipshape.ops.notify\n      vars:\n        notify_event: {kind: party, result: failed}\n")
    out = subprocess.run(["ansible-playbook", str(tmp_path / "play.yml")], capture_output=True, text=True,
                         env=ansible_env, check=False)
    assert out.returncode != 0 and "notify_event" in out.stdout and "party" in out.stdout
