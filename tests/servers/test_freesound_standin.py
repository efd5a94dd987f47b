"""The Freesound stand-in answers like APIv2: shapes, limits, errors, accounting."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import urllib3

from easy_oww.demo.freesound_standin import (
    DEFAULT_SIMILARITY_SPACE,
    LIST_DEFAULT_FIELDS,
    FreesoundStandin,
)

KEY = "test-key"
AUTH = {"Authorization": f"Token {KEY}"}
REPO = Path(__file__).resolve().parents[2]

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=20))


def get(url: str, headers: dict | None = None, **fields) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", url, fields=fields or None,
                        headers=AUTH if headers is None else headers, redirect=False)


def get_json(url: str, **fields) -> dict:
    r = get(url, **fields)
    assert r.status == 200, (r.status, r.data[:300])
    return r.json()


@pytest.fixture(scope="module")
def big():
    t0 = time.monotonic()
    server = FreesoundStandin(n_sounds=3000, seed=0, api_key=KEY)
    build = time.monotonic() - t0
    with server:
        server.build_seconds = build
        yield server


@pytest.fixture
def small():
    with FreesoundStandin(n_sounds=300, seed=1, api_key=KEY) as server:
        yield server


def search(server, **params) -> dict:
    return get_json(server.base_url + "/search/", **params)


def test_corpus_is_realistic_and_builds_fast(big):
    assert big.build_seconds < 5
    ids = big.sound_ids()
    assert len(ids) == 3000 and len(set(ids)) == 3000
    assert all(1 <= i <= 10**6 for i in ids)
    assert sum(b - a == 1 for a, b in zip(ids, ids[1:], strict=False)) < 100  # not contiguous
    sounds = [big.sound(i) for i in ids[:400]]
    users = {s["username"] for s in sounds}
    assert 50 < len(users) < 400
    assert all(2 <= len(s["tags"]) <= 8 for s in sounds)
    assert all(0.2 <= s["duration"] <= 120 for s in sounds)
    assert {s["type"] for s in sounds} >= {"wav", "mp3", "flac", "ogg"}
    assert {s["license"] for s in sounds} >= {
        "http://creativecommons.org/publicdomain/zero/1.0/",
        "https://creativecommons.org/licenses/by/4.0/",
        "http://creativecommons.org/licenses/by-nc/3.0/",
    }
    assert any(s["geotag"] is None for s in sounds)
    assert any(s["geotag"] and len(s["geotag"].split()) == 2 for s in sounds)
    assert any(s["pack"] is None for s in sounds)
    assert any(s["pack"] and s["pack_name"] for s in sounds)
    s = sounds[0]
    assert set(s["previews"]) == {"preview-hq-mp3", "preview-lq-mp3", "preview-hq-ogg",
                                  "preview-lq-ogg"}
    assert {"waveform_l", "waveform_m", "spectral_l", "spectral_m"} <= set(s["images"])
    assert s["previews"]["preview-hq-mp3"].startswith(big.origin)
    assert len(big.deleted_ids()) == 20


def test_page_shape_and_links(big):
    page = search(big, query="", page_size="20", fields="id,name")
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3000
    assert page["previous"] is None
    assert len(page["results"]) == 20
    nxt = page["next"]
    assert nxt.startswith(big.base_url + "/search/?")
    q = parse_qs(urlsplit(nxt).query)
    assert q["page"] == ["2"] and q["page_size"] == ["20"] and q["fields"] == ["id,name"]
    assert KEY not in nxt and "token" not in q
    page2 = get_json(nxt)
    assert page2["previous"] and parse_qs(urlsplit(page2["previous"]).query)["page"] == ["1"]
    assert not {r["id"] for r in page["results"]} & {r["id"] for r in page2["results"]}
    last = search(big, page="150", page_size="20")
    assert last["next"] is None and len(last["results"]) == 20
    # default page size, and the text alias keeps its own path in links
    alias = get_json(big.base_url + "/search/text/", query="rain")
    assert len(alias["results"]) == 15
    assert alias["next"].startswith(big.base_url + "/search/text/?")


def test_page_past_the_end_is_404(big):
    r = get(big.base_url + "/search/", page="1000", page_size="150")
    assert r.status == 404 and r.json() == {"detail": "Not found"}
    assert get(big.base_url + "/search/", page="0").status == 404
    empty = search(big, query="zzzznotaword")
    assert empty == {"count": 0, "next": None, "previous": None, "results": []}


def test_page_size_is_capped_at_150(big):
    page = search(big, page_size="1000")
    assert len(page["results"]) == 150
    assert parse_qs(urlsplit(page["next"]).query)["page_size"] == ["150"]
    assert len(search(big, page_size="nonsense")["results"]) == 15


def test_fields(big):
    page = search(big, page_size="5")
    assert all(tuple(r) == LIST_DEFAULT_FIELDS for r in page["results"])
    page = search(big, page_size="5", fields="duration,id,bogus_field,previews")
    assert all(set(r) == {"id", "duration", "previews"} for r in page["results"])
    sid = big.sound_ids()[10]
    full = get_json(f"{big.base_url}/sounds/{sid}/")
    assert {"id", "url", "name", "tags", "description", "category", "geotag", "created",
            "license", "type", "channels", "filesize", "bitrate", "bitdepth", "duration",
            "samplerate", "md5", "username", "pack", "pack_name", "previews", "images",
            "num_downloads", "avg_rating", "num_ratings", "num_comments",
            "is_explicit"} <= set(full)
    assert get_json(f"{big.base_url}/sounds/{sid}/", fields="id,tags") == {
        "id": sid, "tags": full["tags"]}
    assert full == big.sound(sid)


def _all_ids(server, **params) -> list[int]:
    out, page = [], 1
    while True:
        doc = search(server, page=str(page), page_size="150", fields="id", **params)
        out += [r["id"] for r in doc["results"]]
        if not doc["next"]:
            return out
        page += 1


def _truth(server, pred) -> set[int]:
    return {i for i in server.sound_ids() if pred(server.corpus.by_id[i])}


def test_license_filters(big):
    cc0 = _all_ids(big, filter='license:"Creative Commons 0"')
    assert set(cc0) == _truth(big, lambda s: "publicdomain/zero" in s["license"])
    by = _all_ids(big, filter='license:"Attribution"')
    assert set(by) == _truth(big, lambda s: "/licenses/by/" in s["license"])
    nc = _all_ids(big, filter='license:"Attribution NonCommercial"')
    assert set(nc) == _truth(big, lambda s: "/licenses/by-nc/" in s["license"])
    assert _all_ids(big, filter='license:"Attribution Noncommercial"') == nc
    either = _all_ids(big, filter='license:("Creative Commons 0" OR "Attribution")')
    assert set(either) == set(cc0) | set(by)
    assert set(_all_ids(big, filter='-license:"Attribution NonCommercial"')) == (
        set(big.sound_ids()) - set(nc))


def test_numeric_and_text_filters(big):
    got = _all_ids(big, filter="duration:[1 TO 30]")
    assert set(got) == _truth(big, lambda s: 1 <= s["duration"] <= 30)
    assert set(_all_ids(big, filter="duration:[* TO 2]")) == _truth(
        big, lambda s: s["duration"] <= 2)
    assert set(_all_ids(big, filter="duration:[60 TO *]")) == _truth(
        big, lambda s: s["duration"] >= 60)
    assert set(_all_ids(big, filter="tag:rain")) == _truth(big, lambda s: "rain" in s["tags"])
    user = big.sound(big.sound_ids()[7])["username"]
    assert set(_all_ids(big, filter=f'username:"{user}"')) == _truth(
        big, lambda s: s["username"] == user)
    pack_sound = next(big.sound(i) for i in big.sound_ids() if big.sound(i)["pack"])
    got = _all_ids(big, filter=f'pack:"{pack_sound["pack_name"]}"')
    assert pack_sound["id"] in got
    assert set(got) == _truth(big, lambda s: s["pack_name"] == pack_sound["pack_name"])
    combined = _all_ids(big, filter='tag:rain duration:[1 TO 30] license:"Creative Commons 0"')
    assert set(combined) == _truth(big, lambda s: "rain" in s["tags"] and 1 <= s["duration"] <= 30
                                   and "zero" in s["license"])
    assert combined  # the corpus is big enough for a non-empty AND of three clauses
    assert set(_all_ids(big, filter="type:(wav OR flac)")) == _truth(
        big, lambda s: s["type"] in ("wav", "flac"))


def test_id_filter_returns_exactly_those_ids(big):
    ids = big.sound_ids()[100:103]
    doc = search(big, filter="id:({} OR {} OR {})".format(*ids), fields="id")
    assert sorted(r["id"] for r in doc["results"]) == ids
    assert doc["count"] == 3


def test_bad_filters_are_400(big):
    for bad in ("duration:[1 to 3]", "nosuchfield:1", "tag:(rain", "   "):
        r = get(big.base_url + "/search/", filter=bad)
        assert r.status == 400, bad
        assert "detail" in r.json()


def test_query(big):
    got = _all_ids(big, query="rain")
    assert got
    for i in got[:50]:
        s = big.sound(i)
        text = " ".join([s["name"], s["description"], " ".join(s["tags"]), s["username"],
                         s["pack_name"] or ""]).lower()
        assert "rain" in text
    without = set(_all_ids(big, query="rain -thunder"))
    assert without < set(got)
    assert all("thunder" not in big.sound(i)["tags"] for i in without)
    scores = [r["score"] for r in search(big, query="rain water", fields="id,score",
                                         page_size="150")["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("sort,field,desc", [
    ("downloads_desc", "num_downloads", True), ("downloads_asc", "num_downloads", False),
    ("rating_desc", "avg_rating", True), ("rating_asc", "avg_rating", False),
    ("created_desc", "created", True), ("created_asc", "created", False),
    ("duration_desc", "duration", True), ("duration_asc", "duration", False),
])
def test_sorts(big, sort, field, desc):
    doc = search(big, sort=sort, fields=f"id,{field}", page_size="150", page="3")
    values = [r[field] for r in doc["results"]]
    assert values == sorted(values, reverse=desc)
    assert parse_qs(urlsplit(doc["next"]).query)["sort"] == [sort]


def test_similar_to_ranks_nearest_first(big):
    sid = big.sound_ids()[42]
    vec = big.corpus.vectors[DEFAULT_SIMILARITY_SPACE]
    idx = {s["id"]: s["idx"] for s in big.corpus.sounds}
    doc = search(big, similar_to=str(sid), fields="id,score", page_size="150")
    got = [r["id"] for r in doc["results"]]
    assert doc["count"] == 150 and sid not in got
    cos = vec[[idx[i] for i in got]] @ vec[idx[sid]]
    assert np.all(np.diff(cos) <= 1e-6)  # rank order
    everything = np.delete(vec @ vec[idx[sid]], idx[sid])
    assert cos[0] == pytest.approx(everything.max(), abs=1e-6)  # first = most similar
    assert got == big.similar_ids(sid)
    # the /similar/ resource gives the same list, paged
    page1 = get_json(f"{big.base_url}/sounds/{sid}/similar/")
    assert [r["id"] for r in page1["results"]] == got[:15]
    assert page1["next"].startswith(f"{big.base_url}/sounds/{sid}/similar/?")
    # the other space differs; a filter keeps rank order
    classic = search(big, similar_to=str(sid), similarity_space="freesound_classic",
                     fields="id", page_size="150")
    assert [r["id"] for r in classic["results"]] != got
    link = search(big, similar_to=str(sid), similarity_space="freesound_classic")["next"]
    assert parse_qs(urlsplit(link).query)["similarity_space"] == ["freesound_classic"]
    assert [r["id"] for r in get_json(link)["results"]] == [
        r["id"] for r in classic["results"][15:30]]
    filtered = search(big, similar_to=str(sid), filter="duration:[* TO 5]", fields="id",
                      page_size="150")
    fids = [r["id"] for r in filtered["results"]]
    assert fids == [i for i in got if big.corpus.by_id[i]["duration"] <= 5]
    assert get(big.base_url + "/search/", similar_to=str(sid),
               similarity_space="nope").status == 400


def test_deleted_sounds_are_404_but_listed_as_similar(big):
    deleted = big.deleted_ids()
    listed = {i for sid in big.sound_ids()[:300] for i in big.similar_ids(sid)}
    victim = sorted(deleted & listed)[0]
    r = get(f"{big.base_url}/sounds/{victim}/")
    assert r.status == 404 and r.json() == {"detail": "Not found."}
    assert get(f"{big.base_url}/sounds/{victim}/similar/").status == 404
    assert victim not in _all_ids(big, filter=f"id:{victim}")
    assert get(f"{big.base_url}/sounds/999999999/").status == 404


def test_delete_sound_at_runtime(small):
    sid = small.sound_ids()[3]
    assert get(f"{small.base_url}/sounds/{sid}/").status == 200
    small.delete_sound(sid)
    assert get(f"{small.base_url}/sounds/{sid}/").status == 404
    assert search(small, filter=f"id:{sid}")["count"] == 0
    assert get(small.sound(sid)["previews"]["preview-lq-mp3"], headers={}).status == 404


def test_auth(small):
    url = small.base_url + "/search/"
    r = get(url, headers={})
    assert r.status == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    r = get(url, headers={"Authorization": "Token wrong"})
    assert r.status == 401 and r.json() == {"detail": "Invalid token"}
    assert get(url, headers={"Authorization": "Token"}).status == 401
    assert small.stats["token_in_url"] == 0
    # ?token= works like the real API but is counted, so tests can forbid it
    assert get(url, headers={}, token=KEY).status == 200
    assert get(url, headers={}, token="wrong").status == 401
    assert small.stats["token_in_url"] == 2
    assert small.stats["unauthorized"] == 4
    assert len(small.urls_containing(KEY)) == 1
    log = small.request_log()
    assert log[0]["headers"].get("Authorization") is None
    assert log[1]["headers"]["Authorization"] == "Token wrong"
    assert all(r["url"].startswith(small.origin) for r in log)


def test_rate_limits_minute_and_day():
    with FreesoundStandin(n_sounds=200, seed=2, api_key=KEY, per_minute=3, per_day=5) as fs:
        url = fs.base_url + "/search/"
        assert [get(url).status for _ in range(3)] == [200, 200, 200]
        r = get(url)
        assert r.status == 429
        assert r.json() == {"detail": "Request was throttled because of exceeding a request "
                                      "limit rate (3/minute)"}
        assert "Retry-After" not in r.headers
        assert get(url, headers={}).status == 401  # refused before throttling; costs nothing
        fs.reset_minute_window()
        assert [get(url).status for _ in range(2)] == [200, 200]
        r = get(url)
        assert r.status == 429
        assert r.json()["detail"].endswith("(5/day)")
        assert "Retry-After" not in r.headers
        fs.advance(61)
        assert get(url).status == 429  # a new minute does not bring the day back
        fs.advance(86400)
        assert get(url).status == 200
        fs.exhaust_day()
        r = get(url)
        assert r.status == 429 and r.json()["detail"].endswith("(5/day)")
        fs.reset_day_window()
        assert get(url).status == 200
        st = fs.stats
        assert st["throttled_minute"] == 1 and st["throttled_day"] == 3


def test_rate_limit_with_injected_clock():
    now = [1000.0]
    with FreesoundStandin(n_sounds=200, seed=2, per_minute=2, clock=lambda: now[0]) as fs:
        url = fs.base_url + "/search/"
        assert [get(url).status for _ in range(3)] == [200, 200, 429]
        now[0] += 30
        assert get(url).status == 429
        now[0] += 31  # the sliding window drops the first two
        assert [get(url).status for _ in range(3)] == [200, 200, 429]
        fs.set_limits(per_minute=None)
        assert get(url).status == 200
        with pytest.raises(ValueError):
            fs.exhaust_day()


def test_requested_sound_ids(small):
    ids = small.sound_ids()
    search(small, query="rain", filter="duration:[1 TO 10]")
    get_json(small.base_url + "/search/", page_size="150")
    assert small.requested_sound_ids() == set()
    get_json(f"{small.base_url}/sounds/{ids[0]}/")
    get_json(f"{small.base_url}/sounds/{ids[1]}/similar/")
    search(small, similar_to=str(ids[2]))
    search(small, filter=f"id:({ids[3]} OR {ids[4]}) duration:[0 TO *]")
    get(f"{small.base_url}/sounds/{ids[5]}/", headers={})  # asked, even though refused
    assert small.requested_sound_ids() == set(ids[:6])
    get_json(f"{small.base_url}/sounds/{ids[0]}/")
    assert small.requested_sound_id_counts()[ids[0]] == 2
    assert ids[0] in small.returned_sound_ids()
    small.reset_stats()
    assert small.requested_sound_ids() == set() and small.stats["total"] == 0


def test_determinism_for_a_seed():
    def snapshot(fs):
        ids = fs.sound_ids()
        sounds = [json.dumps(fs.sound(i)).replace(fs.origin, "") for i in ids[::37]]
        page = get_json(fs.base_url + "/search/", query="wind", fields="id,name,score")
        return (ids, sounds, [r["id"] for r in page["results"]], fs.similar_ids(ids[5]),
                sorted(fs.deleted_ids()), fs.preview_bytes(ids[1], "hq-ogg"),
                fs.preview_bytes(ids[1], "lq-mp3"))

    with FreesoundStandin(n_sounds=400, seed=7) as a:
        first = snapshot(a)
    with FreesoundStandin(n_sounds=400, seed=7) as b:
        second = snapshot(b)
    with FreesoundStandin(n_sounds=400, seed=8) as c:
        other = snapshot(c)
    assert first == second
    assert first[0] != other[0]


def test_fault_injection(small):
    url = small.base_url + "/search/"
    small.fail_next(2, status=503)
    r1, r2, r3 = get(url), get(url), get(url)
    assert (r1.status, r2.status, r3.status) == (503, 503, 200)
    assert r1.headers["Content-Type"].startswith("text/html")
    small.fail_next(1)
    r = get(url)
    assert r.status == 500 and r.json() == {"detail": "Server error"}

    small.malformed_next(1)
    r = get(url)
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.data)
    small.malformed_next(1, kind="missing_id")
    assert any("id" not in item for item in get_json(url)["results"])
    small.malformed_next(1, kind="null_item")
    assert None in get_json(url)["results"]
    assert get_json(url)["results"][0]["id"]

    small.disconnect_next(1)
    with pytest.raises(urllib3.exceptions.HTTPError):
        get(url)
    assert get(url).status == 200
    assert small.stats["injected_faults"] == 4


def test_previews_need_no_key_and_decode(small):
    import soundfile as sf

    s = small.sound(small.sound_ids()[0])
    for kind in ("preview-hq-mp3", "preview-lq-ogg"):
        r = get(s["previews"][kind], headers={})
        assert r.status == 200
        audio, rate = sf.read(io.BytesIO(r.data))
        assert rate == 44100 and len(audio) > 0
    mp3 = get(s["previews"]["preview-hq-mp3"], headers={}).data
    part = get(s["previews"]["preview-hq-mp3"], headers={"Range": "bytes=10-99"})
    assert part.status == 206 and part.data == mp3[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(mp3)}"
    img = get(s["images"]["waveform_m"], headers={})
    assert img.status == 200 and img.data.startswith(b"\x89PNG")
    assert small.stats["previews"] == 4 and small.stats["api"] == 0


def test_preview_ranges(small):
    s = small.sound(small.sound_ids()[0])
    url = s["previews"]["preview-hq-mp3"]
    mp3 = get(url, headers={}).data
    tail = get(url, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.data == mp3[-10:]
    for spec in ("bytes=9-3", f"bytes={len(mp3)}-", "bytes=-0"):  # nginx: 416 for all three
        refused = get(url, headers={"Range": spec})
        assert refused.status == 416, spec
        assert refused.headers["Content-Range"] == f"bytes */{len(mp3)}"
    # The whole file for these (nginx would answer multipart for the first, 416 for the last).
    for spec in ("bytes=0-1,5-6", "items=0-1", "bytes=-"):
        whole = get(url, headers={"Range": spec})
        assert whole.status == 200 and whole.data == mp3, spec


def test_trailing_slash_redirect_and_unknown_routes(small):
    sid = small.sound_ids()[0]
    r = get(f"{small.base_url}/sounds/{sid}", fields="id")
    assert r.status == 301 and r.headers["Location"] == f"/apiv2/sounds/{sid}/?fields=id"
    assert get(f"{small.base_url}/nothing/here/").status == 404


def test_users_and_packs(small):
    s = next(small.sound(i) for i in small.sound_ids() if small.sound(i)["pack"])
    user = get_json(f"{small.base_url}/users/{s['username']}/")
    assert user["username"] == s["username"] and user["num_sounds"] >= 1
    pack = get_json(s["pack"])
    assert pack["name"] == s["pack_name"] and pack["username"] == s["username"]
    listed = get_json(pack["sounds"], page_size="150")
    assert s["id"] in {r["id"] for r in listed["results"]}
    packs = get_json(user["packs"])
    assert pack["id"] in {p["id"] for p in packs["results"]}
    assert get(pack["sounds"], page="99").json() == {"detail": "Invalid page."}
    assert get(f"{small.base_url}/users/nobody-at-all/").status == 404
    odd = get_json(small.base_url + "/users/mr%2Bnoise/")
    assert odd["username"] == "mr+noise"


def test_concurrent_requests_are_all_counted(small):
    url = small.base_url + "/search/"

    def worker():
        for _ in range(15):
            assert get(url, page_size="5").status == 200

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = small.stats
    assert st["total"] == 90 and st["by_endpoint"]["search"] == 90
    assert len(small.request_log()) == 90


def test_runs_as_a_process():
    with subprocess.Popen(
        [sys.executable, "-m", "easy_oww.demo.freesound_standin", "--port", "0", "--sounds",
         "200", "--key", "proc-key", "--per-minute", "2"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    ) as proc:
        try:
            _process_checks(proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0  # SIGTERM is a clean stop


def _process_checks(proc: subprocess.Popen) -> None:
    first = proc.stdout.readline().split()
    assert first[0] == "PORT"
    base = f"http://127.0.0.1:{first[1]}"
    hdr = {"Authorization": "Token proc-key"}
    statuses = [get(base + "/apiv2/search/", headers=hdr).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    stats = json.loads(get(base + "/__stats", headers={}).data)
    assert stats["api"] == 3 and stats["throttled_minute"] == 1
    ctl = HTTP.request("POST", base + "/__control",
                       body=json.dumps({"action": "reset_minute_window"}))
    assert ctl.status == 200
    assert get(base + "/apiv2/search/", headers=hdr).status == 200
