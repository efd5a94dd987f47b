"""`easy-oww demo`: the whole product offline, against loopback servers it starts itself.

It sits just below the CLI: it makes small datasets of the real shapes, serves them, runs the
real commands against them and a Freesound-API stand-in, and says what each step shows.

The stand-in (``freesound_standin``) and the two pieces of HTTP it shares with the test
servers in ``tests/servers/`` (``ranges``: one ``Range`` header against a size;
``threaded``: a server in a daemon thread with a clean stop) live here, not under tests/,
because the demo runs them from an installed package.
"""
