"""bench/million.py at a small size: its parts still run and count what they say."""

import sys
import threading

saved_path = list(sys.path)
try:
    import bench.million as million  # (its import puts the project root first on sys.path)
finally:
    sys.path[:] = saved_path


def test_the_million_games_bench_runs_small_and_every_game_is_in_the_store(tmp_path, capsys):
    args = million.parse(["--games", "400", "--loaded", "40", "--unloaded", "30",
                          "--resumes", "10", "--restarts", "1", "--batch", "150",
                          "--traced", "20"])
    outcome = []
    # on a thread of its own: the bench's inline hub stays bound to the thread
    # that drove it (current_hub()), which must not be the one other tests use
    runner = threading.Thread(target=lambda: outcome.append(million.run(args, str(tmp_path))))
    runner.start()
    runner.join(120)
    (summary, met, figures), = outcome
    printed = capsys.readouterr().out
    assert figures["games"] == figures["live_in_store"] == 400
    assert figures["in_memory"] == 40  # the cap: the other 360 only in the store
    assert len(figures["unloaded"]) == len(figures["loaded"]) == 10
    assert all(seconds > 0 for seconds in figures["unloaded"] + figures["loaded"])
    assert figures["store_per_game"] > figures["json_per_game"] > 0
    assert figures["per_loaded"] > 0 and figures["rss"] > 0 and figures["traced"] > 0
    assert summary.startswith("400 games: RSS ") and isinstance(met, bool)
    for heading in ("(a) process memory", "(b) store bytes", "(c) resuming", "(d) first page"):
        assert heading in printed
