"""The API client and the request budget, against the real stand-in on loopback."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading

import pytest
import urllib3

from easy_oww.freesound.api import (
    FIELDS,
    FreesoundClient,
    RateBudget,
    key_fingerprint,
    read_api_key,
)
from easy_oww.freesound.errors import (
    ApiUnavailableError,
    BudgetExhaustedError,
    KeyRefusedError,
    MalformedAnswerError,
    MissingKeyError,
    SoundNotFoundError,
)
from tests.freesound.conftest import KEY


def client_for(fs, env, key=KEY, **kwargs):
    budget = RateBudget.for_key(key, per_minute=kwargs.pop("per_minute", 100000),
                                per_day=kwargs.pop("per_day", 100000))
    kwargs.setdefault("backoff", 0.001)
    return FreesoundClient(key, base_url=fs.base_url, budget=budget, http=urllib3.PoolManager(),
                           **kwargs)


def test_search_pages_carry_every_field_and_the_key_only_in_a_header(fs, env):
    client = client_for(fs, env)
    page = client.search("", sort="downloads_desc", page_size=500)
    assert set(page) >= {"count", "next", "previous", "results"}
    assert len(page["results"]) == 150  # capped, as the real API
    first = page["results"][0]
    for name in ("id", "name", "tags", "duration", "username", "previews", "num_downloads",
                 "avg_rating", "num_comments", "filesize", "bitrate", "samplerate", "channels",
                 "description", "license", "pack", "created", "images"):
        assert name in first
    assert fs.stats["token_in_url"] == 0
    log = fs.request_log()
    assert log[-1]["headers"].get("Authorization") == f"Token {KEY}"
    assert all(KEY not in entry["url"] for entry in log)
    assert client.requests == 1 and FIELDS.startswith("id,")


def test_similar_is_ranked_and_404_for_a_deleted_sound(fs, env):
    client = client_for(fs, env)
    sound_id = fs.sound_ids()[5]
    page = client.similar(sound_id)
    assert [r["id"] for r in page["results"]] == fs.similar_ids(sound_id)[:150]
    gone = fs.sound_ids()[6]
    fs.delete_sound(gone)
    with pytest.raises(SoundNotFoundError):
        client.similar(gone)
    with pytest.raises(SoundNotFoundError):
        client.sound(gone)


def test_wrong_key_is_one_clear_line(fs, env):
    client = client_for(fs, env, key="not-the-key")
    with pytest.raises(KeyRefusedError) as info:
        client.search("rain")
    message = str(info.value)
    assert "refused the API key" in message and fs.base_url in message
    assert "\n" not in message and "not-the-key" not in message


def test_5xx_and_dropped_connections_are_retried(fs, env):
    client = client_for(fs, env)
    fs.fail_next(2, status=503)
    fs.disconnect_next(1)
    assert client.search("rain")["results"]
    assert client.requests == 4


def test_api_down_after_retries_fails_clearly(fs, env):
    client = client_for(fs, env, retries=2)
    fs.fail_next(5, status=500)
    with pytest.raises(ApiUnavailableError, match="answered HTTP 500 3 times"):
        client.search("rain")


def test_timeout_is_retried(fs, env):
    client = client_for(fs, env, timeout=urllib3.Timeout(connect=2.0, read=0.3))
    fs.delay_next(1, seconds=2.0)
    assert client.search("rain")["results"]
    assert client.requests == 2


def test_unreachable_server(env):
    budget = RateBudget.for_key(KEY, per_minute=1000)
    client = FreesoundClient(KEY, base_url="http://127.0.0.1:9/apiv2", budget=budget,
                             retries=1, backoff=0.001)
    with pytest.raises(ApiUnavailableError, match="cannot reach") as info:
        client.search("rain")
    # the library names no CLI flag; the CLI adds "or --api-url"
    assert "--" not in str(info.value) and info.value.base_url == "http://127.0.0.1:9/apiv2"
    # nothing reached a server: no request counted, none taken from the day's budget
    assert client.requests == 0 and budget.status()["requests_today"] == 0


@pytest.mark.parametrize("kind", ["json"])
def test_malformed_answer_is_reported(fs, env, kind):
    client = client_for(fs, env)
    fs.malformed_next(1, kind=kind)
    with pytest.raises(MalformedAnswerError):
        client.search("rain")
    assert client.search("rain")["results"]  # the next answer is fine again


def test_per_minute_429_backs_off_and_goes_on(env):
    from easy_oww.demo.freesound_standin import FreesoundStandin

    ticks = itertools.count()
    # The stand-in's clock moves 10 s each time it is read, not with real time: the client
    # is throttled, backs off, and gets through once its minute has passed.
    with FreesoundStandin(n_sounds=200, seed=1, api_key=KEY, per_minute=1,
                          clock=lambda: next(ticks) * 10.0) as fast:
        client = client_for(fast, env, backoff=0.01)
        for _ in range(3):
            assert client.search("")["results"]
        assert fast.stats["throttled_minute"] >= 1
        assert client.requests > 3


def test_daily_429_stops_and_is_remembered_for_the_key(fs, env):
    fs.set_limits(per_day=2)
    client = client_for(fs, env)
    client.search("rain")
    client.search("rain")
    with pytest.raises(BudgetExhaustedError) as info:
        client.search("rain")
    assert info.value.resets_at.endswith("T00:00:00Z")
    assert "comes back at" in str(info.value)
    sent = fs.stats["api"]
    other = client_for(fs, env)  # another run with the same key: refused without a request
    with pytest.raises(BudgetExhaustedError):
        other.search("rain")
    assert fs.stats["api"] == sent


def test_daily_budget_is_shared_across_processes(env, tmp_path):
    budget = RateBudget.for_key(KEY, per_day=6)
    assert budget.acquire()
    code = (
        "import sys; from easy_oww.freesound.api import RateBudget\n"
        "b = RateBudget.for_key(sys.argv[1], per_day=6)\n"
        "for _ in range(4): b.acquire()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, KEY], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert budget.status()["requests_today"] == 5
    assert budget.acquire()
    with pytest.raises(BudgetExhaustedError, match="6/6"):
        budget.acquire()
    state = json.loads(budget.path.read_text())
    assert state["used"] == 6 and state["fingerprint"] == key_fingerprint(KEY)
    assert KEY not in budget.path.read_text() and KEY not in budget.path.name


def test_budget_resets_on_a_new_utc_day(env):
    now = [1_800_000_000.0]
    budget = RateBudget.for_key(KEY, per_day=1, clock=lambda: now[0])
    assert budget.acquire()
    with pytest.raises(BudgetExhaustedError):
        budget.acquire()
    now[0] += 86400
    assert budget.acquire()


def test_per_minute_limit_waits_and_can_be_stopped(env):
    now = [1_800_000_000.0]
    budget = RateBudget.for_key(KEY, per_minute=2, clock=lambda: now[0])
    assert budget.acquire() and budget.acquire()
    stop = threading.Event()
    stop.set()
    assert budget.acquire(stop) is False  # would have to wait; stopped instead
    now[0] += 61
    assert budget.acquire(stop) is True
    assert budget.status()["requests_today"] == 3


def test_threads_share_one_budget_exactly(env):
    budget = RateBudget.for_key(KEY, per_day=200, per_minute=100000)
    taken = []

    def worker():
        for _ in range(60):
            try:
                budget.acquire()
                taken.append(1)
            except BudgetExhaustedError:
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 200


def test_key_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("FREESOUND_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="FREESOUND_API_KEY"):
        read_api_key()
    key_file = tmp_path / "key.txt"
    key_file.write_text(" abc \n")
    assert read_api_key(key_file) == "abc"
    with pytest.raises(MissingKeyError, match="cannot read"):
        read_api_key(tmp_path / "missing.txt")
    monkeypatch.setenv("FREESOUND_API_KEY", "xyz")
    assert read_api_key() == "xyz"
    assert key_fingerprint("xyz") != key_fingerprint("abc") and len(key_fingerprint("x")) == 16


def test_similar_falls_back_to_the_sounds_similar_endpoint(fs, env):
    """A server whose search refuses `similar_to` (400): the client asks /sounds/<id>/similar/."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    upstream = urllib3.PoolManager()

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/apiv2/search/") and "similar_to=" in self.path:
                body, status = b'{"detail": "Invalid similar_to parameter."}', 400
            else:
                answer = upstream.request("GET", fs.origin + self.path,
                                          headers=dict(self.headers), retries=False)
                body, status = answer.data, answer.status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        budget = RateBudget.for_key(KEY, per_minute=100000)
        client = FreesoundClient(KEY, base_url=f"http://127.0.0.1:{server.server_port}/apiv2",
                                 budget=budget, backoff=0.001)
        sound_id = fs.sound_ids()[9]
        page = client.similar(sound_id)
        assert [r["id"] for r in page["results"]] == fs.similar_ids(sound_id)[:150]
        assert "name" in page["results"][0]  # fields= was passed on
        assert fs.stats["by_endpoint"].get("similar") == 1
    finally:
        server.shutdown()
        server.server_close()
