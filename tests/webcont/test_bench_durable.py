"""bench/durable.py's part commit and bench/http.py's baseline check, run small."""

import sys
import threading
import types

saved_path = list(sys.path)
try:
    import bench.durable as durable  # (its import puts the project root first on sys.path)
    import bench.http as http_bench
finally:
    sys.path[:] = saved_path


def run_part_commit(tmp_path, in_memory_rps=None):
    args = types.SimpleNamespace(commits=40)
    outcome = []
    saved = dict(durable._IN_MEMORY_RPS)
    durable._IN_MEMORY_RPS.clear()
    if in_memory_rps is not None:
        durable._IN_MEMORY_RPS[1] = in_memory_rps
    try:
        # on a thread of its own: the bench's inline hub stays bound to the thread
        # that drove it (current_hub()), which must not be the one other tests use
        runner = threading.Thread(
            target=lambda: outcome.append(durable.part_commit(args, str(tmp_path))))
        runner.start()
        runner.join(120)
    finally:
        durable._IN_MEMORY_RPS.clear()
        durable._IN_MEMORY_RPS.update(saved)
    return outcome


def test_part_commit_times_real_commits_and_reports_the_c1_budget(tmp_path, capsys):
    (text, judged), = run_part_commit(tmp_path, in_memory_rps=4000.0)
    printed = capsys.readouterr().out
    assert judged is True and text.startswith("a step's commit (reported)")
    # 4000 req/s in memory: a request takes 250 us, so 0.8x leaves 62.5 us more
    assert "c=1 budget of a durable step for 0.8x (from part http): 62 us" in printed
    for line in ("commit, back to back", "commit, after each in-memory step",
                 "the in-memory game step (in process)"):
        microseconds = float(printed.split(line)[1].split()[0])
        assert microseconds > 0


def test_part_commit_without_part_http_prints_no_budget(tmp_path, capsys):
    (text, _), = run_part_commit(tmp_path)
    assert "budget" not in capsys.readouterr().out and "budget" not in text


def test_a_baseline_spending_over_twice_the_game_steps_cpu_is_not_judged():
    game = "(b) webcont game step"
    med = {(http_bench.BASELINE, 8): {"cpu": 200e-6}, (game, 8): {"cpu": 210e-6},
           (http_bench.BASELINE, 32): {"cpu": 700e-6}, (game, 32): {"cpu": 200e-6}}
    assert http_bench._sane_baseline(med, 8)
    assert not http_bench._sane_baseline(med, 32)  # waitress' main loop was spinning
