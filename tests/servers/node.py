"""Node.js programs for the driver tests: where they live, what they need, and how
the tests drive them (tests/node holds their package.json and lock file)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

NODE = shutil.which("node") or "/usr/bin/node"
NODE_DIR = Path(__file__).resolve().parents[1] / "node"
#: How long a Node program may take to answer one step.
STEP_TIMEOUT = 30.0


def require_packages(*packages: str) -> None:
    if not Path(NODE).exists():
        pytest.skip("node is not installed")
    for package in packages:
        if not (NODE_DIR / "node_modules" / package).is_dir():
            pytest.skip(f"npm package {package} is not installed: run `npm install` in {NODE_DIR}")


def prisma_generate(schema: Path, client: Path, scratch: Path) -> Path:
    """Generate a Prisma client from ``schema`` offline; returns ``client``.

    ``prisma generate`` wants the path of a schema engine binary (it would
    download one otherwise) but never runs it: any existing file will do.
    """
    fake_engine = scratch / "schema-engine"
    fake_engine.write_text("not used by prisma generate\n")
    env = {
        **os.environ,
        "PRISMA_SCHEMA_ENGINE_BINARY": str(fake_engine),
        "CHECKPOINT_DISABLE": "1",  # no update check over the network
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
    }
    result = subprocess.run(
        [NODE, str(NODE_DIR / "node_modules" / "prisma" / "build" / "index.js"), "generate",
         "--schema", str(schema)],
        cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (client / "index.js").is_file()
    return client


class NodeProgram:
    """A Node program of tests/node that answers one JSON line per JSON step."""

    def __init__(self, script: str, url: str, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["DATABASE_URL"] = url
        self._stderr_path = tmp_path / f"{Path(script).stem}-{uuid.uuid4().hex[:8]}.stderr"
        self._stderr = self._stderr_path.open("w")
        self.proc = subprocess.Popen(
            [NODE, str(NODE_DIR / script)], cwd=NODE_DIR, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text()

    def __call__(self, op: str, **args):
        """Run one step; return its result, or fail the test with the program's error."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"{op}: no answer within {STEP_TIMEOUT}s; stderr:\n{self.stderr()}")
        if line is None:
            self.proc.wait(timeout=10)
            pytest.fail(f"{op}: the program exited ({self.proc.returncode}):\n{self.stderr()}")
        answer = json.loads(line)
        if not answer["ok"]:
            pytest.fail(f"{op}{args}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        """End the program (it closes its connections) and check that it exited cleanly."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._stderr.close()
        assert code == 0, self.stderr()

    def __enter__(self) -> NodeProgram:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is None:
            self.close()
        else:  # the test already failed: only make sure the program is gone
            self.proc.kill()
            self.proc.wait()
            self._stderr.close()
