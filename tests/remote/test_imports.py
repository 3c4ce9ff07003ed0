"""An offline `plan` pays nothing for the remote cache at start-up: no HTTP or S3 library is imported."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_what_plan_imports_loads_no_network_library() -> None:
    # What `renderspec plan` imports before it knows whether a remote is configured.
    code = (
        "import sys, renderspec.cli, renderspec.project, renderspec.remote, renderspec.remote.tier; "
        "print(' '.join(sorted(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = set(run.stdout.split())
    assert not loaded & {"httpx", "anyio", "boto3", "botocore", "renderspec.providers.http"}
