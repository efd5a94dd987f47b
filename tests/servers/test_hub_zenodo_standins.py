"""The Hugging Face Hub and Zenodo stand-ins answer in the real shapes (plain urllib3)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from urllib3.exceptions import ProtocolError

from tests.servers.hub_standin import HubStandin, git_blob_sha1, lfs_pointer
from tests.servers.zenodo_standin import ZenodoStandin

REPO = "davidscripka/MIT_environmental_impulse_responses"
DATA = bytes(range(256)) * 40  # 10,240 bytes
SMALL = b"RIFF....WAVEfmt tiny"
TOKEN = "hf_standin_token"


@dataclass
class Got:
    status: int
    headers: dict[str, str]
    body: bytes
    error: Exception | None = None

    def json(self) -> object:
        return json.loads(self.body)


_pool = urllib3.PoolManager(retries=False)


def get(url: str, method: str = "GET", **headers: str) -> Got:
    """One request: no retries, no redirects; the body is kept even when the read fails."""
    resp = _pool.request(method, url, headers={k.replace("_", "-"): v
                                               for k, v in headers.items()},
                         preload_content=False, redirect=False, timeout=10.0)
    chunks: list[bytes] = []
    error: Exception | None = None
    try:
        while chunk := resp.read1(65536):
            chunks.append(chunk)
    except ProtocolError as exc:
        error = exc
    finally:
        resp.release_conn() if error is None else resp.close()
    return Got(resp.status, dict(resp.headers), b"".join(chunks), error)


@pytest.fixture
def hub() -> Iterator[HubStandin]:
    with HubStandin(page_size=3) as server:
        for i in range(5):
            server.add_file(REPO, f"16khz/ir{i}.wav", DATA[i:])
        server.add_file(REPO, "16khz/notes.txt", SMALL, lfs=False)
        server.add_file(REPO, "16khz/more/deep.wav", DATA)
        server.add_file(REPO, "32khz/other.wav", DATA)
        server.add_file(REPO, "README.md", b"# readme\n", lfs=False)
        yield server


@pytest.fixture
def zenodo() -> Iterator[ZenodoStandin]:
    with ZenodoStandin() as server:
        server.add_file(4060432, "FSD50K.dev_audio.z01", DATA)
        server.add_file(4060432, "FSD50K.dev_audio.zip", SMALL)
        yield server


def list_all(url: str, **headers: str) -> tuple[list[dict], list[str]]:
    """Follow Link rel=next like huggingface_hub's paginate(); returns items and page URLs."""
    items: list[dict] = []
    urls: list[str] = []
    next_url: str | None = url
    while next_url:
        urls.append(next_url)
        got = get(next_url, **headers)
        assert got.status == 200, got.body
        page = got.json()
        assert isinstance(page, list)
        items.extend(page)
        link = got.headers.get("Link")
        if link is None:
            next_url = None
        else:
            target, rel = link.split(";", 1)
            assert rel.strip() == 'rel="next"'
            next_url = target.strip()[1:-1]
    return items, urls


# -- Hub: the tree API ------------------------------------------------------------------------


def test_tree_entries_have_the_hub_shape(hub: HubStandin) -> None:
    items, _ = list_all(hub.tree_url(REPO, "16khz"))
    by_path = {item["path"]: item for item in items}
    assert [i["path"] for i in items] == sorted(by_path)
    assert set(by_path) == {f"16khz/ir{i}.wav" for i in range(5)} | {
        "16khz/notes.txt", "16khz/more", "16khz/more/deep.wav"}

    lfs = by_path["16khz/ir1.wav"]
    content = DATA[1:]
    pointer = lfs_pointer(hashlib.sha256(content).hexdigest(), len(content))
    assert lfs == {"type": "file", "oid": git_blob_sha1(pointer), "size": len(content),
                   "lfs": {"oid": hashlib.sha256(content).hexdigest(), "size": len(content),
                           "pointerSize": len(pointer)},
                   "path": "16khz/ir1.wav"}
    plain = by_path["16khz/notes.txt"]
    assert plain == {"type": "file", "size": len(SMALL), "path": "16khz/notes.txt",
                     "oid": hashlib.sha1(b"blob %d\0" % len(SMALL) + SMALL).hexdigest()}
    folder = by_path["16khz/more"]
    assert folder["type"] == "directory" and folder["size"] == 0 and len(folder["oid"]) == 40


