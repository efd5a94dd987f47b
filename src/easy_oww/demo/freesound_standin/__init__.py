"""A Freesound APIv2 stand-in: a real HTTP server on loopback over a generated corpus.

It speaks the protocol of https://freesound.org/apiv2 closely enough that the library's client
and crawler can be tested for real (page shape, 150 page-size cap, token check, 429 with the
real body and no ``Retry-After``), and it counts everything the client asks.

In a test::

    from easy_oww.demo.freesound_standin import FreesoundStandin

    with FreesoundStandin(n_sounds=3000, seed=0, api_key="test-key") as fs:
        fs.base_url                      # "http://127.0.0.1:PORT/apiv2"  (the client's --api-url)
        ...run the client...
        fs.stats["token_in_url"] == 0    # the key never went into a URL
        fs.requested_sound_ids()         # every id asked about specifically
        fs.reset_minute_window()         # a new minute, without sleeping
        fs.fail_next(2, status=503)      # fault injection

As a process (for chaos tests that SIGKILL the client)::

    python -m easy_oww.demo.freesound_standin --port 0 --sounds 3000 --key KEY \
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

from easy_oww.demo.freesound_standin.corpus import DEFAULT_SIMILARITY_SPACE, Corpus
from easy_oww.demo.freesound_standin.server import LIST_DEFAULT_FIELDS, FreesoundStandin

__all__ = ["DEFAULT_SIMILARITY_SPACE", "LIST_DEFAULT_FIELDS", "Corpus", "FreesoundStandin"]
