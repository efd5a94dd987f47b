"""A Freesound APIv2 stand-in: a real HTTP server on loopback over a generated corpus.

It speaks the protocol of https://freesound.org/apiv2 closely enough that the library's client
and crawler can be tested for real (page shape, 150 page-size cap, token check, 429 with the
real body and no ``Retry-After``), and it counts everything the client asks.

In a test::

    from tests.servers.freesound_standin import FreesoundStandin

    with FreesoundStandin(n_sounds=3000, seed=0, api_key="test-key") as fs:
        fs.base_url                      # "http://127.0.0.1:PORT/apiv2"  (the client's --api-url)
        ...run the client...
        fs.stats["token_in_url"] == 0    # the key never went into a URL
        fs.requested_sound_ids()         # every id asked about specifically
        fs.reset_minute_window()         # a new minute, without sleeping
        fs.fail_next(2, status=503)      # fault injection

As a process (for chaos tests that SIGKILL the client)::

    python -m tests.servers.freesound_standin --port 0 --sounds 3000 --key KEY \
        [--seed 0] [--per-minute 60] [--per-day 2000]

prints ``PORT <n>`` as its first stdout line, then ``BASE_URL <url>``; ``GET /__stats`` (no
auth) answers the accounting as JSON, ``GET /__log`` the request log, and
``POST /__control`` with ``{"action": "<method name>", ...kwargs}`` calls one of the control
methods (``fail_next``, ``malformed_next``, ``disconnect_next``, ``delay_next``,
``delete_sound``, ``reset_minute_window``, ``reset_day_window``, ``exhaust_minute``,
``exhaust_day``, ``advance``, ``set_limits``, ``reset_stats``).

Endpoints (all under ``/apiv2``, trailing slash as the real API; a path without it gets the
Django ``301`` to the slashed path):

- ``GET /search/`` and ``/search/text/``: ``query``, ``filter``, ``sort``, ``fields``, ``page``,
  ``page_size``, ``group_by_pack``, ``similar_to`` (sound id or ``[f,f,...]`` vector),
  ``similarity_space`` (``laion_clap`` default, ``freesound_classic``).
- ``GET /sounds/<id>/``, ``/sounds/<id>/similar/``, ``/sounds/<id>/download/`` (always 401,
  originals need OAuth2), ``/users/<name>/``, ``/users/<name>/sounds/``,
  ``/users/<name>/packs/``, ``/packs/<id>/``, ``/packs/<id>/sounds/`` (these three lists page
  like Django REST framework: 404 ``{"detail": "Invalid page."}`` past the end).
- Previews and images live on this server outside ``/apiv2`` (like the real CDN), need no key,
  and honour ``HEAD`` and single ``Range`` requests: ``/previews/<id//1000>/<id>_<uid>-hq.mp3``
  etc. Previews are real, decodable MP3/Ogg Vorbis bytes, deterministic per seed, cut to
  ``preview_seconds`` (default 2 s) to stay cheap.

Body texts follow Freesound's own code (MTG/freesound ``apiv2/``, Django REST framework):
wrong key ``401 {"detail": "Invalid token"}``; no key ``401 {"detail": "Authentication
credentials were not provided."}``; deleted sound ``404 {"detail": "Not found."}``; a page
past the last of a search or similar list ``404 {"detail": "Not found"}``; throttled ``429
{"detail": "Request was throttled because of exceeding a request limit rate (60/minute)"}``.
``next``/``previous`` links are built like Freesound's ``construct_link``
(``...?&query=rain&page=2&page_size=150&fields=id,name``), never carrying the token.

Similarity: every sound has an 8-dimensional vector per similarity space (clustered by theme,
so neighbours share tags); its similar list is its 150 nearest neighbours by cosine, itself
excluded, precomputed at start. A few "deleted" sounds exist only in those lists (a stale
similarity index): they appear there, but ``/sounds/<id>/`` answers 404 and text search never
returns them.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import itertools
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import numpy as np

from tests.servers.ranges import UNSATISFIABLE, parse_range

API_PREFIX = "/apiv2"
DEFAULT_PAGE_SIZE = 15
MAX_PAGE_SIZE = 150
SIMILAR_COUNT = 150
VECTOR_DIM = 8
SIMILARITY_SPACES = ("laion_clap", "freesound_classic")
DEFAULT_SIMILARITY_SPACE = "laion_clap"

# Bodies as Freesound's code writes them.
NOT_FOUND_SOUND = "Not found."  # DRF Http404 from the sound/user/pack instance views
NOT_FOUND_PAGE = "Not found"  # apiv2 NotFoundException() from search and similar views
INVALID_PAGE = "Invalid page."  # DRF PageNumberPagination (user/pack sound lists)
INVALID_TOKEN = "Invalid token"
NO_CREDENTIALS = "Authentication credentials were not provided."
THROTTLE_MSG = "Request was throttled because of exceeding a request limit rate ({rate})"
OAUTH_REQUIRED = "This resource requires OAuth2 authentication."

# (deed url as the API returns it, license name as used in filters, share of the corpus)
LICENSES = (
    ("http://creativecommons.org/publicdomain/zero/1.0/", "Creative Commons 0", 45),
    ("https://creativecommons.org/licenses/by/4.0/", "Attribution", 20),
    ("http://creativecommons.org/licenses/by/3.0/", "Attribution", 10),
    ("http://creativecommons.org/licenses/by-nc/3.0/", "Attribution NonCommercial", 12),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "Attribution NonCommercial", 10),
    ("http://creativecommons.org/licenses/sampling+/1.0/", "Sampling+", 3),
)

SORTS = {
    "score": None,
    "duration_desc": ("duration", True),
    "duration_asc": ("duration", False),
    "created_desc": ("created", True),
    "created_asc": ("created", False),
    "downloads_desc": ("num_downloads", True),
    "downloads_asc": ("num_downloads", False),
    "rating_desc": ("avg_rating", True),
    "rating_asc": ("avg_rating", False),
}

# Canonical field order (the serializer's, not the request's).
ALL_FIELDS = (
    "id", "url", "name", "tags", "description", "category", "subcategory", "category_code",
    "category_is_user_provided", "geotag", "created", "license", "type", "channels", "filesize",
    "bitrate", "bitdepth", "duration", "samplerate", "md5", "username", "pack", "pack_name",
    "download", "bookmark", "previews", "images", "num_downloads", "avg_rating", "num_ratings",
    "rate", "comments", "num_comments", "comment", "similar_sounds", "is_explicit", "score",
)
LIST_DEFAULT_FIELDS = ("id", "name", "tags", "username", "license")
DETAIL_DEFAULT_FIELDS = tuple(f for f in ALL_FIELDS if f != "score")

# Broad Sound Taxonomy: code -> (category, subcategory)
TAXONOMY = {
    "is-p": ("Instrument samples", "Percussion"),
    "is-s": ("Instrument samples", "String instrument"),
    "is-w": ("Instrument samples", "Wind instrument"),
    "is-k": ("Instrument samples", "Piano / Keyboard instruments"),
    "is-e": ("Instrument samples", "Synth / Electronic"),
    "m-sp": ("Music", "Solo percussion"),
    "m-m": ("Music", "Multiple instruments"),
    "sp-s": ("Speech", "Solo speech"),
    "sp-c": ("Speech", "Conversation / Crowd"),
    "sp-p": ("Speech", "Processed / Synthetic"),
    "ss-n": ("Soundscapes", "Nature"),
    "ss-i": ("Soundscapes", "Indoors"),
    "ss-u": ("Soundscapes", "Urban"),
    "ss-s": ("Soundscapes", "Synthetic / Artificial"),
    "fx-o": ("Sound effects", "Objects / House appliances"),
    "fx-v": ("Sound effects", "Vehicles"),
    "fx-m": ("Sound effects", "Other mechanisms, engines, machines"),
    "fx-h": ("Sound effects", "Human sounds and actions"),
    "fx-a": ("Sound effects", "Animals"),
    "fx-n": ("Sound effects", "Natural elements and explosions"),
    "fx-ex": ("Sound effects", "Experimental"),
    "fx-el": ("Sound effects", "Electronic / Design"),
}

# Themes: (taxonomy code, weight, theme tags). Sounds of a theme share tags and a vector centre.
THEMES = (
    ("ss-n", 9, "rain storm thunder water drops roof wet weather puddle drizzle"),
    ("ss-n", 8, "forest birds birdsong morning dawn nature wind trees leaves spring"),
    ("ss-n", 5, "ocean waves sea beach shore surf seagull coast tide sand"),
    ("fx-n", 5, "fire crackle fireplace burning flame campfire explosion blast debris smoke"),
    ("ss-u", 7, "city street traffic urban cars crowd people ambience busy market"),
    ("fx-v", 6, "car engine motor vehicle truck passing idle rev train railway"),
    ("fx-v", 3, "airplane jet flyby helicopter airport propeller takeoff landing sky"),
    ("fx-o", 8, "door slam knock creak wood handle lock key squeak hinge"),
    ("fx-o", 6, "glass metal impact hit clang crash break shatter bang thud"),
    ("fx-o", 5, "kitchen cooking plate cutlery cup pour bottle fridge microwave"),
    ("fx-h", 6, "footsteps walking running steps gravel shoes boots stairs floor snow"),
    ("fx-h", 4, "breath breathing cough sneeze laugh scream heartbeat yawn sigh clap"),
    ("fx-a", 6, "dog bark cat meow animal farm cow horse sheep chicken"),
    ("fx-a", 3, "insects crickets frog cicada bees buzz night summer swamp pond"),
    ("sp-s", 4, "voice speech male female talking spoken word english reading narration"),
    ("sp-c", 2, "conversation chatter crowd cheer applause audience party bar restaurant"),
    ("sp-p", 2, "robot vocoder radio voice-processed alien telephone announcement pa"),
    ("fx-el", 7, "ui click button beep notification interface menu select alert game"),
    ("fx-el", 5, "whoosh swoosh swish transition riser sweep fast pass air movement"),
    ("fx-ex", 3, "glitch noise static distortion feedback circuit-bent experimental weird"),
    ("ss-s", 4, "drone ambient pad atmosphere dark sci-fi space texture evolving eerie"),
    ("is-p", 6, "drum kick snare hihat cymbal percussion tom clap-sample one-shot hit"),
    ("is-e", 5, "synth bass lead arp analog modular oscillator saw square electronic"),
    ("is-k", 3, "piano keys chord note grand upright keyboard rhodes organ melody"),
    ("is-s", 3, "guitar acoustic electric strum pluck string violin cello bass-guitar riff"),
    ("is-w", 2, "flute saxophone trumpet horn clarinet brass woodwind breathy tone whistle"),
    ("m-sp", 2, "loop beat groove rhythm bpm break drumloop hip-hop 120bpm tempo"),
    ("m-m", 2, "music song melody ensemble band orchestra jingle soundtrack theme intro"),
    ("ss-i", 4, "room-tone indoor office hum fan air-conditioner computer ventilation quiet"),
)
GENERIC_TAGS = (
    "field-recording stereo mono loud soft short long high low deep distant close reverb echo "
    "binaural recording zoom-h4n processed foley sfx sound-effect free cc0 44100 48khz 24bit"
).split()

USER_PARTS_A = (
    "field", "sound", "audio", "noise", "echo", "sonic", "night", "rain", "urban", "forest",
    "studio", "foley", "synth", "tape", "analog", "deep", "lo-fi", "quiet", "wave", "pixel",
)
USER_PARTS_B = (
    "recorder", "hunter", "walker", "maker", "lab", "works", "fox", "owl", "cat", "bear",
    "smith", "drifter", "sampler", "collector", "monk", "pilot", "garden", "cloud", "loop",
)
ODD_USERNAMES = ("j.doe", "mr+noise", "ana@sounds", "el-niño", "Tim_O'Brien", "x")

NAME_SUFFIXES = ("", "", " 01", " 02", "_03", " (loop)", " - take 2", " [edited]")
NON_ASCII_NAMES = ("Lluvia en el tejado", "雨の音", "Дверь скрипит", "café ambiance", "Ö-Bahn")
DESCRIPTIONS = (
    "Recorded with a {device} in {place}.",
    "{Tag} sound, {tag2} and {tag3}. Free to use, credit appreciated.",
    "A {tag} recording.\r\nMic: {device}\r\nEdited in Audacity.",
    "Part of my <b>{tag}</b> series. More at <a href=\"https://example.org\">my site</a>.",
    "{Tag}. Normalized to -1 dB, no other processing.",
    "",
)
DEVICES = ("Zoom H4n", "Tascam DR-40", "Sound Devices MixPre-6", "phone", "Rode NT4", "Zoom H6")
PLACES = ("Barcelona", "my backyard", "a forest near Berlin", "Tokyo", "the kitchen", "a park")


class ApiError(Exception):
    """An answer other than 200 from an API handler."""

    def __init__(self, status: int, detail: str, headers: tuple = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class FilterError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[^\W_]+", text.lower()))


class Corpus:
    """Users, packs and sounds generated from ``seed``; immutable once built."""

    def __init__(self, n_sounds: int, seed: int, n_deleted: int) -> None:
        if n_sounds < 2:
            raise ValueError("n_sounds must be at least 2")
        self.seed = seed
        rng = random.Random(seed)
        nrng = np.random.default_rng(seed)
        total = n_sounds + n_deleted

        # Users: Zipf-ish activity, ~300 of them for 3000 sounds.
        n_users = max(3, min(300, total // 10))
        names: list[str] = list(ODD_USERNAMES[: max(0, min(len(ODD_USERNAMES), n_users - 2))])
        seen = set(names)
        while len(names) < n_users:
            style = rng.random()
            a, b = rng.choice(USER_PARTS_A), rng.choice(USER_PARTS_B)
            if style < 0.4:
                cand = f"{a}_{b}"
            elif style < 0.7:
                cand = f"{a}{b}{rng.randrange(1, 999)}"
            else:
                cand = f"{a.capitalize()}{b.capitalize()}"
            if cand not in seen:
                seen.add(cand)
                names.append(cand)
        rng.shuffle(names)
        user_ids = rng.sample(range(1, 9_000_000), n_users)
        self.users: list[dict] = []
        for i, name in enumerate(names):
            joined = datetime(2005, 1, 1) + timedelta(seconds=rng.randrange(0, 19 * 365 * 86400))
            self.users.append({
                "id": user_ids[i], "username": name, "date_joined": joined,
                "about": rng.choice(("", f"Hi, I record {rng.choice(USER_PARTS_A)} sounds.")),
                "home_page": rng.choice(("", f"https://example.org/{quote(name)}")),
                "num_posts": int(rng.paretovariate(1.5)) - 1,
                "num_comments": int(rng.paretovariate(1.2)) - 1,
                "sounds": [], "packs": [],
            })
        user_cum = list(itertools.accumulate(1.0 / (r + 1) ** 0.9 for r in range(n_users)))
        self.user_by_name = {u["username"]: u for u in self.users}

        # Packs: ~150, owned by active users.
        n_packs = max(1, min(150, total // 20))
        pack_ids = rng.sample(range(1, 60_000), n_packs)
        self.packs: dict[int, dict] = {}
        for pid in pack_ids:
            owner = rng.choices(self.users, cum_weights=user_cum)[0]
            theme = rng.randrange(len(THEMES))
            word = rng.choice(THEMES[theme][2].split())
            pack = {
                "id": pid, "username": owner["username"], "theme": theme,
                "name": rng.choice((f"{word.capitalize()} pack", f"{word} sounds vol {pid % 7 + 1}",
                                    f"My {word} recordings", f"{word.upper()} SFX")),
                "description": f"A collection of {word} sounds.",
                "created": owner["date_joined"] + timedelta(days=rng.randrange(1, 400)),
                "num_downloads": int(nrng.pareto(1.3) * 50), "sounds": [],
            }
            self.packs[pid] = pack
            owner["packs"].append(pid)

        # Sounds: ids unique in 1..10^6, created grows with the id like on Freesound.
        ids = sorted(rng.sample(range(1, 1_000_001), total))
        start, end = datetime(2005, 4, 5).timestamp(), datetime(2025, 10, 1).timestamp()
        stamps = sorted(rng.uniform(start, end) for _ in range(total))
        theme_weights = [t[1] for t in THEMES]
        lic_weights = [lic[2] for lic in LICENSES]
        self.sounds: list[dict] = []
        self.by_id: dict[int, dict] = {}
        themes_of = []
        for idx, sid in enumerate(ids):
            user = rng.choices(self.users, cum_weights=user_cum)[0]
            pack_id = None
            if user["packs"] and rng.random() < 0.6:
                pack_id = rng.choice(user["packs"])
                theme = self.packs[pack_id]["theme"] if rng.random() < 0.8 else None
            else:
                theme = None
            if theme is None:
                theme = rng.choices(range(len(THEMES)), weights=theme_weights)[0]
            themes_of.append(theme)
            code, _, theme_tags = THEMES[theme]
            theme_tags = theme_tags.split()
            n_tags = rng.randint(2, 8)
            n_generic = min(n_tags - 1, rng.choice((0, 0, 1, 1, 2, 3)))
            tags = rng.sample(theme_tags, min(len(theme_tags), n_tags - n_generic))
            tags += [t for t in rng.sample(GENERIC_TAGS, n_generic) if t not in tags]
            ftype = rng.choices(("wav", "mp3", "flac", "ogg", "aiff"), (55, 15, 15, 10, 5))[0]
            samplerate = rng.choices((44100, 48000, 96000, 22050), (60, 30, 7, 3))[0]
            channels = rng.choices((1, 2), (35, 65))[0]
            duration = round(min(120.0, max(0.2, rng.lognormvariate(1.3, 1.1))), 6)
            if ftype in ("wav", "flac", "aiff"):
                bitdepth = rng.choices((16, 24, 32), (60, 35, 5))[0]
                bitrate = samplerate * bitdepth * channels // 1000
                filesize = int(duration * samplerate * channels * bitdepth / 8) + 44
                if ftype == "flac":
                    filesize = int(filesize * 0.6)
            else:
                bitdepth = 0
                bitrate = rng.choice((96, 128, 192, 256, 320))
                filesize = int(duration * bitrate * 125) + 417
            if rng.random() < 0.02:
                name = rng.choice(NON_ASCII_NAMES)
            else:
                words = rng.sample(tags, min(len(tags), rng.randint(1, 3)))
                sep = rng.choice((" ", "_", "-"))
                name = sep.join(words)
                if rng.random() < 0.5:
                    name = name.title() if sep == " " else name
                name += rng.choice(NAME_SUFFIXES)
                if rng.random() < 0.4:
                    name += "." + ftype
            t1, t2, t3 = (rng.choice(tags) for _ in range(3))
            description = rng.choice(DESCRIPTIONS).format(
                device=rng.choice(DEVICES), place=rng.choice(PLACES),
                Tag=t1.capitalize(), tag=t1, tag2=t2, tag3=t3)
            num_ratings = int(nrng.pareto(1.5) * 2)
            avg_rating = round(rng.uniform(2.5, 5.0), 4) if num_ratings else 0.0
            geotag = None
            if rng.random() < 0.2:
                geotag = f"{rng.uniform(-60, 70):.10f} {rng.uniform(-180, 180):.10f}"
            lic_url, lic_name, _ = rng.choices(LICENSES, weights=lic_weights)[0]
            s = {
                "id": sid, "idx": idx, "name": name, "tags": tags, "description": description,
                "category_code": code, "category": TAXONOMY[code][0],
                "subcategory": TAXONOMY[code][1],
                "category_is_user_provided": rng.random() < 0.3,
                "geotag": geotag, "created": datetime.fromtimestamp(stamps[idx]).replace(
                    microsecond=0),
                "license": lic_url, "license_name": lic_name, "type": ftype,
                "channels": channels, "filesize": filesize, "bitrate": bitrate,
                "bitdepth": bitdepth, "duration": duration, "samplerate": samplerate,
                "md5": hashlib.md5(f"{seed}:{sid}".encode()).hexdigest(),
                "username": user["username"], "user_id": user["id"], "pack_id": pack_id,
                "pack_name": self.packs[pack_id]["name"] if pack_id else None,
                "num_downloads": int(nrng.pareto(1.1) * 30),
                "avg_rating": avg_rating, "num_ratings": num_ratings,
                "num_comments": int(nrng.pareto(2.0) * 1.5),
                "is_explicit": rng.random() < 0.02, "theme": theme,
            }
            s["tok"] = {
                "tag": {t.lower() for t in tags} | {p for t in tags for p in _tokens(t)},
                "description": _tokens(description),
                "name": _tokens(name),
                "username": _tokens(user["username"]) | {user["username"].lower()},
                "pack": _tokens(s["pack_name"] or ""),
                "id": {str(sid)},
            }
            s["tags_lower"] = {t.lower() for t in tags}
            self.sounds.append(s)
            self.by_id[sid] = s

        # A few sounds exist only in the similarity index (deleted on the site).
        deleted_idx = set(rng.sample(range(total), n_deleted))
        self.initially_deleted = {self.sounds[i]["id"] for i in deleted_idx}
        for s in self.sounds:
            if s["id"] not in self.initially_deleted:
                self.user_by_name[s["username"]]["sounds"].append(s["id"])
                if s["pack_id"]:
                    self.packs[s["pack_id"]]["sounds"].append(s["id"])

        # Similarity: 8-d vectors per space, clustered by theme; 150 nearest by cosine.
        self.vectors: dict[str, np.ndarray] = {}
        self.neighbours: dict[str, np.ndarray] = {}
        self.neighbour_sims: dict[str, np.ndarray] = {}
        theme_arr = np.array(themes_of)
        for k, space in enumerate(SIMILARITY_SPACES):
            srng = np.random.default_rng([seed, 1000 + k])
            centres = srng.normal(size=(len(THEMES), VECTOR_DIM))
            vec = centres[theme_arr] + srng.normal(scale=0.55 + 0.2 * k, size=(total, VECTOR_DIM))
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            vec = vec.astype(np.float32)
            self.vectors[space] = vec
            self.neighbours[space], self.neighbour_sims[space] = _knn(vec, SIMILAR_COUNT)

    def similar(self, sound_id: int, space: str) -> list[tuple[dict, float]]:
        idx = self.by_id[sound_id]["idx"]
        nb = self.neighbours[space][idx]
        sims = self.neighbour_sims[space][idx]
        return [(self.sounds[j], float(v)) for j, v in zip(nb.tolist(), sims.tolist(), strict=True)]

    def nearest_to_vector(self, vector: np.ndarray, space: str) -> list[tuple[dict, float]]:
        v = vector.astype(np.float32)
        v /= max(float(np.linalg.norm(v)), 1e-12)
        sims = self.vectors[space] @ v
        k = min(SIMILAR_COUNT, len(sims))
        order = np.lexsort((np.arange(len(sims)), -sims))[:k]
        return [(self.sounds[j], float(sims[j])) for j in order.tolist()]


def _knn(vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(vec)
    k = min(k, n - 1)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_sim = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, 1024):
        hi = min(n, lo + 1024)
        sims = vec[lo:hi] @ vec.T
        sims[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        psims = np.take_along_axis(sims, part, axis=1)
        # rank by similarity, ties by corpus index, so the order is deterministic
        order = np.lexsort((part, -psims), axis=1)
        out_idx[lo:hi] = np.take_along_axis(part, order, axis=1)
        out_sim[lo:hi] = np.take_along_axis(psims, order, axis=1)
    return out_idx, out_sim


# ----------------------------------------------------------------------------------------------
# Filter (a useful subset of the Solr syntax Freesound accepts)
# ----------------------------------------------------------------------------------------------

FILTER_KINDS = {
    "id": "num", "duration": "num", "bitdepth": "num", "bitrate": "num", "samplerate": "num",
    "filesize": "num", "channels": "num", "num_downloads": "num", "avg_rating": "num",
    "num_ratings": "num", "num_comments": "num", "comments": "num",
    "created": "date",
    "username": "exact", "md5": "exact", "type": "exact", "pack": "exact",
    "grouping_pack": "exact", "category": "exact", "subcategory": "exact",
    "category_code": "exact",
    "license": "license", "tag": "tag",
    "original_filename": "text", "description": "text", "pack_tokenized": "text",
    "is_geotagged": "bool", "is_explicit": "bool", "is_remix": "bool", "was_remixed": "bool",
}


def _field_value(s: dict, field: str) -> Any:
    if field == "tag":
        return s["tags_lower"]
    if field == "license":
        return s["license_name"]
    if field == "comments":
        return s["num_comments"]
    if field == "pack":
        return s["pack_name"]
    if field == "grouping_pack":
        return f"{s['pack_id']}_{s['pack_name']}" if s["pack_id"] else None
    if field == "is_geotagged":
        return s["geotag"] is not None
    if field in ("is_remix", "was_remixed"):
        return False
    if field == "original_filename":
        return s["tok"]["name"]
    if field == "description":
        return s["tok"]["description"]
    if field == "pack_tokenized":
        return s["tok"]["pack"]
    return s[field]


_DATE_MATH = re.compile(r"([+-])(\d+)(YEAR|MONTH|DAY|HOUR|MINUTE|SECOND)S?")


def _parse_date(text: str) -> datetime:
    t = text.strip()
    if t.startswith("NOW"):
        base = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
        rest = t[3:].split("/")[0]
        pos = 0
        for m in _DATE_MATH.finditer(rest):
            if m.start() != pos:
                raise FilterError(f"bad date math {text!r}")
            pos = m.end()
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            unit = m.group(3)
            days = {"YEAR": 365 * n, "MONTH": 30 * n, "DAY": n}.get(unit, 0)
            secs = {"HOUR": 3600 * n, "MINUTE": 60 * n, "SECOND": n}.get(unit, 0)
            base += timedelta(days=days, seconds=secs)
        if pos != len(rest):
            raise FilterError(f"bad date math {text!r}")
        return base
    t = t.split("/")[0]
    if t.endswith("Z"):
        t = t[:-1]
    try:
        return datetime.fromisoformat(t).replace(tzinfo=None)
    except ValueError as exc:
        raise FilterError(f"bad date {text!r}") from exc


def _license_key(name: str) -> str:
    return " ".join(name.lower().split())


class _FilterParser:
    """field:value clauses; whitespace/AND = and, OR, NOT/-/!, parentheses, ranges, groups."""

    _FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.ids: list[int] = []

    def parse(self) -> Callable[[dict], bool]:
        node = self._expr(self._unary)
        self._ws()
        if self.i < len(self.s):
            raise FilterError(f"unexpected {self.s[self.i:]!r}")
        return node

    # -- lexing helpers
    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def _kw(self, *words: str) -> bool:
        self._ws()
        for w in words:
            if self.s.startswith(w, self.i):
                end = self.i + len(w)
                if w in ("&&", "||") or end == len(self.s) or self.s[end] in " \t\n()":
                    self.i = end
                    return True
        return False

    def _at_end_of_group(self) -> bool:
        self._ws()
        return self.i >= len(self.s) or self.s[self.i] == ")"

    # -- grammar; `unit` is the operand parser (a clause, or a value inside field:(...))
    def _expr(self, unit, default_or: bool = False) -> Callable[[dict], bool]:
        alts = [self._and(unit, default_or)]
        while not self._at_end_of_group():
            if self._kw("OR", "||") or default_or:
                alts.append(self._and(unit, default_or))
            else:
                break
        if len(alts) == 1:
            return alts[0]
        return lambda s: any(p(s) for p in alts)

    def _and(self, unit, default_or: bool) -> Callable[[dict], bool]:
        parts = [unit()]
        while not self._at_end_of_group():
            save = self.i
            if self._kw("OR", "||"):
                self.i = save
                break
            if self._kw("AND", "&&"):
                parts.append(unit())
                continue
            if default_or:
                break
            parts.append(unit())
        if len(parts) == 1:
            return parts[0]
        return lambda s: all(p(s) for p in parts)

    def _negatable(self, inner) -> Callable[[dict], bool]:
        self._ws()
        negate = self._kw("NOT")
        if not negate and self.i < len(self.s) and self.s[self.i] in "-!":
            self.i += 1
            negate = True
        if negate:
            p = self._negatable(inner)
            return lambda s: not p(s)
        if self.i < len(self.s) and self.s[self.i] == "+":
            self.i += 1
        return inner()

    def _unary(self) -> Callable[[dict], bool]:
        return self._negatable(self._clause)

    def _clause(self) -> Callable[[dict], bool]:
        self._ws()
        if self.i >= len(self.s):
            raise FilterError("filter ends early")
        if self.s[self.i] == "(":
            self.i += 1
            p = self._expr(self._unary)
            self._expect(")")
            return p
        if self.s[self.i] == "{":
            raise FilterError("local parameters such as {!geofilt} are not supported")
        m = self._FIELD.match(self.s, self.i)
        if not m:
            raise FilterError(f"expected field:value at {self.s[self.i:]!r}")
        field = m.group(1)
        if field not in FILTER_KINDS:
            raise FilterError(f"undefined field {field}")
        self.i = m.end()
        return self._value(field)

    def _expect(self, ch: str) -> None:
        self._ws()
        if self.i >= len(self.s) or self.s[self.i] != ch:
            raise FilterError(f"expected {ch!r}")
        self.i += 1

    def _value(self, field: str) -> Callable[[dict], bool]:
        if self.i >= len(self.s):
            raise FilterError(f"no value for {field}")
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            p = self._expr(lambda: self._negatable(lambda: self._group_value(field)),
                           default_or=True)
            self._expect(")")
            return p
        if c in "[{":
            return self._range(field)
        return self._term(field, self._word())

    def _group_value(self, field: str) -> Callable[[dict], bool]:
        self._ws()
        return self._value(field)

    def _word(self) -> tuple[str, bool]:
        if self.s[self.i] == '"':
            j = self.i + 1
            buf = []
            while j < len(self.s) and self.s[j] != '"':
                if self.s[j] == "\\" and j + 1 < len(self.s):
                    j += 1
                buf.append(self.s[j])
                j += 1
            if j >= len(self.s):
                raise FilterError("unterminated quote")
            self.i = j + 1
            return "".join(buf), True
        j = self.i
        buf = []
        while j < len(self.s) and not self.s[j].isspace() and self.s[j] not in "()":
            if self.s[j] == "\\" and j + 1 < len(self.s):
                j += 1
            buf.append(self.s[j])
            j += 1
        if not buf:
            raise FilterError(f"empty value at {self.s[self.i:]!r}")
        self.i = j
        return "".join(buf), False

    def _range(self, field: str) -> Callable[[dict], bool]:
        lo_incl = self.s[self.i] == "["
        close = self.s.find("]", self.i)
        close2 = self.s.find("}", self.i)
        ends = [e for e in (close, close2) if e != -1]
        if not ends:
            raise FilterError("unterminated range")
        end = min(ends)
        hi_incl = self.s[end] == "]"
        body = self.s[self.i + 1:end]
        self.i = end + 1
        parts = re.split(r"\s+TO\s+", body.strip())
        if len(parts) != 2:
            raise FilterError("a range needs 'a TO b' (TO in upper case)")
        kind = FILTER_KINDS[field]
        if kind not in ("num", "date", "exact"):
            raise FilterError(f"{field} does not take a range")
        conv: Callable[[str], Any]
        if kind == "num":
            conv = float
        elif kind == "date":
            conv = _parse_date
        else:
            conv = str
        try:
            lo = None if parts[0].strip() in ("*", "") else conv(parts[0].strip().strip('"'))
            hi = None if parts[1].strip() in ("*", "") else conv(parts[1].strip().strip('"'))
        except ValueError as exc:
            raise FilterError(f"bad range for {field}: {body!r}") from exc

        def pred(s: dict) -> bool:
            v = _field_value(s, field)
            if v is None:
                return False
            if lo is not None and (v < lo if lo_incl else v <= lo):
                return False
            if hi is not None and (v > hi if hi_incl else v >= hi):
                return False
            return True

        return pred

    def _term(self, field: str, word: tuple[str, bool]) -> Callable[[dict], bool]:
        value, quoted = word
        kind = FILTER_KINDS[field]
        if value == "*" and not quoted:
            return lambda s: _field_value(s, field) not in (None, False, set())
        if kind == "num":
            try:
                num = float(value)
            except ValueError as exc:
                raise FilterError(f"{field} needs a number, got {value!r}") from exc
            if field == "id" and num.is_integer():
                self.ids.append(int(num))
            return lambda s: _field_value(s, field) == num
        if kind == "date":
            d = _parse_date(value)
            return lambda s: s["created"] == d
        if kind == "exact":
            if value.endswith("*") and not quoted:
                prefix = value[:-1]
                return lambda s: str(_field_value(s, field) or "").startswith(prefix)
            return lambda s: _field_value(s, field) == value
        if kind == "license":
            key = _license_key(value)
            return lambda s: _license_key(s["license_name"]) == key
        if kind == "tag":
            low = value.lower()
            return lambda s: low in s["tags_lower"]
        if kind == "text":
            toks = _tokens(value)
            return lambda s: bool(toks) and toks <= _field_value(s, field)
        if kind == "bool":
            want = value.lower() in ("1", "true", "t", "yes")
            return lambda s: bool(_field_value(s, field)) == want
        raise FilterError(f"cannot filter on {field}")  # pragma: no cover


def compile_filter(text: str) -> tuple[Callable[[dict], bool], list[int]]:
    """Compile a filter; returns the predicate and the ids named in ``id:`` clauses."""
    p = _FilterParser(text)
    return p.parse(), p.ids


_ID_IN_FILTER = re.compile(r"\bid:\s*(?:\(([^)]*)\)|\"?(\d+)\"?)")


def ids_in_filter(text: str) -> list[int]:
    """The ids a filter names, even when it does not parse."""
    try:
        return compile_filter(text)[1]
    except FilterError:
        out = []
        for m in _ID_IN_FILTER.finditer(text):
            out += [int(x) for x in re.findall(r"\d+", m.group(1) or m.group(2) or "")]
        return out


# ----------------------------------------------------------------------------------------------
# Text query
# ----------------------------------------------------------------------------------------------

QUERY_WEIGHTS = (("id", 4.0), ("tag", 4.0), ("description", 3.0), ("name", 2.0),
                 ("username", 2.0), ("pack", 2.0))


def compile_query(query: str) -> Callable[[dict], float | None] | None:
    """None for the empty query (everything); else a scorer returning None for no match."""
    q = query.strip()
    if not q.replace('"', "").replace("'", "").strip():
        return None
    required: list[set[str]] = []
    prohibited: list[set[str]] = []
    for m in re.finditer(r'([+-]?)"([^"]*)"|([+-]?)(\S+)', q):
        sign = m.group(1) or m.group(3) or ""
        toks = _tokens(m.group(2) if m.group(2) is not None else m.group(4))
        if not toks:
            continue
        (prohibited if sign == "-" else required).append(toks)

    def score(s: dict) -> float | None:
        tok = s["tok"]
        total = 0.0
        for term in required:
            best = 0.0
            for field, w in QUERY_WEIGHTS:
                if term <= tok[field]:
                    best += w
            if not best:
                return None
            total += best
        for term in prohibited:
            if any(term <= tok[f] for f, _ in QUERY_WEIGHTS):
                return None
        return total

    return score


# ----------------------------------------------------------------------------------------------
# Small helpers: Ogg serial normalisation (determinism), a tiny PNG
# ----------------------------------------------------------------------------------------------


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_with_serial(data: bytes, serial: int) -> bytes:
    """libvorbis picks a random stream serial; pin it (and fix each page CRC)."""
    out = bytearray(data)
    pos = 0
    while pos + 27 <= len(out) and out[pos:pos + 4] == b"OggS":
        nseg = out[pos + 26]
        end = pos + 27 + nseg + sum(out[pos + 27:pos + 27 + nseg])
        struct.pack_into("<I", out, pos + 14, serial)
        struct.pack_into("<I", out, pos + 22, 0)
        crc = 0
        for byte in out[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) ^ byte) & 0xFF]
        struct.pack_into("<I", out, pos + 22, crc)
        pos = end
    return bytes(out)


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _my_quote(s: str) -> str:
    # Freesound's construct_link quoting (apiv2/forms.py my_quote)
    return quote(s, safe=",:[]*+()'")


NGINX_ERROR = ("<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>"
               "{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
               "</html>\r\n")
DJANGO_404 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n"
              "<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this "
              "server.</p>\n</body>\n</html>\n")


class _Response:
    __slots__ = ("status", "body", "ctype", "headers", "endpoint")

    def __init__(self, status: int, body: bytes, ctype: str = "application/json",
                 headers: tuple = (), endpoint: str = "") -> None:
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = headers
        self.endpoint = endpoint


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "nginx"
    sys_version = ""
    timeout = 120

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._track(self.connection, add=False)

    def do_GET(self) -> None:  # noqa: N802
        self.server.standin._handle(self, "GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.standin._handle(self, "HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self.server.standin._handle(self, "POST")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self.server.standin._handle(self, "OPTIONS")

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: FreesoundStandin


class _Window:
    """Sliding-window request history (DRF SimpleRateThrottle semantics)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hist: deque[float] = deque()

    def count(self, now: float) -> int:
        while self.hist and self.hist[0] <= now - self.seconds:
            self.hist.popleft()
        return len(self.hist)


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class FreesoundStandin:
    """Freesound APIv2 on 127.0.0.1 over a generated corpus. See the module docstring.

    Args:
        n_sounds: live sounds in the corpus (ids random and unique in 1..10^6).
        seed: everything (corpus, vectors, previews) is deterministic from it.
        api_key: the valid key (a string, or an iterable of valid keys; limits are per key).
        per_minute / per_day: request limits per key; None = unlimited.
        n_deleted: extra sounds that exist only in similarity lists (404 as instances).
        clock: monotonic seconds for the rate windows (default time.monotonic); ``advance()``
            adds an offset on top of it.
        preview_seconds: length cap of the generated preview audio.
    """

    def __init__(self, n_sounds: int = 3000, seed: int = 0, api_key: Any = "test-key",
                 per_minute: int | None = None, per_day: int | None = None, *,
                 n_deleted: int = 20, clock: Callable[[], float] | None = None,
                 preview_seconds: float = 2.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.seed = seed
        self.keys = {api_key} if isinstance(api_key, str) else set(api_key)
        self.api_key = api_key if isinstance(api_key, str) else sorted(self.keys)[0]
        self.per_minute = per_minute
        self.per_day = per_day
        self.preview_seconds = preview_seconds
        self.preview_delay = 0.0  # seconds each preview/image answer waits (a slow CDN)
        self._clock = clock or time.monotonic
        self._offset = 0.0
        self._host = host
        self._port = port
        self.corpus = Corpus(n_sounds, seed, n_deleted)
        self._lock = threading.RLock()
        self._deleted: set[int] = set(self.corpus.initially_deleted)
        self._windows: dict[str, tuple[_Window, _Window]] = {}
        self._faults: deque[tuple[str, Any]] = deque()
        self._malformed: deque[str] = deque()
        self._preview_cache: collections.OrderedDict = collections.OrderedDict()
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset_stats()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FreesoundStandin:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), _Handler)
        self._server.standin = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="freesound-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FreesoundStandin:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:PORT/apiv2`` (the client's ``--api-url``)."""
        return self.origin + API_PREFIX

    # -- corpus truth for assertions -------------------------------------------------------

    def sound_ids(self) -> list[int]:
        """Live sound ids (instances answer 200), ascending."""
        with self._lock:
            return [s["id"] for s in self.corpus.sounds if s["id"] not in self._deleted]

    def deleted_ids(self) -> set[int]:
        with self._lock:
            return set(self._deleted)

    def similar_ids(self, sound_id: int, space: str = DEFAULT_SIMILARITY_SPACE) -> list[int]:
        """The similar list of a sound, in rank order (deleted sounds included)."""
        return [s["id"] for s, _ in self.corpus.similar(sound_id, space)]

    def sound(self, sound_id: int, fields: str | None = None) -> dict:
        """A sound as the instance endpoint renders it (``fields`` as the API parameter)."""
        names = _parse_fields(fields, DETAIL_DEFAULT_FIELDS)
        return self._render(self.corpus.by_id[sound_id], names)

    def preview_bytes(self, sound_id: int, kind: str = "hq-mp3") -> bytes:
        quality, ext = kind.split("-")
        return self._preview(self.corpus.by_id[sound_id], quality, ext)

    # -- control -----------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the rate-limit clock forward (e.g. ``advance(60)`` opens a new minute)."""
        with self._lock:
            self._offset += float(seconds)

    def set_limits(self, per_minute: int | None = None, per_day: int | None = None) -> None:
        with self._lock:
            self.per_minute, self.per_day = per_minute, per_day

    def reset_minute_window(self) -> None:
        """Forget the last minute's requests for every key (as if a minute had passed)."""
        with self._lock:
            for minute, _ in self._windows.values():
                minute.hist.clear()

    def reset_day_window(self) -> None:
        with self._lock:
            for minute, day in self._windows.values():
                minute.hist.clear()
                day.hist.clear()

    def exhaust_minute(self, key: str | None = None) -> None:
        self._exhaust(0, self.per_minute, key)

    def exhaust_day(self, key: str | None = None) -> None:
        """Use up the daily budget of ``key`` (default: every valid key)."""
        self._exhaust(1, self.per_day, key)

    def _exhaust(self, which: int, limit: int | None, key: str | None) -> None:
        if limit is None:
            raise ValueError("no such limit is set on this stand-in (per_minute/per_day=None)")
        with self._lock:
            now = self.now()
            for k in ([key] if key else sorted(self.keys)):
                w = self._window(k)[which]
                w.count(now)
                while len(w.hist) < limit:
                    w.hist.append(now)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` API requests answer ``status`` (500: JSON body; other 5xx: nginx HTML).

        Injected failures happen before authentication and do not count against the limits.
        """
        with self._lock:
            self._faults.extend([("status", int(status))] * n)

    def disconnect_next(self, n: int = 1) -> None:
        """The next ``n`` API requests get the connection closed without any answer."""
        with self._lock:
            self._faults.extend([("disconnect", None)] * n)

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """The next ``n`` API requests are answered after ``seconds`` (client timeout tests)."""
        with self._lock:
            self._faults.extend([("delay", float(seconds))] * n)

    def malformed_next(self, n: int = 1, kind: str = "json") -> None:
        """The next ``n`` successful API answers are malformed.

        kind: ``"json"`` (a 200 whose body is cut JSON), ``"missing_id"`` (one results item,
        or the instance, lacks ``id``), ``"null_item"`` (one results item is ``null``, as the
        real API does when its index and database disagree).
        """
        if kind not in ("json", "missing_id", "null_item"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        with self._lock:
            self._malformed.extend([kind] * n)

    def delete_sound(self, sound_id: int) -> None:
        """Delete a sound now: 404 as an instance, gone from text search, still in similar lists."""
        if sound_id not in self.corpus.by_id:
            raise KeyError(sound_id)
        with self._lock:
            self._deleted.add(sound_id)

    def reset_deleted(self) -> None:
        """Only the corpus's own deleted sounds again (undo `delete_sound`)."""
        with self._lock:
            self._deleted = set(self.corpus.initially_deleted)

    # -- accounting --------------------------------------------------------------------------

    def reset_stats(self) -> None:
        with self._lock:
            self._stats: Counter = Counter()
            self._by_endpoint: Counter = Counter()
            self._by_status: Counter = Counter()
            self._requested: Counter = Counter()
            self._returned: Counter = Counter()
            self._log: list[dict] = []

    @property
    def stats(self) -> dict:
        """Snapshot: total, api, by_endpoint, by_status, token_in_url, unauthorized, throttled,
        throttled_minute, throttled_day, injected_faults, redirects, previews."""
        with self._lock:
            out = {k: self._stats.get(k, 0) for k in (
                "total", "api", "token_in_url", "unauthorized", "throttled", "throttled_minute",
                "throttled_day", "injected_faults", "malformed", "redirects", "previews")}
            out["by_endpoint"] = dict(self._by_endpoint)
            out["by_status"] = {str(k): v for k, v in self._by_status.items()}
            return out

    def requested_sound_ids(self) -> set[int]:
        """Every sound id asked about specifically: /sounds/<id>/, /sounds/<id>/similar/,
        similar_to=<id>, ids named in an ``id:`` filter (whatever the answer was)."""
        with self._lock:
            return set(self._requested)

    def requested_sound_id_counts(self) -> Counter:
        with self._lock:
            return Counter(self._requested)

    def returned_sound_ids(self) -> set[int]:
        """Every sound id that appeared in a 200 answer (lists and instances)."""
        with self._lock:
            return set(self._returned)

    def request_log(self) -> list[dict]:
        """One dict per request: method, url (absolute, as sent), path, params, headers,
        endpoint, status, t (stand-in clock)."""
        with self._lock:
            return [dict(r) for r in self._log]

    def urls_containing(self, text: str) -> list[str]:
        with self._lock:
            return [r["url"] for r in self._log if text in r["url"]]

    def stats_document(self, include_log: bool = False) -> dict:
        doc = self.stats
        with self._lock:
            doc["requested_sound_ids"] = sorted(self._requested)
            doc["requested_sound_id_counts"] = {str(k): v for k, v in self._requested.items()}
            doc["returned_sound_ids"] = sorted(self._returned)
            doc["deleted_ids"] = sorted(self._deleted)
            if include_log:
                doc["log"] = [dict(r) for r in self._log]
        return doc

    # -- request handling --------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _window(self, key: str) -> tuple[_Window, _Window]:
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = (_Window(60.0), _Window(86400.0))
        return w

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body_in = h.rfile.read(length) if length > 0 else b""
        split = urlsplit(h.path)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        url = self.origin + h.path
        record = {"method": method, "url": url, "path": path, "params": params,
                  "headers": dict(h.headers.items()), "endpoint": "", "status": 0,
                  "t": self.now()}
        internal = path.startswith("/__")
        delay = 0.0
        try:
            if internal:
                resp = self._internal(path, method, body_in)
            elif path.startswith("/previews/") or path.startswith("/displays/"):
                with self._lock:
                    self._stats["total"] += 1
                    self._log.append(record)
                resp = self._media(path, h.headers.get("Range"), method)
                delay = self.preview_delay
            else:
                with self._lock:
                    self._stats["total"] += 1
                    self._log.append(record)
                resp, delay = self._api(path, method, params, h.headers, record)
        except _Disconnect:
            record["status"] = -1
            record["endpoint"] = record["endpoint"] or "fault"
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if not internal:
            with self._lock:
                record["status"] = resp.status
                record["endpoint"] = record["endpoint"] or resp.endpoint
                self._by_endpoint[record["endpoint"]] += 1
                self._by_status[resp.status] += 1
        if delay:
            time.sleep(delay)
        try:
            h.send_response(resp.status)
            h.send_header("Content-Type", resp.ctype)
            h.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                h.send_header(k, v)
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    # internal endpoints (no auth, not counted)
    def _internal(self, path: str, method: str, body: bytes) -> _Response:
        if path == "/__stats":
            return _Response(200, _json_bytes(self.stats_document()))
        if path == "/__log":
            return _Response(200, _json_bytes(self.request_log()))
        if path == "/__control" and method == "POST":
            try:
                doc = json.loads(body or b"{}")
                action = doc.pop("action")
                if action not in CONTROL_ACTIONS:
                    raise ValueError(f"unknown action {action!r}")
                getattr(self, action)(**doc)
            except (ValueError, TypeError, KeyError) as exc:
                return _Response(400, _json_bytes({"detail": str(exc)}))
            return _Response(200, _json_bytes({"ok": True}))
        return _Response(404, DJANGO_404.encode(), "text/html")

    def _api(self, path: str, method: str, params: dict, headers: Any,
             record: dict) -> tuple[_Response, float]:
        with self._lock:
            self._stats["api"] += 1
            if "token" in params:
                self._stats["token_in_url"] += 1
        route, args = _route(path)
        record["endpoint"] = {"search_text": "search"}.get(route or "unknown", route or "unknown")
        self._note_requested_ids(route, args, params)

        # Django CommonMiddleware: APPEND_SLASH
        if route is None and not path.endswith("/") and _route(path + "/")[0] is not None:
            with self._lock:
                self._stats["redirects"] += 1
            query = urlsplit(record["url"]).query
            loc = path + "/" + ("?" + query if query else "")
            return _Response(301, b"", "text/html; charset=utf-8", (("Location", loc),),
                             "redirect"), 0.0

        delay = 0.0
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            with self._lock:
                self._stats["injected_faults"] += 1
            kind, arg = fault
            if kind == "disconnect":
                raise _Disconnect()
            if kind == "delay":
                delay = arg
            else:
                return _error_response(arg), 0.0

        if route is None:
            return _Response(404, DJANGO_404.encode(), "text/html"), delay

        # authentication (header first, then ?token=), as apiv2/authentication.py
        auth = (headers.get("Authorization") or "").split()
        if not auth and params.get("token"):
            auth = ["Token", params["token"]]
        key = None
        if auth and auth[0].lower() == "token":
            if len(auth) != 2 or auth[1] not in self.keys:
                msg = INVALID_TOKEN if len(auth) == 2 else (
                    "Invalid token header. No credentials provided." if len(auth) == 1 else
                    "Invalid token header. Token string should not contain spaces.")
                with self._lock:
                    self._stats["unauthorized"] += 1
                return _detail(401, msg, (("WWW-Authenticate", "Token"),)), delay
            key = auth[1]
        if key is None:
            with self._lock:
                self._stats["unauthorized"] += 1
            return _detail(401, NO_CREDENTIALS, (("WWW-Authenticate", "Token"),)), delay

        if method not in ("GET", "HEAD", "OPTIONS"):
            return _detail(405, f'Method "{method}" not allowed.'), delay

        # throttling: burst (minute) then sustained (day), as apiv2/throttling.py
        with self._lock:
            now = self.now()
            minute, day = self._window(key)
            if self.per_minute is not None:
                if minute.count(now) >= self.per_minute:
                    self._stats["throttled"] += 1
                    self._stats["throttled_minute"] += 1
                    return _detail(429, THROTTLE_MSG.format(rate=f"{self.per_minute}/minute")), \
                        delay
                minute.hist.append(now)
            if self.per_day is not None:
                if day.count(now) >= self.per_day:
                    self._stats["throttled"] += 1
                    self._stats["throttled_day"] += 1
                    return _detail(429, THROTTLE_MSG.format(rate=f"{self.per_day}/day")), delay
                day.hist.append(now)

        try:
            doc = getattr(self, "_ep_" + route)(params, *args)
        except ApiError as exc:
            return _detail(exc.status, exc.detail, exc.headers), delay
        except FilterError as exc:
            return _detail(400, f"Invalid filter: {exc}"), delay

        # accounting of returned ids, then maybe a malformed answer
        with self._lock:
            if isinstance(doc.get("results"), list):
                items = doc["results"]
            else:
                items = [doc] if route == "sound" else []
            for it in items:
                if isinstance(it, dict) and isinstance(it.get("id"), int):
                    self._returned[it["id"]] += 1
            kind = self._malformed.popleft() if self._malformed else None
            if kind:
                self._stats["malformed"] += 1
        body = _json_bytes(doc)
        if kind == "json":
            body = body[: max(1, len(body) // 2)]
        elif kind in ("missing_id", "null_item"):
            target = doc.get("results") if isinstance(doc.get("results"), list) else None
            if target:
                if kind == "null_item":
                    target[len(target) // 2] = None
                else:
                    target[len(target) // 2].pop("id", None)
            else:
                doc.pop("id", None)
            body = _json_bytes(doc)
        return _Response(200, body, "application/json",
                         (("Allow", "GET, HEAD, OPTIONS"), ("Vary", "Accept, Authorization"))), \
            delay

    def _note_requested_ids(self, route: str | None, args: tuple, params: dict) -> None:
        ids: list[int] = []
        if route in ("sound", "similar", "download"):
            ids.append(int(args[0]))
        if route in ("search", "search_text"):
            sim = params.get("similar_to", "").strip()
            if sim.isdigit():
                ids.append(int(sim))
            if params.get("filter"):
                ids += ids_in_filter(params["filter"])
        if ids:
            with self._lock:
                self._requested.update(ids)

    # -- endpoints ---------------------------------------------------------------------------

    def _ep_search(self, params: dict) -> dict:
        return self._search(params, "/apiv2/search/")

    def _ep_search_text(self, params: dict) -> dict:
        return self._search(params, "/apiv2/search/text/")

    def _search(self, params: dict, path: str) -> dict:
        page, page_size = _paging(params)
        query = params.get("query", "")
        filt = params.get("filter")
        if "filter" in params and not (filt or "").strip():
            raise ApiError(400, "Invalid filter.")
        sort = params.get("sort", "")
        sort_key = sort if sort in SORTS else "score"
        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        pred = compile_filter(filt)[0] if filt else None
        scorer = compile_query(query)
        similar_to = params.get("similar_to", "").strip()
        space = self._space(params, bool(similar_to))

        with self._lock:
            deleted = set(self._deleted)
        cands: list[tuple[dict, float | None]]
        if similar_to:
            cands = self._similar_candidates(similar_to, space, deleted)
            if scorer is not None:
                cands = [(s, sc) for s, sc in cands if scorer(s) is not None]
        else:
            if scorer is None:
                cands = [(s, None) for s in self.corpus.sounds if s["id"] not in deleted]
            else:
                cands = []
                for s in self.corpus.sounds:
                    if s["id"] in deleted:
                        continue
                    sc = scorer(s)
                    if sc is not None:
                        cands.append((s, sc))
        if pred is not None:
            cands = [c for c in cands if pred(c[0])]
        if not similar_to:
            if SORTS[sort_key] is None:
                if scorer is not None:
                    cands.sort(key=lambda c: (-c[1], c[0]["idx"]))
            else:
                attr, desc = SORTS[sort_key]
                second = "num_ratings" if attr == "avg_rating" else None
                cands.sort(key=lambda c: (c[0][attr], c[0][second] if second else 0,
                                          -c[0]["idx"] if desc else c[0]["idx"]),
                           reverse=desc)
        extras: dict[int, dict] = {}
        group = params.get("group_by_pack") == "1"
        link_params = [("query", query)]
        if filt:
            link_params.append(("filter", filt))
        if params.get("weights") is not None:
            link_params.append(("weights", params["weights"]))
        if sort_key != "score":
            link_params.append(("sort", sort_key))
        if similar_to:
            link_params.append(("similar_to", similar_to))
            if "similarity_space" in params:
                link_params.append(("similarity_space", space))
        tail = []
        if params.get("fields"):
            tail.append(("fields", params["fields"]))
        if group:
            tail.append(("group_by_pack", "1"))
            cands, extras = self._group_by_pack(cands, link_params, page_size, params)
        return self._page(cands, page, page_size, fields, link_params, tail, path, extras,
                          with_score=scorer is not None or bool(similar_to))

    def _ep_sound(self, params: dict, sid: str) -> dict:
        s = self.corpus.by_id.get(int(sid))
        with self._lock:
            gone = s is None or s["id"] in self._deleted
        if gone:
            raise ApiError(404, NOT_FOUND_SOUND)
        return self._render(s, _parse_fields(params.get("fields"), DETAIL_DEFAULT_FIELDS))

    def _ep_similar(self, params: dict, sid: str) -> dict:
        page, page_size = _paging(params)
        s = self.corpus.by_id.get(int(sid))
        with self._lock:
            gone = s is None or s["id"] in self._deleted
        if gone:
            raise ApiError(404, NOT_FOUND_PAGE)
        space = self._space(params, True)
        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        cands = self.corpus.similar(s["id"], space)
        link_params = []
        if "similarity_space" in params:
            link_params.append(("similarity_space", space))
        tail = [("fields", params["fields"])] if params.get("fields") else []
        return self._page(cands, page, page_size, fields, link_params, tail,
                          f"/apiv2/sounds/{s['id']}/similar/", {}, with_score=True)

    def _ep_download(self, params: dict, sid: str) -> dict:
        raise ApiError(401, OAUTH_REQUIRED)

    def _ep_user(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_SOUND)
        base, origin = self.base_url, self.origin
        qname = quote(name, safe="")
        av = f"{origin}/avatars/{u['id'] // 1000}/{u['id']}_"
        with self._lock:
            n_sounds = sum(1 for i in u["sounds"] if i not in self._deleted)
        return {
            "url": f"{origin}/people/{qname}/", "username": name, "about": u["about"],
            "home_page": u["home_page"],
            "avatar": {"small": av + "S.jpg", "medium": av + "M.jpg", "large": av + "L.jpg"},
            "date_joined": u["date_joined"].isoformat(), "num_sounds": n_sounds,
            "sounds": f"{base}/users/{qname}/sounds/", "num_packs": len(u["packs"]),
            "packs": f"{base}/users/{qname}/packs/", "num_posts": u["num_posts"],
            "num_comments": u["num_comments"],
        }

    def _ep_user_sounds(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, u["sounds"], f"/apiv2/users/{quote(name, safe='')}/sounds/")

    def _ep_user_packs(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, u["packs"], f"/apiv2/users/{quote(name, safe='')}/packs/",
                              packs=True)

    def _ep_pack(self, params: dict, pid: str) -> dict:
        p = self.corpus.packs.get(int(pid))
        if p is None:
            raise ApiError(404, NOT_FOUND_SOUND)
        with self._lock:
            n_sounds = sum(1 for i in p["sounds"] if i not in self._deleted)
        return {
            "id": p["id"],
            "url": f"{self.origin}/people/{quote(p['username'], safe='')}/packs/{p['id']}/",
            "description": p["description"], "created": p["created"].isoformat(),
            "name": p["name"], "username": p["username"], "num_sounds": n_sounds,
            "sounds": f"{self.base_url}/packs/{p['id']}/sounds/",
            "num_downloads": p["num_downloads"],
        }

    def _ep_pack_sounds(self, params: dict, pid: str) -> dict:
        p = self.corpus.packs.get(int(pid))
        if p is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, p["sounds"], f"/apiv2/packs/{p['id']}/sounds/")

    # -- endpoint helpers ------------------------------------------------------------------

    def _space(self, params: dict, needed: bool) -> str:
        space = params.get("similarity_space") or DEFAULT_SIMILARITY_SPACE
        if needed and space not in SIMILARITY_SPACES:
            raise ApiError(400, f"Invalid similarity space '{space}'. Available spaces are: "
                                + ", ".join(SIMILARITY_SPACES) + ".")
        return space

    def _similar_candidates(self, target: str, space: str,
                            deleted: set[int]) -> list[tuple[dict, float | None]]:
        if target.isdigit():
            sid = int(target)
            if sid not in self.corpus.by_id or sid in deleted:
                raise ApiError(404, NOT_FOUND_PAGE)
            return list(self.corpus.similar(sid, space))
        try:
            vec = np.array(json.loads(target if target.startswith("[") else f"[{target}]"),
                           dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "Invalid similar_to parameter.") from exc
        if vec.shape != (VECTOR_DIM,):
            raise ApiError(400, f"Invalid similar_to vector: the {space} space of this stand-in "
                                f"has {VECTOR_DIM} dimensions.")
        return self.corpus.nearest_to_vector(vec, space)

    def _group_by_pack(self, cands, link_params, page_size, params):
        kept, extras, first_of = [], {}, {}
        counts: Counter = Counter(c[0]["pack_id"] for c in cands if c[0]["pack_id"])
        for c in cands:
            pid = c[0]["pack_id"]
            if pid is None:
                kept.append(c)
            elif pid not in first_of:
                first_of[pid] = c[0]["id"]
                kept.append(c)
                if counts[pid] > 1:
                    gp = f'grouping_pack:"{pid}_{c[0]["pack_name"]}"'
                    qs = "".join(f"&{k}={_my_quote(v)}" for k, v in
                                 [(k, v) for k, v in link_params if k != "filter"]
                                 + [("filter", gp), ("page", "1")])
                    if page_size != DEFAULT_PAGE_SIZE:
                        qs += f"&page_size={page_size}"
                    if params.get("fields"):
                        qs += f"&fields={_my_quote(params['fields'])}"
                    qs += "&group_by_pack=0"
                    extras[c[0]["id"]] = {
                        "more_from_same_pack": f"{self.base_url}/search/?{qs}",
                        "n_from_same_pack": counts[pid],
                    }
        return kept, extras

    def _page(self, cands, page, page_size, fields, link_params, tail, path, extras,
              with_score: bool) -> dict:
        count = len(cands)
        num_pages = max(1, -(-count // page_size))
        if page > num_pages and count != 0:
            raise ApiError(404, NOT_FOUND_PAGE)

        def link(p: int) -> str:
            parts = list(link_params) + [("page", str(p))]
            if page_size != DEFAULT_PAGE_SIZE:
                parts.append(("page_size", str(page_size)))
            parts += tail
            return f"{self.origin}{path}?" + "".join(f"&{k}={_my_quote(v)}" for k, v in parts)

        chunk = cands[(page - 1) * page_size: page * page_size]
        results = []
        for s, sc in chunk:
            item = self._render(s, fields, score=sc if with_score else None)
            item.update(extras.get(s["id"], {}))
            results.append(item)
        return {
            "count": count,
            "previous": link(page - 1) if page > 1 and count else None,
            "next": link(page + 1) if page < num_pages and count else None,
            "results": results,
        }

    def _drf_list(self, params: dict, ids: list[int], path: str, packs: bool = False) -> dict:
        with self._lock:
            if packs:
                live = [self.corpus.packs[i] for i in ids]
            else:
                live = [self.corpus.by_id[i] for i in ids if i not in self._deleted]
        live.sort(key=lambda s: (s["created"], s["id"]), reverse=True)
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            raise ApiError(404, INVALID_PAGE) from None
        try:
            page_size = min(int(params.get("page_size", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
        except ValueError:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 1:
            page_size = DEFAULT_PAGE_SIZE
        num_pages = max(1, -(-len(live) // page_size))
        if page < 1 or page > num_pages:
            raise ApiError(404, INVALID_PAGE)
        keep = [(k, v) for k, v in params.items() if k not in ("page", "token")]

        def link(p: int) -> str:
            q = keep + ([("page", str(p))] if p > 1 else [])
            return f"{self.origin}{path}" + ("?" + urlencode(q) if q else "")

        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        chunk = live[(page - 1) * page_size: page * page_size]
        return {
            "count": len(live),
            "next": link(page + 1) if page < num_pages else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": [self._ep_pack({}, str(s["id"])) if packs else self._render(s, fields)
                        for s in chunk],
        }

    def _render(self, s: dict, fields: tuple[str, ...], score: float | None = None) -> dict:
        base, origin = self.base_url, self.origin
        sid, uid = s["id"], s["user_id"]
        folder = sid // 1000
        out: dict[str, Any] = {}
        for f in fields:
            if f == "url":
                v: Any = f"{origin}/people/{quote(s['username'], safe='')}/sounds/{sid}/"
            elif f == "category":
                v = [s["category"], s["subcategory"]]
            elif f == "created":
                v = s["created"].isoformat()
            elif f == "pack":
                v = f"{base}/packs/{s['pack_id']}/" if s["pack_id"] else None
            elif f == "download":
                v = f"{base}/sounds/{sid}/download/"
            elif f == "bookmark":
                v = f"{base}/sounds/{sid}/bookmark/"
            elif f == "rate":
                v = f"{base}/sounds/{sid}/rate/"
            elif f == "comments":
                v = f"{base}/sounds/{sid}/comments/"
            elif f == "comment":
                v = f"{base}/sounds/{sid}/comment/"
            elif f == "similar_sounds":
                v = f"{base}/sounds/{sid}/similar/"
            elif f == "previews":
                p = f"{origin}/previews/{folder}/{sid}_{uid}"
                v = {"preview-hq-mp3": p + "-hq.mp3", "preview-hq-ogg": p + "-hq.ogg",
                     "preview-lq-mp3": p + "-lq.mp3", "preview-lq-ogg": p + "-lq.ogg"}
            elif f == "images":
                p = f"{origin}/displays/{folder}/{sid}_{uid}"
                v = {"waveform_m": p + "_wave_M.png", "waveform_l": p + "_wave_L.png",
                     "spectral_m": p + "_spec_M.jpg", "spectral_l": p + "_spec_L.jpg",
                     "waveform_bw_m": p + "_wave_bw_M.png", "waveform_bw_l": p + "_wave_bw_L.png",
                     "spectral_bw_m": p + "_spec_bw_M.jpg", "spectral_bw_l": p + "_spec_bw_L.jpg"}
            elif f == "score":
                v = score
            elif f == "tags":
                v = list(s["tags"])
            else:
                v = s[f]
            out[f] = v
        return out

    # -- previews and images (no key, like the CDN) --------------------------------------------

    _PREVIEW = re.compile(r"^/previews/(\d+)/(\d+)_(\d+)-(hq|lq)\.(mp3|ogg)$")
    _DISPLAY = re.compile(r"^/displays/(\d+)/(\d+)_(\d+)_(wave|spec)(?:_bw)?_([LM])\.(png|jpg)$")

    def _media(self, path: str, range_header: str | None, method: str) -> _Response:
        m = self._PREVIEW.match(path)
        kind = "preview"
        if not m:
            m = self._DISPLAY.match(path)
            kind = "image"
        if m:
            folder, sid, uid = int(m.group(1)), int(m.group(2)), int(m.group(3))
            s = self.corpus.by_id.get(sid)
            with self._lock:
                ok = (s is not None and s["id"] not in self._deleted
                      and folder == sid // 1000 and uid == s["user_id"])
                if kind == "preview":
                    self._stats["previews"] += 1
        else:
            ok = False
        if not ok:
            return _Response(404, NGINX_ERROR.format(code=404, reason="Not Found").encode(),
                             "text/html", endpoint=kind if m else "unknown")
        if kind == "preview":
            data = self._preview(s, m.group(4), m.group(5))
            ctype = "audio/mpeg" if m.group(5) == "mp3" else "audio/ogg"
        else:
            data = _png(4 if m.group(5) == "M" else 8, 2, (sid % 256, uid % 256, 128))
            ctype = "image/png" if m.group(6) == "png" else "image/jpeg"
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        headers = [("ETag", etag), ("Accept-Ranges", "bytes"),
                   ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]
        # If-Range is not looked at: a preview's bytes never change, so nginx's answer to it
        # would only differ for a client holding some other file's validator.
        span = (parse_range(range_header, len(data), inverted_unsatisfiable=True,
                            exact_syntax=True) if range_header else None)
        if span == UNSATISFIABLE:
            return _Response(416, b"", ctype, (("Content-Range", f"bytes */{len(data)}"),),
                             endpoint=kind)
        if isinstance(span, tuple):
            start, end = span
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return _Response(206, data[start:end + 1], ctype, tuple(headers), endpoint=kind)
        return _Response(200, data, ctype, tuple(headers), endpoint=kind)

    def _preview(self, s: dict, quality: str, ext: str) -> bytes:
        key = (s["id"], quality, ext)
        with self._lock:
            if key in self._preview_cache:
                self._preview_cache.move_to_end(key)
                return self._preview_cache[key]
        import soundfile as sf  # a project dependency; only needed when previews are fetched

        sr = 44100
        n = max(1, int(min(s["duration"], self.preview_seconds) * sr))
        rng = np.random.default_rng([self.seed, s["id"]])
        t = np.arange(n) / sr
        f0 = 110.0 * 2 ** ((s["id"] % 36) / 12)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(n)
        fade = min(n // 2, 441)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade)
            x[:fade] *= ramp
            x[-fade:] *= ramp[::-1]
        data = np.repeat(x[:, None], s["channels"], axis=1).astype(np.float32)
        buf = io.BytesIO()
        level = 0.2 if quality == "hq" else 0.8
        if ext == "mp3":
            sf.write(buf, data, sr, format="MP3", subtype="MPEG_LAYER_III",
                     compression_level=level)
            out = buf.getvalue()
        else:
            sf.write(buf, data, sr, format="OGG", subtype="VORBIS", compression_level=level)
            out = _ogg_with_serial(buf.getvalue(), s["id"] & 0x7FFFFFFF)
        with self._lock:
            self._preview_cache[key] = out
            while len(self._preview_cache) > 256:
                self._preview_cache.popitem(last=False)
        return out


CONTROL_ACTIONS = ("fail_next", "malformed_next", "disconnect_next", "delay_next",
                   "delete_sound", "reset_minute_window", "reset_day_window", "exhaust_minute",
                   "exhaust_day", "advance", "set_limits", "reset_stats")


class _Disconnect(Exception):
    pass


_ROUTES = (
    ("search", re.compile(r"^/apiv2/search/$")),
    ("search_text", re.compile(r"^/apiv2/search/text/$")),
    ("sound", re.compile(r"^/apiv2/sounds/(\d+)/$")),
    ("similar", re.compile(r"^/apiv2/sounds/(\d+)/similar/$")),
    ("download", re.compile(r"^/apiv2/sounds/(\d+)/download/$")),
    ("user", re.compile(r"^/apiv2/users/([^/]+)/$")),
    ("user_sounds", re.compile(r"^/apiv2/users/([^/]+)/sounds/$")),
    ("user_packs", re.compile(r"^/apiv2/users/([^/]+)/packs/$")),
    ("pack", re.compile(r"^/apiv2/packs/(\d+)/$")),
    ("pack_sounds", re.compile(r"^/apiv2/packs/(\d+)/sounds/$")),
)


def _route(path: str) -> tuple[str | None, tuple]:
    for name, rx in _ROUTES:
        m = rx.match(path)
        if m:
            args = tuple(unquote(g) for g in m.groups())
            return name, args
    return None, ()


def _paging(params: dict) -> tuple[int, int]:
    """page/page_size as apiv2/forms.py cleans them."""
    try:
        page = int(params.get("page", ""))
    except ValueError:
        page = 1
    try:
        page_size = min(int(params.get("page_size", "")), MAX_PAGE_SIZE)
    except ValueError:
        page_size = DEFAULT_PAGE_SIZE
    if page < 1 or page_size < 1:
        raise ApiError(404, NOT_FOUND_PAGE)
    return page, page_size


def _parse_fields(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not raw:
        return default
    if raw.strip() == "*":
        return ALL_FIELDS
    wanted = {f.strip() for f in raw.split(",")}
    return tuple(f for f in ALL_FIELDS if f in wanted)


def _detail(status: int, detail: str, headers: tuple = ()) -> _Response:
    return _Response(status, _json_bytes({"detail": detail}), "application/json", headers)


def _error_response(status: int) -> _Response:
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    if status == 500:
        return _detail(500, "Server error")
    return _Response(status, NGINX_ERROR.format(code=status, reason=reason).encode(),
                     "text/html")


# ----------------------------------------------------------------------------------------------
# As a process
# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--sounds", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--key", default="test-key")
    ap.add_argument("--per-minute", type=int, default=None)
    ap.add_argument("--per-day", type=int, default=None)
    ap.add_argument("--deleted", type=int, default=20)
    args = ap.parse_args(argv)
    server = FreesoundStandin(args.sounds, args.seed, args.key, args.per_minute, args.per_day,
                              n_deleted=args.deleted, host=args.host, port=args.port)
    server.start()
    print(f"PORT {server.port}", flush=True)
    print(f"BASE_URL {server.base_url}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