def test_tree_without_recursive_lists_direct_children_only(hub: HubStandin) -> None:
    items, _ = list_all(hub.tree_url(REPO, "16khz", recursive=False))
    paths = [i["path"] for i in items]
    assert "16khz/more" in paths and "16khz/more/deep.wav" not in paths
    root, _ = list_all(hub.tree_url(REPO, "", recursive=False))
    assert [(i["type"], i["path"]) for i in root] == [
        ("directory", "16khz"), ("directory", "32khz"), ("file", "README.md")]


def test_tree_pages_carry_an_absolute_link_with_a_cursor(hub: HubStandin) -> None:
    items, urls = list_all(hub.tree_url(REPO, "16khz"))
    assert len(items) == 8 and len(urls) == 3  # page_size 3: 3 + 3 + 2
    assert len({i["path"] for i in items}) == 8
    for url in urls[1:]:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == hub.endpoint
        assert parts.path == urlsplit(urls[0]).path
        query = parse_qs(parts.query)
        assert query["recursive"] == ["true"] and len(query["cursor"]) == 1
        decoded = json.loads(base64.b64decode(query["cursor"][0]))
        assert set(decoded) == {"file_name"}
    assert len(hub.requests_of("tree")) == 3
    bad = get(urls[0] + "&cursor=!!!")
    assert bad.status == 400


def test_tree_page_size_is_a_constructor_argument() -> None:
    with HubStandin() as server:
        assert server.page_size == 50
        for i in range(120):
            server.add_file(REPO, f"16khz/f{i:03}.wav", b"x")
        items, urls = list_all(server.tree_url(REPO, "16khz"))
        assert len(items) == 120 and len(urls) == 3


def test_tree_errors_name_the_hub_error_code(hub: HubStandin) -> None:
    missing_folder = get(hub.tree_url(REPO, "48khz"))
    assert missing_folder.status == 404
    assert missing_folder.headers["X-Error-Code"] == "EntryNotFound"
    missing_rev = get(hub.tree_url(REPO, "16khz", revision="v9"))
    assert (missing_rev.status, missing_rev.headers["X-Error-Code"]) == (404, "RevisionNotFound")
    missing_repo = get(hub.tree_url("nobody/nothing", "16khz"))
    assert (missing_repo.status, missing_repo.headers["X-Error-Code"]) == (401, "RepoNotFound")
    hub.fail_tree_next(1, status=503)
    assert get(hub.tree_url(REPO, "16khz")).status == 503
    assert get(hub.tree_url(REPO, "16khz")).status == 200


def test_revisions_by_branch_slash_name_and_commit(hub: HubStandin) -> None:
    hub.add_file(REPO, "16khz/pr.wav", b"pr", revision="refs/pr/1")
    url = hub.tree_url(REPO, "16khz", revision="refs/pr/1")
    assert "refs%2Fpr%2F1" in url
    items, _ = list_all(url)
    assert [i["path"] for i in items] == ["16khz/pr.wav"]
    commit = hub.commit(REPO)
    items, _ = list_all(hub.tree_url(REPO, "32khz", revision=commit))
    assert [i["path"] for i in items] == ["32khz/other.wav"]
    before = hub.commit(REPO)
    hub.add_file(REPO, "32khz/new.wav", b"n")
    assert hub.commit(REPO) != before


def test_the_revision_api_names_the_commit_as_dataset_info_reads_it(hub: HubStandin) -> None:
    got = get(f"{hub.endpoint}/api/datasets/{REPO}/revision/main")
    assert got.status == 200
    info = got.json()
    assert (info["id"], info["sha"], info["private"]) == (REPO, hub.commit(REPO), False)
    assert {"rfilename": "16khz/ir0.wav"} in info["siblings"]
    by_sha = get(f"{hub.endpoint}/api/datasets/{REPO}/revision/{hub.commit(REPO)}").json()
    assert by_sha["sha"] == hub.commit(REPO)
    hub.add_file(REPO, "x/pr.wav", b"pr", revision="refs/pr/1")
    pr = get(f"{hub.endpoint}/api/datasets/{REPO}/revision/refs%2Fpr%2F1").json()
    assert pr["sha"] == hub.commit(REPO, revision="refs/pr/1")
    missing = get(f"{hub.endpoint}/api/datasets/{REPO}/revision/v9")
    assert (missing.status, missing.headers["X-Error-Code"]) == (404, "RevisionNotFound")
    nobody = get(f"{hub.endpoint}/api/datasets/nobody/nothing/revision/main")
    assert (nobody.status, nobody.headers["X-Error-Code"]) == (401, "RepoNotFound")


