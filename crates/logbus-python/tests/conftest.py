"""Fixtures: a scratch ring under /dev/shm (removed afterwards) and a reader
that returns its records through `logbus dump --json`, the CLI's own parser."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def logbus_bin():
    """The `logbus` CLI: $LOGBUS_BIN, else target/debug/logbus, else PATH."""
    for cand in (os.environ.get("LOGBUS_BIN"), REPO / "target" / "debug" / "logbus",
                 shutil.which("logbus")):
        if cand and Path(cand).is_file():
            return str(cand)
    pytest.fail("the logbus CLI is not built: run `cargo build -p logbus-cli` or set LOGBUS_BIN")


class Ring:
    def __init__(self, path):
        self.path = path

    def dump(self, json_lines=True):
        args = [logbus_bin(), "dump"] + (["--json"] if json_lines else []) + [str(self.path)]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return [json.loads(l) for l in out.splitlines()] if json_lines else out

    def records(self, target=None):
        return [r for r in self.dump() if target is None or r["target"] == target]


@pytest.fixture
def ring():
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    path = base / f"logbus-pytest-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    yield Ring(path)
    for p in base.glob(path.name + "*"):
        p.unlink()
