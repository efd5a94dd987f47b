"""Growing the library: seeds from text searches, then expansion by similarity.

Quota rules (the seed's "sound cache", made strict):

- Metadata always comes from list answers (``fields=`` with everything we keep), 150 results
  a request: never one request per sample.
- Results we do not store now are remembered in ``seen`` with their metadata; a later run
  stores them without asking again.
- No request is ever about a stored sample, except the single ``similar_to`` expansion of a
  stored sample whose ``expanded`` flag is still 0. The expansion's results and the flag are
  committed in one transaction, so after a crash an expanded sample is never asked about
  again, and an unexpanded one is asked about at most once more.

Order of work, each step one transaction:

1. the first page of every query of this run that was never searched;
2. one seed sample per newly searched query (its most downloaded result);
3. expanding the most downloaded stored-but-unexpanded sample (``similar_to``) when fewer
   than one sample in ``expand_every`` (12) was expanded: a denser graph for a bounded cost;
4. a remembered sample that a stored sample links to (most links, best rank, most downloads);
5. expanding the frontier when nothing linked is left;
6. any remembered sample (seed leftovers);
7. the next page of a query;
8. nothing left: stop early.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from easy_oww.freesound.api import LICENSES, FreesoundClient
from easy_oww.freesound.backup import DEFAULT_EVERY, DEFAULT_KEEP, create_backup, list_backups
from easy_oww.freesound.errors import (
    BadInputError,
    BudgetExhaustedError,
    MalformedAnswerError,
    SoundNotFoundError,
)
from easy_oww.freesound.lock import grow_lock as grow_lock  # its old home; callers use lock
from easy_oww.freesound.schema import SIMILAR
from easy_oww.freesound.stopped import Stopped
from easy_oww.freesound.store import FreesoundLibrary, MalformedSampleError, normalise_sample

# Everyday background sounds: what a wake-word model must learn to ignore.
DEFAULT_QUERIES = ("ambience", "room tone", "rain", "traffic", "crowd")

# Remembered candidates read at a time (ids and link counts only), besides those passed over.
CANDIDATES_A_LOOK = 200

LICENSE_URL_PARTS = {
    "Creative Commons 0": ("publicdomain/zero",),
    "Attribution": ("licenses/by/",),
    "Attribution NonCommercial": ("licenses/by-nc/",),
    "Sampling+": ("sampling+",),
}


@dataclass
class GrowOptions:
    samples: int = 50
    queries: Sequence[str] = ()
    licenses: Sequence[str] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    tags: Sequence[str] = ()
    checkpoint_interval: int = 1
    backup_every: int = DEFAULT_EVERY
    keep_backups: int = DEFAULT_KEEP
    seeds_per_query: int = 1
    expand_every: int = 12
    similarity_space: str | None = None

    def check(self) -> None:
        if self.samples < 0:
            raise BadInputError(f"samples must be 0 or more, not {self.samples}")
        if self.checkpoint_interval < 1:
            raise BadInputError("checkpoint_interval must be at least 1")
        if self.backup_every < 1:
            raise BadInputError("backup_every must be at least 1")
        if self.expand_every < 1:
            raise BadInputError("expand_every must be at least 1")
        if self.keep_backups < 1:
            raise BadInputError("keep_backups must be at least 1")
        for name in self.licenses:
            if name not in LICENSES:
                raise BadInputError(
                    f"unknown license {name!r}; choose from {', '.join(LICENSES)}"
                )
        if (self.min_duration is not None and self.max_duration is not None
                and self.min_duration > self.max_duration):
            raise BadInputError("min_duration is larger than max_duration")

    def filter(self) -> str | None:
        """The Solr filter Freesound understands for these options."""
        parts = []
        if self.licenses:
            names = [f'"{LICENSES[name]}"' for name in self.licenses]
            parts.append(f"license:{names[0]}" if len(names) == 1
                         else f"license:({' OR '.join(names)})")
        if self.min_duration is not None or self.max_duration is not None:
            low = "*" if self.min_duration is None else f"{self.min_duration:g}"
            high = "*" if self.max_duration is None else f"{self.max_duration:g}"
            parts.append(f"duration:[{low} TO {high}]")
        for tag in self.tags:
            parts.append(f"tag:{_solr_term(tag)}")
        return " ".join(parts) or None

    def accepts(self, sound: dict[str, Any]) -> bool:
        """The same filter, applied to a remembered sample (it may come from another run)."""
        if self.licenses:
            value = str(sound.get("license") or "")
            wanted = [LICENSES[name] for name in self.licenses]
            if value not in wanted and not any(
                part in value for name in wanted for part in LICENSE_URL_PARTS.get(name, ())
            ):
                return False
        duration = sound.get("duration")
        if self.min_duration is not None and not (
            isinstance(duration, (int, float)) and duration >= self.min_duration
        ):
            return False
        if self.max_duration is not None and not (
            isinstance(duration, (int, float)) and duration <= self.max_duration
        ):
            return False
        tags = {str(t).lower() for t in sound.get("tags") or []}
        return all(tag.lower() in tags for tag in self.tags)


def _solr_term(text: str) -> str:
    if not any(c in text for c in ' :"()[]\\'):
        return text
    # a quoted Solr phrase ends at the next unescaped quote: escape the user's quotes and
    # backslashes so the phrase ends where the text does (a bare quote was a 400 from Freesound)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class GrowResult:
    stored: int = 0
    requests: int = 0
    stopped: Stopped = Stopped.DONE
    samples: int = 0
    edges: int = 0
    frontier: int = 0
    budget_left: int | None = None
    budget_resets_at: str | None = None
    backups: list[str] = field(default_factory=list)
    problems: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GrowBudgetExhaustedError(BudgetExhaustedError):
    """The daily budget ran out during a grow; `result`: what the run did (every committed
    sample is stored; ``result.stopped`` is ``Stopped.BUDGET``)."""

    def __init__(self, message: str, *, resets_at: str | None, result: GrowResult) -> None:
        super().__init__(message, resets_at=resets_at)
        self.result = result


Committed = Callable[[list[tuple[int, int]]], None]
Progress = Callable[[GrowResult], None]


class Crawler:
    def __init__(
        self,
        library: FreesoundLibrary,
        client: FreesoundClient,
        options: GrowOptions,
        *,
        on_commit: Committed | None = None,
        on_progress: Progress | None = None,
        stop: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        options.check()
        self.lib = library
        self.client = client
        self.options = options
        self.on_commit = on_commit or (lambda items: None)
        self.on_progress = on_progress or (lambda result: None)
        self.stop = stop or client.stop
        self.log = log or (lambda message: None)
        self.filter = options.filter()
        self.user_queries = list(options.queries)
        self.queries = self.user_queries or list(DEFAULT_QUERIES)
        self.result = GrowResult()
        self.run_id = 0
        self._batch: list[tuple[int, int]] = []
        self._tx: contextlib.ExitStack | None = None
        self._new_queries: list[str] = []
        self._seed_done: dict[str, int] = {}
        self._skip: set[int] = set()

    # -- seeds
    def _seed_key(self, query: str) -> str:
        return json.dumps([query, self.filter, "downloads_desc"])

    def _fetch_seed_page(self, query: str, page: int) -> None:
        self._flush()
        key = self._seed_key(query)
        self.log(f"seed search {query!r} page {page}")
        try:
            answer = self._call(lambda: self.client.search(
                query, filter=self.filter, sort="downloads_desc", page=page))
        except SoundNotFoundError:  # past the last page
            self.lib.set_seed_state(key, query, self.filter, "downloads_desc", page, True)
            return
        except MalformedAnswerError as exc:
            self.lib.record_problem(f"seed search {query!r} page {page}: {exc}",
                                    run_id=self.run_id)
            self.lib.set_seed_state(key, query, self.filter, "downloads_desc", page + 1, False)
            return
        with self.lib.transaction():
            for item in answer["results"]:
                sound_id = self._valid(item, f"seed search {query!r}")
                if sound_id is not None and not self.lib.has(sound_id):
                    self.lib.remember_seen(item, sound_id, note=f"seed:{query}")
            exhausted = not answer.get("next") or not answer["results"]
            self.lib.set_seed_state(key, query, self.filter, "downloads_desc", page + 1,
                                    exhausted)

    def _valid(self, item: Any, where: str) -> int | None:
        try:
            return int(normalise_sample(item)["id"])
        except MalformedSampleError as exc:
            sound_id = item.get("id") if isinstance(item, dict) else None
            sound_id = sound_id if isinstance(sound_id, int) and sound_id > 0 else None
            self.lib.record_problem(f"{where}: skipped a malformed result: {exc}",
                                    sound_id=sound_id, run_id=self.run_id)
            self.result.problems += 1
            return None

    def _seed_pick(self) -> dict[str, Any] | None:
        for query in self._new_queries:
            if self._seed_done.get(query, 0) >= self.options.seeds_per_query:
                continue
            for sound_id, sound in self.lib.seed_candidates(query, limit=50):
                if sound_id not in self._skip and self.options.accepts(sound):
                    self._seed_done[query] = self._seed_done.get(query, 0) + 1
                    return sound
            self._seed_done[query] = self.options.seeds_per_query  # nothing to pick
        return None

    def _candidate(self, linked: bool) -> dict[str, Any] | None:
        # ids first; the JSON only for the one we take (or test against the filters). The ones
        # passed over stay candidates (another run's options may take them), so each look
        # reaches past them: 200 of them must not hide a good one (the crawl would spend
        # requests on expansions and further pages while it waits in hand).
        while True:
            limit = CANDIDATES_A_LOOK + len(self._skip)
            rows = self.lib.candidate_links(limit=limit)
            for sound_id, links in rows:
                if linked and links == 0:
                    return None
                if sound_id in self._skip:
                    continue
                sound = self.lib.seen_metadata(sound_id)
                if sound is not None and self.options.accepts(sound):
                    return sound
                self._skip.add(sound_id)
            if len(rows) < limit:  # every candidate was looked at
                return None

    # -- steps
    def _store(self, sound: dict[str, Any]) -> None:
        if self._tx is None:
            self._tx = contextlib.ExitStack()
            self._tx.enter_context(self.lib.transaction())
        result = self.lib.add_sample(sound, run_id=self.run_id)
        if result.added:
            self.result.stored += 1
            self._total += 1
            self._batch.append((result.id, result.edges))
        else:  # cannot happen with a consistent library; never loop on it
            self._skip.add(result.id)
        if len(self._batch) >= self.options.checkpoint_interval:
            self._flush()

    def _flush(self) -> None:
        """Commit the open batch (durable), then report it: printed means stored."""
        if self._tx is None:
            return
        self.lib.update_run(self.run_id, samples_added=self.result.stored,
                            requests=self.client.requests)
        tx, self._tx = self._tx, None
        tx.close()  # COMMIT
        batch, self._batch = self._batch, []
        if batch:
            self.on_commit(batch)
            self._maybe_backup(len(batch))
            self._progress()

    def _progress(self) -> None:
        self.result.requests = self.client.requests
        self.result.budget_left = self.client.budget.status()["budget_left"]
        self.on_progress(self.result)

    def _maybe_backup(self, added: int) -> None:
        total = self._total
        every = self.options.backup_every
        if total // every > (total - added) // every:
            info = create_backup(self.lib, keep=self.options.keep_backups)
            self.result.backups.append(info.name)
            self.log(f"backup {info.name}")
            # the summary lists the backups this run made that are still there to restore
            kept = {backup.name for backup in list_backups(self.lib.folder)}
            self.result.backups = [name for name in self.result.backups if name in kept]

    def _expand(self, sound_id: int) -> None:
        self._flush()
        self.log(f"expand {sound_id}")
        try:
            answer = self._call(lambda: self.client.similar(
                sound_id, filter=self.filter, similarity_space=self.options.similarity_space))
        except SoundNotFoundError:
            self.lib.mark_expanded(sound_id, state=2, note="deleted on Freesound (404)",
                                   deleted=True)
            self._expanded += 1
            self.lib.record_problem("similar: 404, marked deleted", sound_id=sound_id,
                                    run_id=self.run_id)
            return
        except MalformedAnswerError as exc:
            self.lib.mark_expanded(sound_id, state=2, note=f"malformed answer: {exc}")
            self._expanded += 1
            self.lib.record_problem(f"similar: {exc}", sound_id=sound_id, run_id=self.run_id)
            self.result.problems += 1
            return
        results = answer["results"]
        with self.lib.transaction():
            for rank, item in enumerate(results, 1):
                other = self._valid(item, f"similar to {sound_id}")
                if other is None or other == sound_id:
                    continue
                weight = _similarity(item, rank, len(results))
                if not self.lib.has(other):
                    self.lib.remember_seen(item, other, note=f"similar:{sound_id}")
                self.lib.add_edge(sound_id, other, SIMILAR, weight, rank=rank)
            self.lib.mark_expanded(sound_id)
        self._expanded += 1
        self._progress()

    def _call(self, request: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return request()
        finally:
            self.result.requests = self.client.requests

    def _expansions_behind(self) -> bool:
        return (self._expanded + 1) * self.options.expand_every <= self._total

    def _next_page_query(self) -> tuple[str, int] | None:
        for query in self.queries:
            state = self.lib.seed_state(self._seed_key(query))
            if state is None:
                return query, 1
            if not state[1]:
                return query, state[0]
        return None

    # -- the loop
    def run(self) -> GrowResult:
        self.run_id = self.lib.start_run()
        stats = self.lib.stats()
        self._total, self._expanded = stats.samples, stats.expanded
        status = "failed"
        try:
            try:
                self._loop()
            except BudgetExhaustedError as exc:
                # Results in hand (remembered, with their metadata) cost no request: store
                # them up to the target before stopping.
                self._flush()
                self._loop(requests=False)
                raise exc from None
            status = self.result.stopped
        except BudgetExhaustedError as exc:
            self.result.stopped = status = Stopped.BUDGET
            self.result.budget_resets_at = exc.resets_at
            # the result is complete once `finally` below has run, before this reaches the caller
            raise GrowBudgetExhaustedError(str(exc), resets_at=exc.resets_at,
                                           result=self.result) from None
        except InterruptedError:
            self.result.stopped = status = Stopped.INTERRUPTED
        finally:
            with contextlib.suppress(Exception):
                self._flush()
            self._finish(status)
        return self.result

    def _finish(self, status: str) -> None:
        with contextlib.suppress(Exception):
            self.lib.checkpoint()
        with contextlib.suppress(Exception):
            self.lib.update_run(self.run_id, samples_added=self.result.stored,
                                requests=self.client.requests, status=status, finished=True)
        stats = self.lib.stats()
        self.result.samples, self.result.edges = stats.samples, stats.edges
        self.result.frontier = stats.frontier
        self.result.requests = self.client.requests
        budget = self.client.budget.status()
        self.result.budget_left = budget["budget_left"]
        self.result.budget_resets_at = budget["budget_resets_at"]

    def _loop(self, requests: bool = True) -> None:
        """Store samples until the target; `requests` False: only from what is in hand (the
        steps that send a request are skipped), after the day's budget ran out."""
        target = self.options.samples
        fallback_added = False
        while self.result.stored < target:
            if self.stop.is_set():
                self.result.stopped = Stopped.INTERRUPTED
                return
            # 1. queries of this run never searched before
            fresh = next((q for q in self.queries
                          if self.lib.seed_state(self._seed_key(q)) is None), None)
            if fresh is not None and requests:
                self._fetch_seed_page(fresh, 1)
                self._new_queries.append(fresh)
                continue
            # 2. one seed per newly searched query
            pick = self._seed_pick()
            if pick is not None:
                self._store(pick)
                continue
            # 3. keep about one expansion per `expand_every` samples: a denser similarity graph
            #    for a bounded cost (1,000 samples from empty: under 100 requests)
            if requests and self._expansions_behind():
                frontier = self.lib.next_to_expand()
                if frontier is not None:
                    self._expand(frontier)
                    continue
            # 4. a remembered sample linked from the library
            linked = self._candidate(linked=True)
            if linked is not None:
                self._store(linked)
                continue
            # 5. nothing linked is left: expand the frontier
            frontier = self.lib.next_to_expand() if requests else None
            if frontier is not None:
                self._expand(frontier)
                continue
            # 6. seed leftovers
            loose = self._candidate(linked=False)
            if loose is not None:
                self._store(loose)
                continue
            if not requests:
                return  # nothing more in hand
            # 7. further pages
            nxt = self._next_page_query()
            if nxt is not None:
                self._fetch_seed_page(*nxt)
                continue
            if not self.user_queries and not fallback_added:
                fallback_added = True  # the everyday queries found nothing: take everything
                self.queries.append("")
                continue
            self.result.stopped = Stopped.EXHAUSTED
            return
        self._flush()


def _similarity(item: dict[str, Any], rank: int, count: int) -> float:
    for name in ("similarity", "score"):
        value = item.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    distance = item.get("distance")
    if isinstance(distance, (int, float)) and not isinstance(distance, bool):
        return 1.0 / (1.0 + float(distance))
    return round(1.0 - (rank - 1) / max(count, 1), 6)