def test_the_revision_api_keeps_the_token_rule() -> None:
    with HubStandin(require_token=TOKEN) as server:
        server.add_file(REPO, "a.wav", DATA)
        url = f"{server.endpoint}/api/datasets/{REPO}/revision/main"
        assert get(url).status == 401
        assert get(url, Authorization=f"Bearer {TOKEN}").json()["sha"] == server.commit(REPO)


def test_an_old_commit_keeps_its_files_after_main_moves_on(hub: HubStandin) -> None:
    pinned = hub.commit(REPO)
    hub.add_file(REPO, "16khz/ir0.wav", b"main moved on")  # replaced on main: a new commit
    hub.remove_file(REPO, "32khz/other.wav")
    assert hub.commit(REPO) != pinned
    old, _ = list_all(hub.tree_url(REPO, "16khz", revision=pinned))
    new, _ = list_all(hub.tree_url(REPO, "16khz"))
    old_ir0 = next(i for i in old if i["path"] == "16khz/ir0.wav")
    new_ir0 = next(i for i in new if i["path"] == "16khz/ir0.wav")
    assert old_ir0["lfs"]["oid"] == hashlib.sha256(DATA).hexdigest()
    assert new_ir0["lfs"]["oid"] == hashlib.sha256(b"main moved on").hexdigest()
    for revision, body in ((pinned, DATA), ("main", b"main moved on")):
        resolved = get(hub.resolve_url(REPO, "16khz/ir0.wav", revision=revision))
        assert resolved.status == 302
        assert get(resolved.headers["Location"]).body == body
    assert get(hub.resolve_url(REPO, "32khz/other.wav", revision=pinned)).status == 302
    gone = get(hub.resolve_url(REPO, "32khz/other.wav"))
    assert (gone.status, gone.headers["X-Error-Code"]) == (404, "EntryNotFound")
    info = get(f"{hub.endpoint}/api/datasets/{REPO}/revision/{pinned}").json()
    assert info["sha"] == pinned and {"rfilename": "32khz/other.wav"} in info["siblings"]


# -- Hub: /resolve/ and the CDN ---------------------------------------------------------------


def test_resolve_lfs_redirects_to_the_cdn_with_linked_headers(hub: HubStandin) -> None:
    content = DATA[2:]
    sha = hashlib.sha256(content).hexdigest()
    for method in ("HEAD", "GET"):
        got = get(hub.resolve_url(REPO, "16khz/ir2.wav"), method, Accept_Encoding="identity")
        assert got.status == 302
        assert got.headers["X-Linked-Size"] == str(len(content))
        assert got.headers["X-Linked-Etag"] == f'"{sha}"' == got.headers["ETag"]
        assert got.headers["X-Repo-Commit"] == hub.commit(REPO)
        location = urlsplit(got.headers["Location"])
        assert location.hostname == "localhost" and location.port == hub.port
        assert location.path.startswith("/cdn/") and location.path.endswith(sha)
    cdn = get(got.headers["Location"])
    assert cdn.status == 200 and cdn.body == content
    assert cdn.headers["ETag"] == f'"{hashlib.md5(content).hexdigest()}"'
    assert cdn.headers["Accept-Ranges"] == "bytes"
    assert hub.cdn_tokens_issued == 2


def test_resolve_serves_non_lfs_files_directly(hub: HubStandin) -> None:
    got = get(hub.resolve_url(REPO, "16khz/notes.txt"))
    assert got.status == 200 and got.body == SMALL
    assert got.headers["ETag"] == f'"{git_blob_sha1(SMALL)}"'
    assert got.headers["X-Repo-Commit"] == hub.commit(REPO)
    part = get(hub.resolve_url(REPO, "16khz/notes.txt"), Range="bytes=4-7")
    assert part.status == 206 and part.body == SMALL[4:8]
    assert part.headers["Content-Range"] == f"bytes 4-7/{len(SMALL)}"
    assert hub.cdn_tokens_issued == 0


