"""S3 mirrors end to end: `easy-oww mirror push s3://…` and `download --mirror s3://…`, real
`easy-oww` processes against a real S3-compatible server on loopback (moto's server mode,
reached through AWS_ENDPOINT_URL as MinIO or R2 would be) and the recording origin of
test_mirror.py (conftest.py). Every run carries a secret key; none of it may appear in any
output or file."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.request import Request, urlopen

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import WorkspaceShelf
from tests.datasets.helpers import (
    REPO,
    Run,
    manifest,
    new_workspace,
    origin_requests,
    run_cli,
    sha256,
)

BUCKET = "team-bucket"
MIRROR = f"s3://{BUCKET}/oww"
KEY_ID = "AKIAEASYOWWTEST0001"
# moto's server is werkzeug's, which logs each request: '... "GET /path HTTP/1.1" 206 -'
LOGGED = re.compile(r'"(?:\x1b\[[\d;]*m)*(\w+) (\S+) HTTP/[\d.]+(?:\x1b\[[\d;]*m)*" (\d{3})')


@pytest.fixture
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL. moto keeps its
    buckets in the process, across servers: each test starts from none (its reset API)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urlopen(Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def secret() -> str:
    return "sk-" + secrets.token_hex(20)


@pytest.fixture
def aws(s3_server, secret) -> dict[str, str]:
    """The standard variables a user sets for an S3-compatible store."""
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ENDPOINT_URL": s3_server, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}  # no instance-metadata probe on this machine


@pytest.fixture
def store(aws):
    """The test's own client of the same server (to make the bucket, look, and tamper)."""
    client = boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1").client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"],
                                        config=Config(request_checksum_calculation="when_required"))
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def s3_log(caplog):
    """The requests the S3 server answered, as (method, path, status), in order."""
    caplog.set_level(logging.INFO, logger="werkzeug")

    def requests() -> list[tuple[str, str, int]]:
        found = (LOGGED.search(r.getMessage()) for r in caplog.records if r.name == "werkzeug")
        return [(m.group(1), m.group(2), int(m.group(3))) for m in found if m]

    return requests


def objects(store) -> dict[str, dict]:
    listing = store.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: o for o in listing}


def assert_no_secret(secret: str, runs: list[Run], *folders: Path) -> None:
    for run in runs:
        assert secret not in run.out and secret not in run.err
        assert KEY_ID not in run.out and KEY_ID not in run.err
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert secret.encode() not in data, path
                assert KEY_ID.encode() not in data, path


