"""Unit tests of the collection's plugins, run two ways:

- ``ansible-test units`` (scripts/ansible-test units), which puts the collection on its own import path;
- plain ``python -m pytest tests/unit`` from the checkout, where ``ansible_collections`` is found here
  through ``.collections`` (scripts/bootstrap links the checkout in as ansible_collections/shipshape/ops)
  or ANSIBLE_COLLECTIONS_PATH.

The ``run_module`` fixture runs a module's ``main()`` with the given arguments and returns
``(failed, result)`` from the JSON the real ``exit_json``/``fail_json`` print.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest


def _ensure_collection_importable():
    try:
        import ansible_collections.shipshape.ops.plugins  # noqa: F401  pylint: disable=unused-import
        return
    except ImportError:
        pass
    root = Path(__file__).resolve().parents[2]
    candidates = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    candidates.append(str(root / ".collections"))
    if root.parent.parent.name == "ansible_collections":  # a checkout placed as .../ansible_collections/ns/name
        candidates.append(str(root.parent.parent.parent))
    for path in candidates:
        if (Path(path) / "ansible_collections" / "shipshape" / "ops" / "galaxy.yml").is_file():
            sys.path.insert(0, path)
            for name in [m for m in sys.modules if m == "ansible_collections" or m.startswith("ansible_collections.")]:
                del sys.modules[name]  # a failed import may have cached an empty namespace package
            return
    raise ImportError(
        "cannot import ansible_collections.shipshape.ops: run scripts/bootstrap (it links this checkout into "
        ".collections) or set ANSIBLE_COLLECTIONS_PATH to a directory holding ansible_collections/shipshape/ops"
    )


_ensure_collection_importable()


@pytest.fixture
def run_module(capsys, monkeypatch):
    """Run ``module.main()`` with ``args`` (check mode with ``check_mode=True``): ``(failed, result)``.

    Failures carry ``exception`` (the traceback), as with ``ansible -vvv``, so tests can check it.
    """
    from ansible.module_utils.testing import patch_module_args

    try:  # ansible-core 2.19 caches, per process, which events include a traceback; re-read it per run
        from ansible.module_utils._internal import _traceback
        monkeypatch.setattr(_traceback, "_module_tracebacks_enabled_events", None)
        # Importing ansible.utils.display (the CLI's tests do, in this process) swaps in the controller's
        # rule; a module runs in a process of its own, with the module's rule.
        monkeypatch.setattr(_traceback, "_is_traceback_enabled", _traceback._is_module_traceback_enabled)
        # ... and it marks the process as the controller, whose module.warn() goes to the display instead of
        # the module's result: a module runs as a module.
        from ansible.module_utils import _internal
        monkeypatch.setattr(_internal, "is_controller", False)
    except (ImportError, AttributeError):
        pass

    def run(module, args, check_mode=False):
        args = dict(args, _ansible_tracebacks_for=["error"])
        if check_mode:
            args["_ansible_check_mode"] = True
        capsys.readouterr()  # drop anything printed before
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exited:
                module.main()
        result = json.loads(capsys.readouterr().out)
        failed = exited.value.code not in (0, None)
        assert failed == bool(result.get("failed")), result
        return failed, result

    return run


@pytest.fixture
def redis_server(monkeypatch):
    """Serve every ``redis_client.connect`` of the modules under test from a fake server object.

    ``redis_server(server)`` patches the connection and returns ``server``; the connection parameters a module
    passed are then in ``server.params["params"]``. Each test file brings its own fake server class.
    """
    from ansible_collections.shipshape.ops.plugins.module_utils import redis_client

    def install(server):
        state = {}

        def connect(params):
            state["params"] = params
            return server

        monkeypatch.setattr(redis_client, "connect", connect)
        server.params = state
        return server

    return install
