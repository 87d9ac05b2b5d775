"""Release identity: release.json in the working directory (the release dir), else env, else "unknown"."""

from __future__ import annotations

import json
import logging
import os
from typing import Mapping, Optional

from . import __version__

log = logging.getLogger(__name__)
RELEASE_FILE = "release.json"


def release_file_path(env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    path = env.get("SAMPLE_APP_RELEASE_FILE") or RELEASE_FILE
    return os.path.join(os.getcwd(), path)  # absolute paths stay absolute


def read_release(env: Optional[Mapping[str, str]] = None) -> dict:
    env = os.environ if env is None else env
    data: dict = {}
    path = release_file_path(env)
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = json.load(fh)
        if isinstance(loaded, dict):
            data = loaded
        else:
            log.warning("%s is not a JSON object; ignoring it", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)

    def pick(key: str, env_name: Optional[str]) -> str:
        value = data.get(key)
        if value not in (None, ""):
            return str(value)
        if env_name and env.get(env_name):
            return env[env_name]
        return "unknown"

    return {
        "release_id": pick("id", "RELEASE_ID"),
        "version": __version__,
        "sha": pick("sha", "GIT_SHA"),
        "source": pick("source", "RELEASE_SOURCE"),
    }