def test_push_then_download_from_the_bucket(tmp_path, workspace_a, origin, blobs, aws, store,
                                            secret, s3_log):
    push = run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a), **aws)
    assert push.code == 0, push.err
    lines = push.out.strip().splitlines()
    assert lines[0] == f"Pushing 3 verified file(s) (18.2 MB) of {workspace_a} to {MIRROR}"
    assert sorted(lines[1:4]) == ["alpha/a.bin: uploaded, 17.8 MB",
                                  "alpha/b.bin: uploaded, 300.0 kB",
                                  "gamma/c.bin: uploaded, 40.0 kB"]
    assert lines[4] == (f"Uploaded 3 file(s) (18.2 MB); 0 already there; {MIRROR}/index.json "
                        "written.")
    stored = objects(store)
    assert set(stored) == {"oww/index.json", "oww/datasets/alpha/a.bin",
                           "oww/datasets/alpha/b.bin", "oww/datasets/gamma/c.bin"}
    head = store.head_object(Bucket=BUCKET, Key="oww/datasets/alpha/a.bin")
    assert head["Metadata"] == {"easy-oww-hash": sha256(blobs["a.bin"])}
    assert head["ETag"].endswith('-3"')  # 17 MiB went up as a multipart upload of 3 parts
    index = json.loads(store.get_object(Bucket=BUCKET, Key="oww/index.json")["Body"].read())
    cache = CacheManager(workspace_a / ".cache", workspace_a / "datasets")
    assert index == WorkspaceShelf(cache).index()  # what `mirror serve` serves

    origin.reset_counters()
    b = new_workspace(tmp_path, "B", origin, blobs)
    down = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                   "--mirror", MIRROR, **aws)
    assert down.code == 0, down.err
    assert origin_requests(origin, "a.bin", "b.bin") == []  # all of it from the bucket
    for name in ("a.bin", "b.bin"):
        assert sha256((b / "datasets" / "alpha" / name).read_bytes()) == sha256(blobs[name])
    records = manifest(b)["datasets"]["alpha"]["files"]
    assert {r["from"] for r in records.values()} == {MIRROR}
    assert f"Mirrors first: {MIRROR}" in down.err
    assert not list((b / "datasets").rglob("*.part*"))

    # A push again uploads nothing: every object is there with its size and hash
    before = {k: (o["ETag"], o["LastModified"]) for k, o in objects(store).items()}
    seen = len(s3_log())
    again = run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a), **aws)
    assert again.code == 0, again.err
    assert "uploaded," not in again.out
    assert again.out.count(": already there") == 3
    assert again.out.strip().splitlines()[-1] == (
        f"Uploaded 0 file(s) (0 B); 3 already there; {MIRROR}/index.json unchanged.")
    assert {k: (o["ETag"], o["LastModified"]) for k, o in objects(store).items()} == before
    asked = s3_log()[seen:]
    assert asked and {method for method, _, _ in asked} <= {"GET", "HEAD"}  # no PUT, no POST
    status = run_cli(tmp_path, "download", "--status", "--workspace", str(b), **aws)
    assert f"Note: alpha: 2 file(s) (18.1 MB) from mirror {MIRROR}" in status.err
    assert_no_secret(secret, [push, down, again, status], tmp_path)


def test_a_tampered_object_is_refused_and_the_origin_used(tmp_path, workspace_a, origin,
                                                          blobs, aws, store, secret):
    push = run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a), **aws)
    assert push.code == 0, push.err
    # Other bytes of the right size, with the pushed hash in their metadata: the store's word
    # says they are good; only the catalog's hash can tell.
    store.put_object(Bucket=BUCKET, Key="oww/datasets/alpha/b.bin",
                     Body=os.urandom(len(blobs["b.bin"])),
                     Metadata={"easy-oww-hash": sha256(blobs["b.bin"])})
    origin.reset_counters()
    b = new_workspace(tmp_path, "B", origin, blobs)
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  EASY_OWW_MIRROR=MIRROR, **aws)
    assert run.code == 0, run.err
    assert (b / "datasets" / "alpha" / "b.bin").read_bytes() == blobs["b.bin"]
    assert (b / "datasets" / "alpha" / "a.bin").read_bytes() == blobs["a.bin"]
    assert origin.requests_for("b.bin", "GET") and not origin.requests_for("a.bin")
    said = [line for line in run.err.splitlines() if "fail the catalog's check" in line]
    assert len(said) == 1 and said[0].startswith(f"alpha: b.bin: mirror {MIRROR} served bytes")
    assert "sha256 mismatch" in said[0] and "deleted the copy" in said[0]
    records = manifest(b)["datasets"]["alpha"]["files"]
    assert records["alpha/a.bin"]["from"] == MIRROR and "from" not in records["alpha/b.bin"]
    assert not list((b / "datasets").rglob("*.part*"))
    assert_no_secret(secret, [push, run], tmp_path)


