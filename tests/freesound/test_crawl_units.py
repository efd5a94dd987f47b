"""The crawler's steps, driven in-process against the Freesound stand-in on loopback and a real
SQLite library: what each search and expansion asks for, what it records (seeds, edges with
their rank and weight, remembered metadata, problems, the run's row), and what a failed or
refused request leaves behind. Each test takes well under a second, so the crawler's mutation
run (scripts/mutation.py) can afford them; the end-to-end growth is test_grow.py's.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import threading

import pytest

from easy_oww.freesound.api import FreesoundClient, RateBudget
from easy_oww.freesound.backup import list_backups
from easy_oww.freesound.crawl import (
    DEFAULT_QUERIES,
    Crawler,
    GrowBudgetExhaustedError,
    GrowOptions,
    GrowResult,
    _similarity,
)
from easy_oww.freesound.errors import BadInputError, KeyRefusedError
from easy_oww.freesound.stopped import Stopped
from easy_oww.freesound.store import FreesoundLibrary
from tests.freesound.conftest import KEY, sql

# A runaway crawl (a step that never stores, a count that never reaches the target) ends at
# this many requests with BudgetExhaustedError instead of running for minutes.
DAY = 60
WATCHDOG = 20.0
FINGERPRINT = "units"


@pytest.fixture
def crawler(fs, tmp_path):
    """make(options, **crawler_kwargs): a Crawler over a library in tmp_path and a client of
    the stand-in whose daily budget is DAY requests (its own state folder)."""
    opened: list[FreesoundLibrary] = []
    timers: list[threading.Timer] = []

    def make(options: GrowOptions | None = None, *, key: str = KEY, per_day: int = DAY,
             library_class: type[FreesoundLibrary] = FreesoundLibrary, **kwargs) -> Crawler:
        for lib in opened:  # one writer at a time, as under the grow lock
            lib.close()
        lib = library_class(tmp_path / "library")
        opened.append(lib)
        budget = RateBudget(FINGERPRINT, per_minute=100000, per_day=per_day,
                            folder=tmp_path / "state")
        client = FreesoundClient(key, base_url=fs.base_url, budget=budget, backoff=0.001,
                                 retries=1)
        crawl = Crawler(lib, client, options or GrowOptions(), **kwargs)
        # A crawl here takes a fraction of a second. One that loops without sending a request
        # (which the budget would end) is stopped after WATCHDOG seconds, so it fails as
        # interrupted instead of never ending. Not synchronisation: a passing test never
        # meets it.
        timer = threading.Timer(WATCHDOG, lambda: crawl.stop.set())
        timer.daemon = True
        timer.start()
        timers.append(timer)
        return crawl

    yield make
    for timer in timers:
        timer.cancel()
    for lib in opened:
        lib.close()


def search_ids(crawler: Crawler, query: str, **params) -> list[int]:
    """The ids a search gives, in order (asked of the stand-in by a client of its own)."""
    client = FreesoundClient(KEY, base_url=crawler.client.base_url,
                             budget=RateBudget("truth", per_minute=100000,
                                               folder=crawler.lib.folder.parent / "truth"))
    return [item["id"] for item in client.search(query, **params)["results"]]


def refusing(sound: dict, among: list[dict]) -> dict:
    """Duration options that refuse `sound` and take a fair share of `among`."""
    durations = sorted(other["duration"] for other in among)
    middle = durations[len(durations) // 2]
    if sound["duration"] > middle:
        return {"max_duration": (durations[0] + sound["duration"]) / 2}
    return {"min_duration": (durations[-1] + sound["duration"]) / 2}


def seed_key(query: str, filter_: str | None = None) -> str:
    """How the library names a search's progress (older libraries' rows must keep matching:
    another key would send every search again from page 1)."""
    return json.dumps([query, filter_, "downloads_desc"])


def similar_requests(fs) -> list[dict]:
    return [r for r in fs.request_log() if "similar_to" in r["params"]]


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("bad", [
    {"samples": -1}, {"checkpoint_interval": 0}, {"backup_every": 0}, {"expand_every": 0},
    {"keep_backups": 0}, {"licenses": ["cc0", "gpl"]}, {"min_duration": 5.0, "max_duration": 4.9},
])
def test_bad_options_are_refused(bad):
    with pytest.raises(BadInputError):
        GrowOptions(**bad).check()


@pytest.mark.parametrize("good", [
    {"samples": 0}, {"checkpoint_interval": 1}, {"backup_every": 1}, {"expand_every": 1},
    {"keep_backups": 1}, {"licenses": list(["cc0", "by", "by-nc", "sampling+"])},
    {"min_duration": 5.0, "max_duration": 5.0}, {"min_duration": 5.0}, {"max_duration": 0.5},
])
def test_the_smallest_good_options_are_accepted(good):
    GrowOptions(**good).check()


@pytest.mark.parametrize("options,expected", [
    ({}, None),
    ({"licenses": ["cc0"]}, 'license:"Creative Commons 0"'),
    ({"licenses": ["cc0", "by-nc"]},
     'license:("Creative Commons 0" OR "Attribution NonCommercial")'),
    ({"min_duration": 1.5}, "duration:[1.5 TO *]"),
    ({"max_duration": 30.0}, "duration:[* TO 30]"),
    ({"min_duration": 1.0, "max_duration": 30.0}, "duration:[1 TO 30]"),
    ({"tags": ["rain", "XRay"]}, "tag:rain tag:XRay"),
    ({"tags": ["field recording", "a:b", "(x)", "[y]"]},
     'tag:"field recording" tag:"a:b" tag:"(x)" tag:"[y]"'),
    ({"tags": ['say "hi"', "back\\slash"]}, r'tag:"say \"hi\"" tag:"back\\slash"'),
    ({"licenses": ["by"], "max_duration": 10.0, "tags": ["rain"]},
     'license:"Attribution" duration:[* TO 10] tag:rain'),
])
def test_the_filter_is_the_solr_text_freesound_reads(options, expected):
    """The exact text matters twice: Freesound parses it, and the library names each search's
    progress by it (another text for the same options restarts the searches)."""
    assert GrowOptions(**options).filter() == expected


@pytest.mark.parametrize("options", [
    {"licenses": ["cc0", "by"]}, {"min_duration": 2.0, "max_duration": 6.0},
    {"tags": ["field-recording"]}, {"tags": ['say "hi"', "a b"]},
])
def test_the_stand_in_parses_the_filter_and_keeps_only_what_it_asks_for(crawler, options):
    """Freesound's own reading of the filter (the stand-in's Solr subset): every sound it gives
    passes the same options applied locally (`accepts`), and a quote in a tag is no error."""
    crawl = crawler(GrowOptions(**options))
    answer = crawl.client.search("", filter=crawl.filter, page_size=150)
    assert all(crawl.options.accepts(item) for item in answer["results"])


CC0_URL = "http://creativecommons.org/publicdomain/zero/1.0/"
BY_URL = "https://creativecommons.org/licenses/by/4.0/"
BY_NC_URL = "http://creativecommons.org/licenses/by-nc/3.0/"


@pytest.mark.parametrize("options,sound,accepted", [
    ({}, {}, True),
    ({"licenses": ["cc0"]}, {"license": "Creative Commons 0"}, True),
    ({"licenses": ["cc0"]}, {"license": CC0_URL}, True),
    ({"licenses": ["cc0"]}, {"license": BY_URL}, False),
    ({"licenses": ["cc0"]}, {}, False),
    ({"licenses": ["by"]}, {"license": BY_URL}, True),
    ({"licenses": ["by"]}, {"license": BY_NC_URL}, False),
    ({"licenses": ["by-nc", "cc0"]}, {"license": BY_NC_URL}, True),
    ({"min_duration": 2.0}, {"duration": 2.0}, True),
    ({"min_duration": 2.0}, {"duration": 1.99}, False),
    ({"min_duration": 2.0}, {}, False),
    ({"min_duration": 2.0}, {"duration": "9"}, False),
    ({"max_duration": 2.0}, {"duration": 2.0}, True),
    ({"max_duration": 2.0}, {"duration": 2.01}, False),
    ({"max_duration": 2.0}, {}, False),
    ({"max_duration": 2.0}, {"duration": "1"}, False),
    ({"min_duration": 1.0, "max_duration": 2.0}, {"duration": 1}, True),
    ({"tags": ["Rain"]}, {"tags": ["RAIN", "street"]}, True),
    ({"tags": ["rain", "street"]}, {"tags": ["rain"]}, False),
    ({"tags": ["rain"]}, {"tags": None}, False),
    ({"tags": ["rain"]}, {}, False),
    ({}, {"tags": None, "license": None, "duration": None}, True),
])
def test_a_remembered_sample_is_taken_only_if_it_passes_the_options(options, sound, accepted):
    """Remembered samples may come from a run with other options: the same filter, locally."""
    assert GrowOptions(**options).accepts(sound) is accepted


# ------------------------------------------------------------------ edge weights
@pytest.mark.parametrize("item,rank,count,weight", [
    ({"similarity": 0.25, "score": 0.9, "distance": 7}, 5, 9, 0.25),
    ({"score": 0.5, "distance": 7}, 5, 9, 0.5),
    ({"similarity": 2}, 1, 1, 2.0),
    ({"similarity": True, "score": 0.75}, 1, 9, 0.75),
    ({"distance": 3}, 5, 9, 0.25),
    ({"distance": 0.0}, 5, 9, 1.0),
    ({"distance": True}, 3, 4, 0.5),
    ({"similarity": "0.3", "score": None}, 3, 4, 0.5),
    ({}, 1, 4, 1.0),
    ({}, 2, 3, 0.666667),
    ({}, 4, 4, 0.25),
    ({}, 1, 1, 1.0),
])
def test_an_edge_weighs_the_answer_s_similarity_else_its_rank(item, rank, count, weight):
    found = _similarity(item, rank, count)
    assert found == weight and isinstance(found, float)


# ------------------------------------------------------------------ results and errors
def test_a_budget_error_carries_its_message_reset_time_and_result():
    result = GrowResult(stored=3)
    error = GrowBudgetExhaustedError("used up", resets_at="2026-11-27T00:00:00Z", result=result)
    assert str(error) == "used up" and error.resets_at == "2026-11-27T00:00:00Z"
    assert error.result is result


def test_a_result_as_a_dict_has_every_field():
    result = GrowResult(stored=2, requests=5, backups=["b"])
    doc = result.as_dict()
    assert doc["stored"] == 2 and doc["requests"] == 5 and doc["backups"] == ["b"]
    assert set(doc) == {"stored", "requests", "stopped", "samples", "edges", "frontier",
                        "budget_left", "budget_resets_at", "backups", "problems"}


# ------------------------------------------------------------------ seeds
def test_the_first_search_of_each_query_is_remembered_and_its_top_result_stored(crawler, fs):
    commits: list[list[tuple[int, int]]] = []
    crawl = crawler(GrowOptions(samples=2, queries=["rain", "traffic"]),
                    on_commit=commits.append)
    result = crawl.run()
    searches = [r["params"] for r in fs.request_log()]
    assert result.stored == 2 and result.stopped == Stopped.DONE
    rain = search_ids(crawl, "rain", sort="downloads_desc")
    traffic = search_ids(crawl, "traffic", sort="downloads_desc")
    # one seed per query, each its search's most downloaded result, one sample a commit
    assert [batch[0][0] for batch in commits] == [rain[0], traffic[0]]
    assert all(len(batch) == 1 and batch[0][1] == 0 for batch in commits)
    assert [(p["query"], p["sort"], p["page"]) for p in searches] == [
        ("rain", "downloads_desc", "1"), ("traffic", "downloads_desc", "1")]
    # each search's progress: page 2 next, and both were short (one page): exhausted
    rows = sql(crawl.lib.folder, "SELECT key, query, filter, sort, next_page, exhausted "
               "FROM seeds ORDER BY query")
    assert rows == [(seed_key("rain"), "rain", None, "downloads_desc", 2, 1),
                    (seed_key("traffic"), "traffic", None, "downloads_desc", 2, 1)]
    # the rest is remembered with its metadata, noted by query, ready to store without asking
    seen = dict(sql(crawl.lib.folder, "SELECT id, note FROM seen WHERE raw IS NOT NULL "
                    "AND status = 'candidate'"))
    # (a sound both searches found carries the later one's note)
    assert {i for i, note in seen.items() if note == "seed:rain"} == set(rain[1:]) - set(traffic)
    assert {i for i, note in seen.items() if note == "seed:traffic"} == set(traffic[1:])
    assert crawl.lib.seen_metadata(rain[1])["id"] == rain[1]


def test_two_seeds_a_query_when_asked_and_a_query_with_nothing_is_passed_over(crawler):
    commits: list[int] = []
    crawl = crawler(GrowOptions(samples=4, queries=["zzzznotaword", "rain", "traffic"],
                                seeds_per_query=2, expand_every=100),
                    on_commit=lambda batch: commits.extend(i for i, _ in batch))
    assert crawl.run().stored == 4
    rain = search_ids(crawl, "rain", sort="downloads_desc")
    traffic = search_ids(crawl, "traffic", sort="downloads_desc")
    assert commits == [rain[0], rain[1], traffic[0], traffic[1]]


def test_a_seed_remembered_by_a_run_with_other_options_is_not_taken(crawler):
    first = crawler(GrowOptions(samples=1, queries=["rain"]))
    first.run()
    leftovers = [sound for _, sound in first.lib.seed_candidates("rain")]
    bound = refusing(leftovers[0], leftovers)
    commits: list[int] = []
    second = crawler(GrowOptions(samples=1, queries=["rain"], **bound),
                     on_commit=lambda batch: commits.extend(i for i, _ in batch))
    second.run()
    assert (seed_key("rain", second.filter), "rain", second.filter, 2) in sql(
        second.lib.folder, "SELECT key, query, filter, next_page FROM seeds")
    # the most downloaded of the remembered results these options take
    assert commits == [next(s["id"] for s in leftovers if GrowOptions(**bound).accepts(s))]


def test_a_search_past_its_last_page_marks_the_query_done(crawler, fs):
    crawl = crawler(GrowOptions(samples=5, queries=["rain"], max_duration=60.0))
    crawl.lib.set_seed_state(seed_key("rain", crawl.filter), "rain", crawl.filter,
                             "downloads_desc", 2, False)
    result = crawl.run()
    # page 2 of a 105-sound search answers 404: the query is exhausted at page 2
    assert [(r["params"]["page"], r["params"]["filter"]) for r in fs.request_log()] == [
        ("2", "duration:[* TO 60]")]
    assert sql(crawl.lib.folder, "SELECT key, query, filter, sort, next_page, exhausted "
               "FROM seeds") == [(seed_key("rain", crawl.filter), "rain", crawl.filter,
                                  "downloads_desc", 2, 1)]
    assert result.stored == 0 and result.stopped == Stopped.EXHAUSTED


def test_a_search_not_found_at_once_is_recorded_as_done(crawler, fs):
    crawl = crawler(GrowOptions(samples=1, queries=["rain"], max_duration=9.0))
    fs.fail_next(1, status=404)
    result = crawl.run()
    assert result.stored == 0 and result.stopped == Stopped.EXHAUSTED
    assert sql(crawl.lib.folder, "SELECT key, query, filter, sort, next_page, exhausted "
               "FROM seeds") == [(seed_key("rain", "duration:[* TO 9]"), "rain",
                                  "duration:[* TO 9]", "downloads_desc", 1, 1)]


def test_the_next_page_of_an_unfinished_search_is_fetched_and_stored_from(crawler, fs):
    crawl = crawler(GrowOptions(samples=3, queries=["zzzznotaword", ""]))
    crawl.lib.set_seed_state(seed_key("zzzznotaword"), "zzzznotaword", None, "downloads_desc",
                             1, True)
    crawl.lib.set_seed_state(seed_key(""), "", None, "downloads_desc", 2, False)
    commits: list[int] = []
    crawl.on_commit = lambda batch: commits.extend(i for i, _ in batch)
    assert crawl.run().stored == 3
    first = fs.request_log()[0]["params"]
    assert (first["query"], first["page"]) == ("", "2")
    page_two = search_ids(crawl, "", sort="downloads_desc", page=2)
    assert commits[0] == page_two[0]
    assert sql(crawl.lib.folder, "SELECT next_page, exhausted FROM seeds WHERE query = ''") == [
        (3, 0)]


def test_a_malformed_search_answer_is_recorded_and_the_next_page_asked_later(crawler, fs):
    crawl = crawler(GrowOptions(samples=1, queries=["rain"], min_duration=0.5))
    crawl.run_id = crawl.lib.start_run()
    fs.malformed_next(1, kind="json")
    crawl._fetch_seed_page("rain", 1)
    assert sql(crawl.lib.folder, "SELECT key, query, filter, sort, next_page, exhausted "
               "FROM seeds") == [(seed_key("rain", crawl.filter), "rain", "duration:[0.5 TO *]",
                                  "downloads_desc", 2, 0)]
    [(run_id, sound_id, what)] = sql(crawl.lib.folder,
                                     "SELECT run_id, sound_id, what FROM problems")
    assert run_id == crawl.run_id and sound_id is None
    assert what.startswith("seed search 'rain' page 1: ")
    assert sql(crawl.lib.folder, "SELECT count(*) FROM seen") == [(0,)]


def test_malformed_results_are_skipped_recorded_and_the_rest_kept(crawler, fs):
    crawl = crawler(GrowOptions(samples=1, queries=["rain"]))
    fs.malformed_next(1, kind="missing_id")
    result = crawl.run()
    assert result.stored == 1 and result.problems == 1
    [(run_id, sound_id, what)] = sql(crawl.lib.folder,
                                     "SELECT run_id, sound_id, what FROM problems")
    assert run_id == crawl.run_id and sound_id is None
    assert what.startswith("seed search 'rain': skipped a malformed result: ")
    rain = search_ids(crawl, "rain", sort="downloads_desc")
    kept = crawl.lib.stored_ids() | crawl.lib.seen_ids()
    assert len(kept & set(rain)) == len(rain) - 1  # only the one without an id is missing
    assert kept <= set(rain)  # and nothing made up in its place


@pytest.mark.parametrize("item,recorded_id", [
    ({"id": 7, "name": 5}, 7),
    ({"id": 1, "duration": "long"}, 1),
    ({"id": 0}, None),
    ({"id": -3}, None),
    ({"id": "12"}, None),
    ({"name": "no id"}, None),
    (None, None),
    (["id", 4], None),
])
def test_a_malformed_result_is_recorded_with_its_id_when_it_has_a_usable_one(crawler, item,
                                                                             recorded_id):
    crawl = crawler()
    crawl.run_id = crawl.lib.start_run()
    assert crawl._valid(item, "here") is None
    assert crawl._valid({"id": 99, "name": "fine"}, "here") == 99
    [(run_id, sound_id, what)] = sql(crawl.lib.folder,
                                     "SELECT run_id, sound_id, what FROM problems")
    assert (run_id, sound_id) == (crawl.run_id, recorded_id)
    assert what.startswith("here: skipped a malformed result: ")
    assert crawl.result.problems == 1
    crawl._valid(item, "here")
    assert crawl.result.problems == 2


# ------------------------------------------------------------------ expansion
def grown(crawler, samples: int = 1, **options) -> Crawler:
    """A crawler whose library holds `samples` seeds of "rain", none expanded yet."""
    crawl = crawler(GrowOptions(samples=samples, queries=["rain"], seeds_per_query=samples,
                                **options))
    crawl.run()
    assert crawl.lib.stats().expanded == 0
    crawl.run_id = crawl.lib.start_run()
    crawl._total, crawl._expanded = crawl.lib.stats().samples, 0
    return crawl


def test_an_expansion_records_every_similar_sound_in_rank_order_with_its_weight(crawler, fs):
    crawl = grown(crawler)
    [source] = crawl.lib.stored_ids()
    progress: list[int] = []
    crawl.on_progress = lambda result: progress.append(result.requests)
    fs.reset_stats()
    crawl._expand(source)
    similar = fs.similar_ids(source)
    assert similar_requests(fs)[0]["params"]["similar_to"] == str(source)
    assert "similarity_space" not in similar_requests(fs)[0]["params"]
    edges = sql(crawl.lib.folder, "SELECT target, kind, weight, rank FROM pending_edges "
                "WHERE source = ? ORDER BY rank", (source,))
    count = len(similar)
    assert edges == [(other, "similar", round(1.0 - i / count, 6), i + 1)
                     for i, other in enumerate(similar)]
    # each one remembered with its metadata, noted as found by this expansion
    seen = sql(crawl.lib.folder, "SELECT id, status, note, links FROM seen "
               "WHERE raw IS NOT NULL AND note LIKE 'similar:%'")
    assert sorted(seen) == sorted((other, "candidate", f"similar:{source}", 1)
                                  for other in similar)
    assert sql(crawl.lib.folder, "SELECT expanded FROM samples WHERE id = ?", (source,)) == [(1,)]
    assert crawl._expanded == 1  # the 1-in-expand_every rule counts it
    assert progress == [crawl.client.requests]


def test_an_expansion_keeps_the_filter_and_the_similarity_space(crawler, fs):
    crawl = grown(crawler, max_duration=8.0, similarity_space="freesound_classic")
    [source] = crawl.lib.stored_ids()
    fs.reset_stats()
    crawl._expand(source)
    [request] = similar_requests(fs)
    assert request["params"]["filter"] == "duration:[* TO 8]"
    assert request["params"]["similarity_space"] == "freesound_classic"
    targets = [row[0] for row in sql(crawl.lib.folder, "SELECT target FROM pending_edges "
                                     "ORDER BY rank")]
    classic = [i for i in fs.similar_ids(source, "freesound_classic")
               if fs.sound(i, "duration")["duration"] <= 8.0]
    assert targets == classic[:150]


def test_an_expansion_links_stored_samples_without_remembering_them_again(crawler, fs):
    crawl = grown(crawler, samples=8)
    stored = crawl.lib.stored_ids()
    source = crawl.lib.next_to_expand()
    crawl._expand(source)
    similar = fs.similar_ids(source)
    linked = [i for i in similar if i in stored]
    edges = sql(crawl.lib.folder, "SELECT target, rank FROM edges WHERE source = ?", (source,))
    assert sorted(edges) == sorted((i, similar.index(i) + 1) for i in linked)
    assert not crawl.lib.seen_ids() & stored


def test_a_malformed_item_in_an_expansion_is_skipped_and_the_rest_kept(crawler, fs):
    crawl = grown(crawler)
    [source] = crawl.lib.stored_ids()
    similar = fs.similar_ids(source)
    fs.malformed_next(1, kind="null_item")  # the item half-way down the list is null
    crawl._expand(source)
    targets = [row[0] for row in sql(crawl.lib.folder, "SELECT target FROM pending_edges "
                                     "WHERE source = ? ORDER BY rank", (source,))]
    lost = similar[len(similar) // 2]
    assert targets == [i for i in similar if i != lost]
    [(sound_id, what)] = sql(crawl.lib.folder, "SELECT sound_id, what FROM problems "
                             "WHERE run_id = ?", (crawl.run_id,))
    assert sound_id is None
    assert what.startswith(f"similar to {source}: skipped a malformed result: ")
    assert crawl.result.problems == 1


def test_samples_deleted_on_freesound_are_marked_and_never_asked_about_again(crawler, fs):
    crawl = grown(crawler, samples=2)
    sources = sorted(crawl.lib.stored_ids())
    for source in sources:
        fs.delete_sound(source)
        crawl._expand(source)
    for source in sources:
        assert sql(crawl.lib.folder, "SELECT expanded, deleted, note FROM samples "
                   "WHERE id = ?", (source,)) == [(2, 1, "deleted on Freesound (404)")]
    assert sql(crawl.lib.folder, "SELECT run_id, sound_id, what FROM problems ORDER BY id") == [
        (crawl.run_id, source, "similar: 404, marked deleted") for source in sources]
    assert crawl._expanded == 2  # each counts for the 1-in-expand_every rule
    assert crawl.lib.next_to_expand() is None
    assert sql(crawl.lib.folder, "SELECT count(*) FROM pending_edges") == [(0,)]


def test_malformed_expansions_are_marked_recorded_and_not_retried(crawler, fs):
    crawl = grown(crawler, samples=2)
    sources = sorted(crawl.lib.stored_ids())
    fs.malformed_next(2, kind="json")
    for source in sources:
        crawl._expand(source)
    for source in sources:
        [(expanded, deleted, note)] = sql(crawl.lib.folder, "SELECT expanded, deleted, note "
                                          "FROM samples WHERE id = ?", (source,))
        assert (expanded, deleted) == (2, 0) and note.startswith("malformed answer: ")
    problems = sql(crawl.lib.folder, "SELECT run_id, sound_id, what FROM problems ORDER BY id")
    assert [(run_id, sound_id) for run_id, sound_id, _ in problems] == [
        (crawl.run_id, source) for source in sources]
    assert all(what.startswith("similar: ") for _, _, what in problems)
    assert crawl.result.problems == 2 and crawl._expanded == 2
    assert crawl.lib.next_to_expand() is None


def test_expansions_keep_pace_with_one_in_expand_every_stored_samples(crawler, fs):
    events: list[str] = []
    crawl = crawler(GrowOptions(samples=41, queries=["rain"], expand_every=10),
                    on_commit=lambda batch: events.extend("s" for _ in batch),
                    log=lambda line: events.append(line.split()[0]))
    assert crawl.run().stored == 41
    # a seed and its expansion (nothing is linked yet); then, that one counted, whenever
    # fewer than one sample in 10 was expanded: at 20, 30 and 40 samples
    stored_at = [events[:i].count("s") for i, event in enumerate(events) if event == "expand"]
    assert stored_at == [1, 20, 30, 40]
    assert sql(crawl.lib.folder, "SELECT count(*) FROM samples WHERE expanded = 1") == [(4,)]


def test_a_later_run_expands_before_taking_unlinked_leftovers(crawler):
    crawler(GrowOptions(samples=1, queries=["rain"])).run()
    commits: list[int] = []
    crawl = crawler(GrowOptions(samples=5, queries=["rain"]),
                    on_commit=lambda batch: commits.extend(i for i, _ in batch))
    [seed] = crawl.lib.stored_ids()
    assert crawl.run().stored == 5
    linked_from_seed = {row[0] for row in sql(crawl.lib.folder, "SELECT target FROM edges "
                                              "WHERE source = ?", (seed,))}
    assert set(commits) <= linked_from_seed


# ------------------------------------------------------------------ commits, runs, backups
def test_each_commit_is_reported_once_durable_with_the_run_row_up_to_date(crawler):
    seen_rows: list[tuple] = []
    requests_then: list[tuple[int, int]] = []

    def on_commit(batch):
        seen_rows.append(sql(crawl.lib.folder, "SELECT samples_added, requests, status FROM runs "
                             "WHERE id = ?", (crawl.run_id,))[0])
        requests_then.append((crawl.result.requests, crawl.client.requests))
        assert all(isinstance(i, int) and isinstance(n, int) for i, n in batch)

    crawl = crawler(GrowOptions(samples=4, queries=["rain"]), on_commit=on_commit)
    crawl.run()
    assert [row[0] for row in seen_rows] == [1, 2, 3, 4]
    assert all(row[2] == "running" for row in seen_rows)
    assert all(row[1] == requests == sent for row, (requests, sent)
               in zip(seen_rows, requests_then, strict=True))
    added = sql(crawl.lib.folder, "SELECT DISTINCT run_id FROM samples")
    assert added == [(crawl.run_id,)]


def test_a_finished_run_is_written_down_and_reported(crawler, tmp_path):
    progress: list[tuple[int, int | None]] = []
    crawl = crawler(GrowOptions(samples=15, queries=["rain"]),
                    on_progress=lambda r: progress.append((r.requests, r.budget_left)))
    result = crawl.run()
    stats = crawl.lib.stats()
    assert (result.stored, result.samples, result.edges, result.frontier) == (
        15, stats.samples, stats.edges, stats.frontier)
    assert result.stopped == Stopped.DONE and result.requests == crawl.client.requests > 1
    budget = crawl.client.budget.status()
    assert result.budget_left == DAY - result.requests == budget["budget_left"]
    assert result.budget_resets_at == budget["budget_resets_at"] is not None
    assert progress and all(left == DAY - sent for sent, left in progress)
    [row] = sql(crawl.lib.folder, "SELECT status, samples_added, requests, finished_at, "
                "samples_total, edges_total FROM runs WHERE id = ?", (crawl.run_id,))
    assert row[:3] == ("done", 15, result.requests) and row[3] is not None
    assert row[4:] == (stats.samples, stats.edges)


def test_backups_are_made_at_each_multiple_and_only_the_kept_ones_reported(crawler):
    crawl = crawler(GrowOptions(samples=12, queries=["rain"], backup_every=5, keep_backups=1))
    result = crawl.run()
    backups = list_backups(crawl.lib.folder)
    assert len(backups) == 1 and "_10nodes_" in backups[0].name
    assert result.backups == [backups[0].name]
    crawl = crawler(GrowOptions(samples=11, queries=["rain"], backup_every=5, keep_backups=9))
    result = crawl.run()
    nodes = sorted(int(b.name.split("_")[3].removesuffix("nodes"))
                   for b in list_backups(crawl.lib.folder))
    assert nodes == [10, 15, 20]  # the first run's at 5 was pruned (keep 1)
    assert sorted(result.backups) == sorted(b.name for b in list_backups(crawl.lib.folder)
                                            if "_15nodes_" in b.name or "_20nodes_" in b.name)


# ------------------------------------------------------------------ stopping
def test_when_the_budget_runs_out_what_is_in_hand_is_stored_up_to_the_target(crawler):
    commits: list[int] = []
    crawl = crawler(GrowOptions(samples=6, queries=["rain"]), per_day=1,
                    on_commit=lambda batch: commits.extend(i for i, _ in batch))
    with pytest.raises(GrowBudgetExhaustedError) as info:
        crawl.run()
    result = info.value.result
    assert result.stopped == Stopped.BUDGET and result.stored == 6 == len(commits)
    assert result.requests == 1 and result.budget_left == 0
    assert info.value.resets_at == result.budget_resets_at is not None
    assert crawl.lib.stored_ids() == set(commits)
    assert sql(crawl.lib.folder, "SELECT status, samples_added FROM runs") == [("budget", 6)]


def test_nothing_left_to_find_stops_with_exhausted(crawler):
    crawl = crawler(GrowOptions(samples=3, queries=["zzzznotaword"]))
    result = crawl.run()
    assert result.stopped == Stopped.EXHAUSTED and result.stored == 0
    assert sql(crawl.lib.folder, "SELECT status FROM runs") == [("exhausted",)]


@pytest.mark.timeout(20)  # it takes well under a second; a look that never ends fails here
def test_more_refused_candidates_than_one_look_takes_do_not_hide_a_good_one(crawler, sound):
    """250 remembered samples the options refuse, each linked more than the one they take:
    the crawl still finds that one, in hand, rather than asking Freesound for more."""
    crawl = crawler(GrowOptions(samples=1, licenses=["cc0"]))
    lib = crawl.lib
    lib.add_sample(sound(1))
    by = "https://creativecommons.org/licenses/by/4.0/"
    for other in range(2, 252):
        lib.remember_seen({**sound(other), "license": by}, other)
        lib.add_edge(1, other, rank=other)
        lib.add_edge(1, other, "similar_tags", rank=other)  # two links each
    lib.remember_seen(sound(500), 500)
    lib.add_edge(1, 500, rank=1)
    found = [crawl._candidate(linked=True) for _ in range(2)]
    assert [sound["id"] for sound in found] == [500, 500]
    assert len(crawl._skip) == 250


def test_when_the_fallback_finds_nothing_either_the_crawl_ends(crawler, fs):
    crawl = crawler(GrowOptions(samples=2, tags=["zzzznotaword"]))
    crawl.queries = ["zzzznotaword"]
    result = crawl.run()
    assert result.stopped == Stopped.EXHAUSTED and result.stored == 0
    assert [r["params"]["query"] for r in fs.request_log()] == ["zzzznotaword", ""]


def test_a_remembered_sample_already_stored_is_passed_over(crawler):
    """A library made inconsistent elsewhere (a sample both stored and remembered, the most
    linked of all): the crawl takes the next one rather than trying it for ever."""
    crawler(GrowOptions(samples=2, queries=["rain"])).run()
    crawl = crawler(GrowOptions(samples=2, queries=["rain"]))
    stored = crawl.lib.stored_ids()
    twice = min(stored)
    with crawl.lib.transaction() as conn:
        conn.execute("INSERT INTO seen (id, status, raw, first_seen, links) SELECT id, "
                     "'candidate', raw, added_at, 1000 FROM samples WHERE id = ?", (twice,))
    result = crawl.run()
    assert result.stopped == Stopped.DONE and result.stored == 2
    assert len(crawl.lib.stored_ids() - stored) == 2


def test_candidates_the_options_refuse_are_passed_over_for_the_next_good_one(crawler):
    """Remembered by a run without a filter, taken by one with: each refused candidate is
    passed over, again and again, and every good one after it is still taken."""
    first = crawler(GrowOptions(samples=1, queries=["rain"]))
    first.run()
    leftovers = [(i, first.lib.seen_metadata(i)) for i, _ in first.lib.candidate_links()]
    bound = refusing(leftovers[0][1], [sound for _, sound in leftovers])
    good = [i for i, sound in leftovers if GrowOptions(**bound).accepts(sound)]
    assert len(good) >= 6 and leftovers[0][0] not in good
    commits: list[int] = []
    crawl = crawler(GrowOptions(samples=6, queries=["rain"], **bound), per_day=1,
                    on_commit=lambda batch: commits.extend(i for i, _ in batch))
    with pytest.raises(GrowBudgetExhaustedError):  # one search, then only what is in hand
        crawl.run()
    assert len(commits) == 6 and set(commits) <= set(good)
    assert all(crawl.options.accepts(crawl.lib.get(i)) for i in commits)


def test_the_everyday_queries_finding_nothing_fall_back_to_everything(crawler, fs):
    crawl = crawler(GrowOptions(samples=2))
    assert crawl.queries == list(DEFAULT_QUERIES)
    crawl.queries = ["zzzznotaword"]  # as if the everyday words found nothing
    result = crawl.run()
    assert result.stored == 2 and result.stopped == Stopped.DONE
    assert [r["params"]["query"] for r in fs.request_log()
            if "similar_to" not in r["params"]] == ["zzzznotaword", ""]


def test_the_user_s_queries_replace_the_everyday_ones(crawler, fs):
    crawl = crawler(GrowOptions(samples=1, queries=["crowd"]))
    crawl.run()
    assert [r["params"]["query"] for r in fs.request_log()] == ["crowd"]


def test_a_stop_before_the_run_stores_nothing_and_says_interrupted(crawler, fs):
    crawl = crawler(GrowOptions(samples=3, queries=["rain"]))
    crawl.stop.set()
    result = crawl.run()
    assert result.stopped == Stopped.INTERRUPTED and result.stored == 0
    assert fs.stats["api"] == 0
    assert sql(crawl.lib.folder, "SELECT status FROM runs") == [("interrupted",)]


def test_a_stop_given_to_the_crawler_is_the_one_it_obeys(crawler, fs):
    stop = threading.Event()
    commits: list[int] = []

    def on_commit(batch):
        commits.extend(i for i, _ in batch)
        stop.set()

    crawl = crawler(GrowOptions(samples=5, queries=["rain"]), stop=stop, on_commit=on_commit)
    result = crawl.run()
    assert result.stopped == Stopped.INTERRUPTED and result.stored == 1 == len(commits)


def test_a_stop_during_a_request_keeps_what_was_committed(crawler):
    commits: list[int] = []
    crawl = crawler(GrowOptions(samples=5, queries=["rain"]),
                    on_commit=lambda batch: commits.extend(i for i, _ in batch))
    crawl.log = lambda line: crawl.client.stop.set() if line.startswith("expand") else None
    result = crawl.run()
    assert result.stopped == Stopped.INTERRUPTED and result.stored == 1 == len(commits)
    assert sql(crawl.lib.folder, "SELECT status, samples_added FROM runs") == [
        ("interrupted", 1)]
    assert crawl.lib.stored_ids() == set(commits)


def test_a_refused_key_leaves_the_run_marked_failed(crawler):
    crawl = crawler(GrowOptions(samples=3, queries=["rain"]), key="wrong")
    with pytest.raises(KeyRefusedError):
        crawl.run()
    assert sql(crawl.lib.folder, "SELECT status, samples_added, finished_at IS NOT NULL "
               "FROM runs") == [("failed", 0, 1)]


class FailingDisk(FreesoundLibrary):
    """A real library whose named methods fail as a failing disk makes SQLite fail."""

    failing: frozenset[str] = frozenset()

    def checkpoint(self) -> None:
        if "checkpoint" in self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        super().checkpoint()

    def update_run(self, run_id: int, **kwargs) -> None:
        if "update_run" in self.failing or (kwargs.get("finished")
                                            and "finish_run" in self.failing):
            raise sqlite3.OperationalError("disk I/O error")
        super().update_run(run_id, **kwargs)


@pytest.mark.parametrize("failing", ["checkpoint", "finish_run"])
def test_a_failure_while_finishing_a_run_does_not_hide_what_it_did(crawler, failing):
    library_class = type("Failing", (FailingDisk,), {"failing": frozenset([failing])})
    crawl = crawler(GrowOptions(samples=3, queries=["rain"]), library_class=library_class)
    result = crawl.run()
    assert result.stopped == Stopped.DONE and result.stored == 3 == result.samples
    status = sql(crawl.lib.folder, "SELECT status FROM runs")
    assert status == [("running" if failing == "finish_run" else "done",)]


def test_a_commit_that_fails_reaches_the_caller_as_itself(crawler):
    library_class = type("Failing", (FailingDisk,), {"failing": frozenset(["update_run"])})
    crawl = crawler(GrowOptions(samples=3, queries=["rain"]), library_class=library_class)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        crawl.run()
    # The failed batch's transaction is left open for the library's close to roll back (it
    # was never reported). Dropped here, while the library is open, it rolls back the same.
    crawl._tx = None
    gc.collect()
    assert crawl.lib.stored_ids() == set()
