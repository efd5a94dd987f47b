"""The progress displays: a total that counts resumed bytes once and takes back restarts."""

from __future__ import annotations

import io

from rich.console import Console

from easy_oww.progress import PlainProgress, RichProgress


def test_rich_total_counts_resumed_bytes_once_and_restarts_back():
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True, width=100))
    try:
        progress.set_total(1000, 300)  # 300 bytes of a part already on disk
        task = progress.task("a.bin", 1000)
        task.reset(300, 1000)  # the fetcher's resume: already in the total's start
        task.advance(200)
        total = progress.bars._tasks[progress._total_id]
        assert total.completed == 500
        task.reset(0, 1000)  # the server changed the file: start again from zero
        assert total.completed == 0
        task.advance(1000)
        assert total.completed == 1000 and total.finished
    finally:
        progress.close()


def test_plain_lines_show_each_file_and_the_total():
    out = io.StringIO()
    progress = PlainProgress(stream=out, interval=0.0)
    progress.set_total(2000, 0)
    first, second = progress.task("a.bin", 1000), progress.task("b.bin", 1000)
    first.advance(500)
    second.advance(1000)
    second.finish()
    text = out.getvalue()
    assert "a.bin:  50.0%" in text and "b.bin: done, 1.0 kB" in text
    assert "Total:  75.0% 1.5 kB/2.0 kB" in text
