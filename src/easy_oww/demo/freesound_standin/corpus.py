"""The generated corpus: users, packs and sounds, deterministic from a seed, with a vector per
sound in each similarity space and each sound's nearest neighbours precomputed."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from datetime import datetime, timedelta
from urllib.parse import quote

import numpy as np

SIMILAR_COUNT = 150
VECTOR_DIM = 8
SIMILARITY_SPACES = ("laion_clap", "freesound_classic")
DEFAULT_SIMILARITY_SPACE = "laion_clap"

# (deed url as the API returns it, license name as used in filters, share of the corpus)
LICENSES = (
    ("http://creativecommons.org/publicdomain/zero/1.0/", "Creative Commons 0", 45),
    ("https://creativecommons.org/licenses/by/4.0/", "Attribution", 20),
    ("http://creativecommons.org/licenses/by/3.0/", "Attribution", 10),
    ("http://creativecommons.org/licenses/by-nc/3.0/", "Attribution NonCommercial", 12),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "Attribution NonCommercial", 10),
    ("http://creativecommons.org/licenses/sampling+/1.0/", "Sampling+", 3),
)

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


def tokens(text: str) -> set[str]:
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
                "tag": {t.lower() for t in tags} | {p for t in tags for p in tokens(t)},
                "description": tokens(description),
                "name": tokens(name),
                "username": tokens(user["username"]) | {user["username"].lower()},
                "pack": tokens(s["pack_name"] or ""),
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