def test_models_have_no_url_prefix() -> None:
    with HubStandin() as server:
        server.add_file("owner/model", "weights.bin", DATA, repo_type="models")
        url = server.resolve_url("owner/model", "weights.bin", repo_type="models")
        assert urlsplit(url).path == "/owner/model/resolve/main/weights.bin"
        got = get(url)
        assert got.status == 302
        assert get(got.headers["Location"]).body == DATA
        assert get(server.endpoint + "/datasets/owner/model/resolve/main/weights.bin"
                   ).status == 401
        listing, _ = list_all(server.tree_url("owner/model", repo_type="models"))
        assert [i["path"] for i in listing] == ["weights.bin"]


def test_resolve_missing_entry(hub: HubStandin) -> None:
    got = get(hub.resolve_url(REPO, "16khz/nope.wav"))
    assert (got.status, got.headers["X-Error-Code"]) == (404, "EntryNotFound")


def cdn_url(hub: HubStandin, path: str = "16khz/ir0.wav") -> str:
    got = get(hub.resolve_url(REPO, path))
    assert got.status == 302
    return got.headers["Location"]


def test_cdn_honours_range_if_range_and_head(hub: HubStandin) -> None:
    url = cdn_url(hub)
    whole = get(url)
    etag, last_modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    part = get(url, Range="bytes=100-199")
    assert part.status == 206 and part.body == DATA[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert get(url, Range="bytes=-10").body == DATA[-10:]
    assert get(url, Range="bytes=10000-").body == DATA[10000:]
    assert get(url, Range="bytes=100-199", If_Range=etag).status == 206
    assert get(url, Range="bytes=100-199", If_Range=last_modified).status == 206
    stale = get(url, Range="bytes=100-199", If_Range='"0123"')
    assert stale.status == 200 and stale.body == DATA
    sha_etag = get(url, Range="bytes=100-199",
                   If_Range=f'"{hashlib.sha256(DATA).hexdigest()}"')
    assert sha_etag.status == 200  # the CDN's validator is its own ETag, not X-Linked-Etag
    beyond = get(url, Range=f"bytes={len(DATA)}-")
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(DATA)}"
    head = get(url, "HEAD", Range="bytes=0-9")
    assert head.status == 206 and head.headers["Content-Length"] == "10" and head.body == b""


def test_cdn_ignores_range_when_gzip_is_offered(hub: HubStandin) -> None:
    url = cdn_url(hub)
    got = get(url, Range="bytes=100-199", Accept_Encoding="gzip, deflate")
    assert got.status == 200 and got.body == DATA
    assert get(url, Range="bytes=100-199", Accept_Encoding="identity").status == 206


def test_cdn_tokens_expire_after_uses_and_time() -> None:
    with HubStandin(cdn_token_uses=2, cdn_token_ttl=60.0) as server:
        server.add_file(REPO, "16khz/a.wav", DATA)
        url = cdn_url(server, "16khz/a.wav")
        assert get(url).status == 200
        assert get(url, "HEAD").status == 200
        spent = get(url)
        assert spent.status == 403 and b"AccessDenied" in spent.body
        url = cdn_url(server, "16khz/a.wav")
        server.advance(61)
        assert get(url).status == 403
        url = cdn_url(server, "16khz/a.wav")  # a fresh resolve gives a working URL again
        assert get(url).status == 200
        assert server.expire_cdn_tokens() == 3
        assert get(url).status == 403
        assert get(server.endpoint + "/cdn/forged/" + "0" * 64).status == 403


def test_token_rule_guards_api_and_resolve_but_not_the_cdn() -> None:
    with HubStandin(require_token=TOKEN) as server:
        server.add_file(REPO, "16khz/a.wav", DATA)
        server.add_file(REPO, "16khz/b.txt", SMALL, lfs=False)
        good = {"Authorization": f"Bearer {TOKEN}"}
        tree = server.tree_url(REPO, "16khz")
        for url in (tree, server.resolve_url(REPO, "16khz/a.wav"),
                    server.resolve_url(REPO, "16khz/b.txt")):
            assert get(url).status == 401
            assert get(url, Authorization="Bearer hf_wrong").status == 401
            assert get(url, **good).status in (200, 302)
        items, _ = list_all(tree, **good)
        assert len(items) == 2
        missing = get(server.tree_url("nobody/nothing"), **good)
        assert (missing.status, missing.headers["X-Error-Code"]) == (404, "RepoNotFound")

        location = get(server.resolve_url(REPO, "16khz/a.wav"), **good).headers["Location"]
        assert get(location).body == DATA  # the CDN needs no token
        assert server.cdn_saw_authorization == 0
        assert get(location, **good).status == 200
        assert server.cdn_saw_authorization == 1
        assert [r.authorization for r in server.requests_of("cdn")] == [False, True]


