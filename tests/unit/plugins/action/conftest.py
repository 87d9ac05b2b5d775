"""Helpers for the action plugins' unit tests."""

from __future__ import annotations

from unittest import mock

import pytest


@pytest.fixture
def make_plugin():
    """make_plugin(module, args): the action plugin of ``module`` for a task with ``args``, on mocked connection
    and play context."""

    def make(module, args):
        task = mock.MagicMock()
        task.args = args
        task.async_val = 0
        task.check_mode = False
        return module.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                                   shared_loader_obj=None)

    return make
