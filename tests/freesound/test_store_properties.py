"""Property: whatever order samples and edges arrive in, the stored edges are exactly the
edges whose two ends are stored, each once, and the rest wait (pending) — never lost."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from easy_oww.freesound.store import FreesoundLibrary
from tests.freesound.conftest import make_sound

ids = st.integers(min_value=1, max_value=12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("sample"), ids),
        st.tuples(st.just("edge"), ids, ids, st.sampled_from(["similar", "other"])),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_edges_are_exactly_those_between_stored_samples(ops):
    with tempfile.TemporaryDirectory() as folder, FreesoundLibrary(folder) as lib:
        stored: set[int] = set()
        wanted: set[tuple[int, int, str]] = set()
        for op in ops:
            if op[0] == "sample":
                lib.add_sample(make_sound(op[1]))
                stored.add(op[1])
            else:
                _, src, dst, kind = op
                lib.add_edge(src, dst, kind, 0.5)
                if src != dst:
                    wanted.add((src, dst, kind))
        edges = {(s, t, k) for s, t, k, _, _ in
                 lib._read("SELECT source, target, kind, weight, rank FROM edges")}
        pending = {(s, t, k) for s, t, k in
                   lib._read("SELECT source, target, kind FROM pending_edges")}
        assert edges == {e for e in wanted if e[0] in stored and e[1] in stored}
        assert pending == wanted - edges
        assert lib.stored_ids() == stored
        seen = {row[0] for row in lib._read("SELECT id FROM seen")}
        assert not seen & stored
        assert lib.verify() == []
