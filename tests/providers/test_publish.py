"""APIYI with local files: published to an S3-compatible bucket (moto's server on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import start_in_thread
from tests.conftest import run_cli

SECRET = "s3-secret-9f8e7d6c5b4a"


@pytest.fixture
def bucket() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AK", aws_secret_access_key=SECRET
    ).create_bucket(Bucket="storyboard")
    try:
        yield endpoint
    finally:
        server.stop()


def test_an_apiyi_build_publishes_local_files_once_and_renders(example_project: Path, bucket: str) -> None:
    (example_project / "renderspec.toml").write_text(
        f'[renderspec]\npoll_interval = 0.05\napiyi_s3_bucket = "storyboard"\napiyi_s3_endpoint = "{bucket}"\napiyi_s3_prefix = "refs/"\n'
    )
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=4)) as running:
        env = {
            "RENDERSPEC_PROVIDER": "apiyi",
            "RENDERSPEC_BASE_URL": running.url,
            "APIYI_API_KEY": "sk-apiyi",
            "AWS_ACCESS_KEY_ID": "AK",
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }
        run = run_cli("build", "--json", cwd=example_project, env=env)
        assert run.code == 0, run.err
        assert json.loads(run.out)["summary"]["rendered"] == 8
        tasks = httpx.get(f"{running.url}/_emulator/tasks").json()["tasks"]
        assert {task["flavour"] for task in tasks} == {"apiyi"}
        urls = {item["url"] for task in tasks for item in task["request"]["input"]["media"]}
        assert all(url.startswith(f"{bucket}/storyboard/refs/") and "X-Amz-Signature" in url for url in urls)
        objects = boto3.client(
            "s3", endpoint_url=bucket, region_name="us-east-1", aws_access_key_id="AK", aws_secret_access_key=SECRET
        ).list_objects_v2(Bucket="storyboard")
        assert objects["KeyCount"] == 6  # each distinct file once, however many shots use it
        assert SECRET not in run.out + run.err
        assert SECRET not in "".join(p.read_text(errors="ignore") for p in (example_project / "cache").rglob("*.json"))
        assert run_cli("build", cwd=example_project, env=env).code == 0
        assert len(httpx.get(f"{running.url}/_emulator/tasks").json()["tasks"]) == 8


def test_a_bucket_without_credentials_is_a_clear_error(example_project: Path) -> None:
    (example_project / "renderspec.toml").write_text('[renderspec]\napiyi_s3_bucket = "storyboard"\n')
    run = run_cli(
        "build",
        "--provider",
        "apiyi",
        cwd=example_project,
        env={"APIYI_API_KEY": "k", "RENDERSPEC_BASE_URL": "http://127.0.0.1:9"},
    )
    assert run.code == 2 and "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in run.err