# -- Hub: accounting and faults ---------------------------------------------------------------


def test_bytes_are_counted_per_file_over_hub_and_cdn(hub: HubStandin) -> None:
    get(cdn_url(hub))
    get(cdn_url(hub), Range="bytes=0-99")
    get(hub.resolve_url(REPO, "16khz/notes.txt"))
    get(hub.resolve_url(REPO, "16khz/notes.txt"), "HEAD")
    assert hub.bytes_sent(REPO, "16khz/ir0.wav") == len(DATA) + 100
    assert hub.bytes_sent(REPO, "16khz/notes.txt") == len(SMALL)
    assert hub.total_bytes_sent() == len(DATA) + 100 + len(SMALL)
    kinds = [(r.kind, r.method, r.status) for r in hub.requests]
    assert kinds[:3] == [("resolve", "GET", 302), ("cdn", "GET", 200), ("resolve", "GET", 302)]
    assert hub.requests_of("cdn")[1].range == "bytes=0-99"
    stats = get(hub.endpoint + "/__stats").json()
    assert isinstance(stats, dict)
    assert stats["bytes_sent"][f"datasets/{REPO}/16khz/ir0.wav"] == len(DATA) + 100
    hub.reset_counters()
    assert hub.bytes_sent(REPO, "16khz/ir0.wav") == 0 and hub.requests == []


def test_faults_drop_the_cdn_leg_and_fail_resolve(hub: HubStandin) -> None:
    hub.set_fault(REPO, "16khz/ir0.wav", drop_after=1000)
    cut = get(cdn_url(hub))
    assert cut.error is not None and cut.body == DATA[:1000]
    assert get(cdn_url(hub)).body == DATA  # times=1 by default

    hub.set_fault(REPO, "16khz/ir0.wav", status=503, times=2)
    assert get(hub.resolve_url(REPO, "16khz/ir0.wav")).status == 503
    assert get(hub.resolve_url(REPO, "16khz/ir0.wav")).status == 503
    assert get(hub.resolve_url(REPO, "16khz/ir0.wav")).status == 302

    hub.set_fault(REPO, "16khz/notes.txt", ignore_range=True)
    assert get(hub.resolve_url(REPO, "16khz/notes.txt"), Range="bytes=0-3").status == 200
    assert get(hub.resolve_url(REPO, "16khz/notes.txt"), Range="bytes=0-3").status == 206


def test_hub_serves_a_file_from_disk(tmp_path: Path) -> None:
    local = tmp_path / "big.wav"
    local.write_bytes(DATA * 3)
    with HubStandin() as server:
        item = server.add_file(REPO, "16khz/big.wav", local)
        assert item.blob.sha256 == hashlib.sha256(DATA * 3).hexdigest()
        url = cdn_url(server, "16khz/big.wav")
        assert get(url).body == DATA * 3
        assert get(url, Range="bytes=20000-20009").body == (DATA * 3)[20000:20010]


# -- Zenodo -----------------------------------------------------------------------------------


def test_record_has_the_zenodo_shape(zenodo: ZenodoStandin) -> None:
    got = get(zenodo.record_url(4060432), Accept="application/json")
    assert got.status == 200 and got.headers["Content-Type"].startswith("application/json")
    record = got.json()
    assert isinstance(record, dict)
    assert record["id"] == 4060432 and record["recid"] == "4060432"
    assert record["doi"] == "10.5281/zenodo.4060432"
    for key in ("conceptrecid", "conceptdoi", "metadata", "links", "created", "updated",
                "status", "stats", "state", "submitted", "title"):
        assert key in record
    files = {f["key"]: f for f in record["files"]}
    assert set(files) == {"FSD50K.dev_audio.z01", "FSD50K.dev_audio.zip"}
    z01 = files["FSD50K.dev_audio.z01"]
    assert z01["size"] == len(DATA)
    assert z01["checksum"] == f"md5:{hashlib.md5(DATA).hexdigest()}"
    assert z01["links"]["self"] == (f"{zenodo.endpoint}/api/records/4060432/files/"
                                    "FSD50K.dev_audio.z01/content")
    assert set(z01) == {"id", "key", "size", "checksum", "links"}


