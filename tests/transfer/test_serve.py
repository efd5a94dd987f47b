"""The mirror's HTTP server (transfer/serve.py over datasets/mirror.py's WorkspaceShelf), on
loopback with a real manifest: what it serves, what it refuses, and many clients at once."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
from pathlib import Path

import pytest

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import WorkspaceShelf
from easy_oww.transfer.serve import build_app, serving

MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def workspace(tmp_path) -> tuple[Path, CacheManager, dict[str, bytes]]:
    """A workspace whose manifest records two files, with things around them that must not
    be served: a partial download, a file that failed a check, an unrecorded file, and the
    manifest itself (one level up)."""
    root = tmp_path / "ws"
    datasets = root / "datasets"
    cache = CacheManager(root / ".cache", datasets)
    files = {"alpha/a.bin": os.urandom(8 * MiB + 3), "alpha/sub dir/b c.bin": os.urandom(1000)}
    for rel, data in files.items():
        (datasets / rel).parent.mkdir(parents=True, exist_ok=True)
        (datasets / rel).write_bytes(data)
        cache.record_file("alpha", datasets / rel, size=len(data), hash=sha256(data))
    cache.mark_complete("alpha")
    (datasets / "alpha" / "c.bin.part").write_bytes(b"half")
    (datasets / "alpha" / "unrecorded.bin").write_bytes(b"x" * 10)
    bad = datasets / "beta" / "bad.bin"
    bad.parent.mkdir()
    bad.write_bytes(b"rotten")
    cache.record_file("beta", bad, size=6, hash=sha256(b"rotten"))
    cache.record_failure("beta", bad, "hash mismatch")
    (tmp_path / "secret.txt").write_bytes(b"s" * 1000)
    return root, cache, files


def request(url: str, target: str, method: str = "GET", headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    """One request with `target` sent as is (http.client does not normalise it)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_verified_files_with_hash_etags_ranges_and_the_index(workspace):
    root, cache, files = workspace
    data = files["alpha/a.bin"]
    with serving(build_app(WorkspaceShelf(cache))) as server:
        status, headers, body = request(server.url, "/datasets/alpha/a.bin")
        assert status == 200 and body == data
        assert headers["Etag"] == f'"{sha256(data)}"'
        assert headers["Accept-Ranges"] == "bytes"
        status, headers, body = request(server.url, "/datasets/alpha/a.bin", "HEAD")
        assert status == 200 and body == b"" and headers["Content-Length"] == str(len(data))
        # A range, with If-Range naming this file's hash: 206, just those bytes
        etag = f'"{sha256(data)}"'
        status, headers, body = request(server.url, "/datasets/alpha/a.bin",
                                        headers={"Range": "bytes=100-199", "If-Range": etag})
        assert status == 206 and body == data[100:200]
        assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        # If-Range naming another version (an ETag or a date): the whole file, 200
        for other in ('"sha256:' + "0" * 64 + '"', "Wed, 21 Oct 2015 07:28:00 GMT"):
            status, _, body = request(server.url, "/datasets/alpha/a.bin",
                                      headers={"Range": "bytes=100-199", "If-Range": other})
            assert status == 200 and body == data
        status, headers, _ = request(server.url, "/datasets/alpha/a.bin",
                                     headers={"Range": f"bytes={len(data)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
        # A quoted path: the folder with a space
        status, _, body = request(server.url, "/datasets/alpha/sub%20dir/b%20c.bin")
        assert status == 200 and body == files["alpha/sub dir/b c.bin"]
        # Conditions judged against another ETag would mislead: they are ignored
        status, _, body = request(server.url, "/datasets/alpha/a.bin",
                                  headers={"If-None-Match": '"whatever"',
                                           "Accept-Encoding": "gzip"})
        assert status == 200 and body == data
        status, _, body = request(server.url, "/index.json")
    assert status == 200
    assert json.loads(body) == {"easy_oww_mirror": 1, "datasets": [
        {"key": "alpha", "complete": True, "files": [
            {"path": rel, "size": len(blob), "hash": sha256(blob)}
            for rel, blob in sorted(files.items())]}]}


@pytest.mark.parametrize("target", [
    "/datasets/../.cache/manifest.json",
    "/datasets/alpha/../../.cache/manifest.json",
    "/datasets/%2e%2e/.cache/manifest.json",
    "/datasets/alpha/%2E%2E/%2e%2e/.cache/manifest.json",
    "/datasets/..%2f.cache%2fmanifest.json",
    "/datasets//etc/passwd",
    "/datasets/%2Fetc%2Fpasswd",
    "/datasets/alpha\\..\\..\\.cache\\manifest.json",
    "/datasets/alpha/./a.bin",
    "/datasets/alpha/c.bin.part",  # a partial download
    "/datasets/alpha/c.bin",
    "/datasets/alpha/unrecorded.bin",  # on disk, never verified
    "/datasets/beta/bad.bin",  # failed a check
    "/.cache/manifest.json",
    "/datasets/",
    "/../secret.txt",
])
def test_anything_but_a_verified_file_is_refused(workspace, target):
    _, cache, _ = workspace
    with serving(build_app(WorkspaceShelf(cache))) as server:
        status, _, body = request(server.url, target)
    assert status in (403, 404), (target, status)
    assert b"rotten" not in body and b"version" not in body and b"s" * 100 not in body


def test_a_link_out_a_changed_file_and_writes_are_refused(workspace, tmp_path):
    root, cache, files = workspace
    datasets = root / "datasets"
    secret = tmp_path / "secret.txt"  # outside the tree, 1000 bytes like b c.bin
    with serving(build_app(WorkspaceShelf(cache))) as server:
        assert request(server.url, "/datasets/alpha/sub%20dir/b%20c.bin")[0] == 200
        # The verified file is swapped for a link out of the tree, of the same size
        link = datasets / "alpha" / "sub dir" / "b c.bin"
        link.unlink()
        link.symlink_to(secret)
        status, _, body = request(server.url, "/datasets/alpha/sub%20dir/b%20c.bin")
        assert status == 403 and body != secret.read_bytes()
        # The file changed size since it was verified
        with open(datasets / "alpha" / "a.bin", "ab") as grown:
            grown.write(b"more")
        assert request(server.url, "/datasets/alpha/a.bin")[0] == 404
        for method in ("PUT", "POST", "DELETE"):
            assert request(server.url, "/datasets/alpha/a.bin", method)[0] == 405
    # A workspace rebuilt with the link already there: not even listed
    shelf = WorkspaceShelf(cache)
    assert "alpha/sub dir/b c.bin" not in shelf.files()
    assert "alpha/a.bin" not in shelf.files()


def test_a_file_verified_while_serving_is_served_without_a_restart(workspace):
    root, cache, _ = workspace
    with serving(build_app(WorkspaceShelf(cache))) as server:
        assert request(server.url, "/datasets/alpha/unrecorded.bin")[0] == 404
        path = root / "datasets" / "alpha" / "unrecorded.bin"
        cache.record_file("alpha", path, size=10, hash=sha256(b"x" * 10))
        status, headers, body = request(server.url, "/datasets/alpha/unrecorded.bin")
    assert status == 200 and body == b"x" * 10 and headers["Etag"] == f'"{sha256(body)}"'


def test_sixteen_clients_with_ranges_at_once_get_the_right_bytes(workspace):
    _, cache, files = workspace
    data = files["alpha/a.bin"]
    etag = f'"{sha256(data)}"'
    clients = 16
    start = threading.Barrier(clients)
    problems: list[str] = []
    served = [0] * clients

    def client(index: int) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            start.wait()
            # Each client reads the whole file in 16 ranges on one kept-alive connection,
            # starting at its own range so that every part is in flight at once.
            step = len(data) // 16 + 1
            for k in range(16):
                first = ((index + k) % 16) * step
                last = min(first + step, len(data)) - 1
                conn.request("GET", "/datasets/alpha/a.bin",
                             headers={"Range": f"bytes={first}-{last}", "If-Range": etag})
                response = conn.getresponse()
                body = response.read()
                if response.status != 206 or body != data[first:last + 1]:
                    problems.append(f"client {index} range {first}-{last}: {response.status}")
                served[index] += len(body)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            problems.append(f"client {index}: {exc!r}")
        finally:
            conn.close()

    with serving(build_app(WorkspaceShelf(cache))) as server:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert problems == []
    assert served == [len(data)] * clients