def test_an_interrupted_download_resumes_with_a_range(tmp_path, workspace_a, origin, blobs,
                                                      aws, store, s3_log):
    """A part left by an earlier run (its record names the object and its ETag) is resumed:
    only the rest is asked for, and the whole still has the catalog's hash."""
    assert run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a),
                   **aws).code == 0
    b = new_workspace(tmp_path, "B", origin, blobs)
    dest = b / "datasets" / "alpha" / "a.bin"
    dest.parent.mkdir(parents=True)
    etag = store.head_object(Bucket=BUCKET, Key="oww/datasets/alpha/a.bin")["ETag"]
    half = len(blobs["a.bin"]) // 2
    Path(str(dest) + ".s3.part").write_bytes(blobs["a.bin"][:half])
    Path(str(dest) + ".s3.part.json").write_text(json.dumps(
        {"url": f"s3://{BUCKET}/oww/datasets/alpha/a.bin", "etag": etag,
         "size": len(blobs["a.bin"]), "written": []}))
    origin.reset_counters()
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  "--mirror", MIRROR, **aws)
    assert run.code == 0, run.err
    assert dest.read_bytes() == blobs["a.bin"]
    assert origin_requests(origin, "a.bin", "b.bin") == []
    assert not list((b / "datasets").rglob("*.part*"))
    # Only the half it lacked was asked for (a ranged GET, answered 206) and moved
    gets = [(path, status) for method, path, status in s3_log() if method == "GET"]
    assert ("/team-bucket/oww/datasets/alpha/a.bin", 206) in gets
    assert ("/team-bucket/oww/datasets/alpha/a.bin", 200) not in gets
    moved = len(blobs["a.bin"]) - half + len(blobs["b.bin"])
    assert run.out.startswith(f"2 file(s) downloaded ({moved / 1e6:.1f} MB)")


def test_a_part_of_a_replaced_object_starts_again(tmp_path, workspace_a, origin, blobs, aws,
                                                  store, s3_log):
    """The part's record names an ETag the object no longer has (pushed anew since): If-Match
    fails, the part is dropped and the whole object fetched; no two versions are joined."""
    assert run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a),
                   **aws).code == 0
    b = new_workspace(tmp_path, "B", origin, blobs)
    dest = b / "datasets" / "alpha" / "a.bin"
    dest.parent.mkdir(parents=True)
    half = len(blobs["a.bin"]) // 2
    Path(str(dest) + ".s3.part").write_bytes(os.urandom(half))  # bytes of an older version
    Path(str(dest) + ".s3.part.json").write_text(json.dumps(
        {"url": f"s3://{BUCKET}/oww/datasets/alpha/a.bin", "etag": '"older"',
         "size": len(blobs["a.bin"]), "written": []}))
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  "--mirror", MIRROR, **aws)
    assert run.code == 0, run.err
    assert dest.read_bytes() == blobs["a.bin"]
    assert manifest(b)["datasets"]["alpha"]["files"]["alpha/a.bin"]["from"] == MIRROR
    gets = [(path, status) for method, path, status in s3_log() if method == "GET"]
    assert ("/team-bucket/oww/datasets/alpha/a.bin", 412) in gets  # If-Match refused
    assert ("/team-bucket/oww/datasets/alpha/a.bin", 200) in gets  # then the whole object


