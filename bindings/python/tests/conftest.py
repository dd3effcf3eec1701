"""Shared by the tests of the installed `devaddr` wheel (run by tests/bindings_python.rs).

DEVADDR_BIN is the `devaddr` command the results are compared with; DEVADDR_ROOT the
repository (for its example specs). A test that needs a tool that is absent skips,
unless CI=true, where it fails.
"""

import os
import subprocess
from pathlib import Path

import pytest


def require(condition: bool, why: str) -> None:
    """Skip (fail under CI=true) unless `condition`."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test, but: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def root() -> Path:
    r = os.environ.get("DEVADDR_ROOT")
    require(r is not None, "DEVADDR_ROOT is not set (run through cargo test)")
    return Path(r)


@pytest.fixture(scope="session")
def cli():
    """Run the devaddr command: (exit code, stdout, stderr)."""
    exe = os.environ.get("DEVADDR_BIN")
    require(exe is not None, "DEVADDR_BIN is not set (run through cargo test)")

    def run(*args: str, cwd=None):
        p = subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd)
        return p.returncode, p.stdout, p.stderr

    return run


@pytest.fixture(scope="session")
def spec_files(root):
    """Every spec the bindings must plan as the CLI does: examples/, tests/qemu-specs/."""
    files = []
    for d in ("examples", "tests/qemu-specs"):
        files += sorted((root / d).glob("*.yaml"))
    assert len(files) > 20
    return files