def test_record_errors_and_files_api(zenodo: ZenodoStandin) -> None:
    missing = get(zenodo.record_url(1))
    assert missing.status == 404 and missing.json() == {
        "status": 404, "message": "The persistent identifier does not exist."}
    listing = get(zenodo.endpoint + "/api/records/4060432/files").json()
    assert isinstance(listing, dict) and listing["enabled"] is True
    entry = listing["entries"][0]
    assert entry["key"] == "FSD50K.dev_audio.z01" and entry["status"] == "completed"
    assert entry["links"]["content"] == zenodo.content_url(4060432, "FSD50K.dev_audio.z01")
    one = get(zenodo.endpoint + "/api/records/4060432/files/FSD50K.dev_audio.zip").json()
    assert isinstance(one, dict) and one["size"] == len(SMALL)
    zenodo.fail_record_next(1, status=502)
    assert get(zenodo.record_url(4060432)).status == 502
    assert get(zenodo.record_url(4060432)).status == 200


def test_the_api_content_route_ignores_range(zenodo: ZenodoStandin) -> None:
    # zenodo/zenodo#2593: the record API's links.self answers a ranged request in full.
    key = "FSD50K.dev_audio.z01"
    etag = f'"md5:{hashlib.md5(DATA).hexdigest()}"'
    part = get(zenodo.content_url(4060432, key), Range="bytes=5-14", If_Range=etag)
    assert part.status == 200 and part.body == DATA and "Content-Range" not in part.headers


def test_file_urls_serve_bytes_with_ranges(zenodo: ZenodoStandin) -> None:
    key = "FSD50K.dev_audio.z01"
    urls = [zenodo.download_url(4060432, key),
            f"{zenodo.endpoint}/records/4060432/files/{key}",
            f"{zenodo.endpoint}/records/4060432/files/{key}/content"]
    etag = f'"md5:{hashlib.md5(DATA).hexdigest()}"'
    for url in urls:
        whole = get(url)
        assert whole.status == 200 and whole.body == DATA and whole.headers["ETag"] == etag
        assert whole.headers["Accept-Ranges"] == "bytes"
        head = get(url, "HEAD")
        assert head.status == 200 and head.body == b""
        assert head.headers["Content-Length"] == str(len(DATA))
        part = get(url, Range="bytes=5-14", If_Range=etag)
        assert part.status == 206 and part.body == DATA[5:15]
        assert get(url, Range="bytes=5-14", If_Range='"md5:0"').status == 200
        assert get(url, Range="bytes=99999-").status == 416
    assert get(urls[0]).headers["Content-Disposition"].startswith("attachment")
    assert get(urls[1]).headers["Content-Disposition"] == "inline"
    legacy = get(f"{zenodo.endpoint}/record/4060432/files/{key}?download=1")
    assert legacy.status == 301
    assert legacy.headers["Location"] == f"/records/4060432/files/{key}?download=1"
    assert get(f"{zenodo.endpoint}/records/4060432/files/nope.zip").status == 404


def test_zenodo_accounting_and_faults(zenodo: ZenodoStandin, tmp_path: Path) -> None:
    key = "FSD50K.dev_audio.z01"
    url = zenodo.download_url(4060432, key)
    get(url)
    get(url, Range="bytes=0-9")
    get(url, "HEAD")
    assert zenodo.bytes_sent(4060432, key) == len(DATA) + 10
    assert [r.kind for r in zenodo.requests] == ["file", "file", "file"]

    zenodo.set_fault(4060432, key, drop_after=500)
    cut = get(url)
    assert cut.error is not None and cut.body == DATA[:500]
    zenodo.set_fault(4060432, key, status=429, status_headers={"Retry-After": "1"})
    throttled = get(url)
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "1"
    assert get(url).status == 200

    local = tmp_path / "part.z02"
    local.write_bytes(DATA[::-1])
    item = zenodo.add_file(4060432, "FSD50K.dev_audio.z02", local)
    assert item.checksum == f"md5:{hashlib.md5(DATA[::-1]).hexdigest()}"
    assert get(zenodo.content_url(4060432, "FSD50K.dev_audio.z02")).body == DATA[::-1]