def test_push_errors_are_one_line(tmp_path, workspace_a, aws, store, secret):
    no_keys = {k: v for k, v in aws.items()
               if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    cases = [
        (no_keys, MIRROR, 2, "no AWS credentials found; set AWS_ACCESS_KEY_ID"),
        (aws | {"AWS_PROFILE": "nosuch"}, MIRROR, 2,
         "AWS_PROFILE names the profile 'nosuch', which ~/.aws/credentials"),
        (aws, "s3://no-such-bucket/x", 1,
         f"the bucket 'no-such-bucket' does not exist at {aws['AWS_ENDPOINT_URL']}"),
        (aws | {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, MIRROR, 1,
         "cannot reach the S3 endpoint http://127.0.0.1:9"),
        (aws, "s3://", 2, "expected s3://BUCKET[/PREFIX]"),
    ]
    runs = []
    for env, target, code, says in cases:
        run = run_cli(tmp_path, "mirror", "push", target, "--workspace", str(workspace_a),
                      **env)
        runs.append(run)
        assert run.code == code, (says, run.err)
        assert says in run.err, run.err
        assert run.err.startswith("Error: ") and len(run.err.strip().splitlines()) == 1
        assert run.out == ""  # (nothing announced before the store said no)
    assert objects(store) == {}  # nothing was uploaded by any of them
    assert_no_secret(secret, runs, tmp_path)


def test_a_bucket_download_without_credentials_or_bucket(tmp_path, origin, blobs, aws, store,
                                                         secret):
    """No credentials: one line, exit 2, before anything is fetched (like any mirror that is
    not one). A missing bucket: said once, and every file comes from the origin."""
    b = new_workspace(tmp_path, "B", origin, blobs)
    no_keys = {k: v for k, v in aws.items()
               if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  "--mirror", MIRROR, **no_keys)
    assert run.code == 2
    assert run.err.strip() == (f"Error: mirror '{MIRROR}': {MIRROR}: no AWS credentials found; "
                               "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                               "(a profile of ~/.aws/credentials)")
    assert origin.requests == []
    gone = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                   "--mirror", "s3://no-such-bucket", **aws)
    assert gone.code == 0, gone.err
    assert gone.err.count("the bucket 'no-such-bucket' does not exist") == 1
    assert "not asked again in this run" in gone.err
    for name in ("a.bin", "b.bin"):
        assert (b / "datasets" / "alpha" / name).read_bytes() == blobs[name]
        assert origin.requests_for(name, "GET")
    assert_no_secret(secret, [run, gone], tmp_path)


def test_credentials_from_a_profile_file(tmp_path, workspace_a, aws, store, secret):
    """AWS_PROFILE and ~/.aws/credentials, as boto3 reads them (HOME is the test's)."""
    home = tmp_path / "home" / ".aws"
    home.mkdir(parents=True)
    (home / "credentials").write_text(f"[lab]\naws_access_key_id = {KEY_ID}\n"
                                      f"aws_secret_access_key = {secret}\n")
    env = {k: v for k, v in aws.items() if k not in ("AWS_ACCESS_KEY_ID",
                                                      "AWS_SECRET_ACCESS_KEY")}
    run = run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a),
                  AWS_PROFILE="lab", **env)
    assert run.code == 0, run.err
    assert "oww/datasets/alpha/a.bin" in objects(store)
    assert_no_secret(secret, [run], tmp_path / "A")
    assert secret not in run.out + run.err


def test_without_the_s3_extra_one_line_says_how_to_install_it(tmp_path, origin, blobs, aws):
    """boto3 hidden from the process (a finder that refuses it, as a missing install does)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('boto3', 'botocore'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Refuse())\n")
    pythonpath = os.pathsep.join([str(hide), str(REPO / "src"), str(REPO)])
    b = new_workspace(tmp_path, "B", origin, blobs)
    for args in (("download", "--workspace", str(b), "--mirror", MIRROR),
                 ("mirror", "push", MIRROR, "--workspace", str(b))):
        run = run_cli(tmp_path, *args, PYTHONPATH=pythonpath, **aws)
        assert run.code == 2, run.err
        assert "s3:// mirrors need boto3; install it with: pip install 'easy-oww[s3]'" in run.err
        assert len(run.err.strip().splitlines()) == 1
    assert origin.requests == []


def test_a_file_that_rotted_since_it_was_checked_is_not_pushed(tmp_path, workspace_a, blobs,
                                                               aws, store):
    """Same size, other bytes: the manifest still calls it verified, the push hashes it
    again and leaves it out (of the bucket and of the index); the rest go up; exit 1."""
    rotten = workspace_a / "datasets" / "alpha" / "b.bin"
    rotten.write_bytes(os.urandom(len(blobs["b.bin"])))
    run = run_cli(tmp_path, "mirror", "push", MIRROR, "--workspace", str(workspace_a), **aws)
    assert run.code == 1
    assert ("alpha/b.bin: not pushed: its bytes no longer match the hash recorded when it was "
            "checked; run `easy-oww verify`") in run.out
    assert run.err.strip().splitlines()[-1] == (  # (after the progress lines of the rest)
        "Error: 1 file(s) not pushed: they fail their recorded hash; run `easy-oww verify`, "
        "then push again")
    assert set(objects(store)) == {"oww/index.json", "oww/datasets/alpha/a.bin",
                                   "oww/datasets/gamma/c.bin"}
    index = json.loads(store.get_object(Bucket=BUCKET, Key="oww/index.json")["Body"].read())
    listed = {f["path"] for d in index["datasets"] for f in d["files"]}
    assert listed == {"alpha/a.bin", "gamma/c.bin"}
