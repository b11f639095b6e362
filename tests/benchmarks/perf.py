"""Speed and memory at 100, 1,000 and 10,000 offerings: `python -m tests.benchmarks.perf`.

For every size and matcher mode, each measurement runs in a fresh Python process:

  cold    empty embedding cache: import, load the YAML, build the matcher (embeds every text)
  warm    same catalogue, cache present: start again, then answer the questions one after
          another pinned to one CPU (per-question latency, throughput: batch mode)
  single  `python -m bot ask QUESTION` as its own process, a few times (single-question
          mode, as a user of the command line sees it: start included)

Synthetic catalogues (tests/benchmarks/synthetic.py) are written as YAML files under
--workdir; questions are perturbed needs plus 10% out-of-scope ones. Results are printed
as a table with ratios against the first size's lexical row, and saved as JSON.
`--profile` also writes pyinstrument reports of building and answering at the largest size.

    python -m tests.benchmarks.perf                                  # all sizes, both modes
    python -m tests.benchmarks.perf --sizes 100,1000 --modes lexical  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GOALS = {"p99_ms": 20.0, "warm_start_s": 5.0, "growth": 3.0}
DEFAULT_WORKDIR = Path(".bench")


# --- the child: one measurement in a fresh process -----------------------------------------


def _pin_to_one_cpu() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)


def child(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from bot.catalogue.loader import load_catalog
    from bot.matching.engine import build_matcher

    t1 = time.perf_counter()
    profiler = _profiler(args.profile_to, "build")
    catalog = load_catalog(args.catalogue)
    t2 = time.perf_counter()
    matcher = build_matcher(catalog, args.mode)
    t3 = time.perf_counter()
    _save_profile(profiler, args.profile_to, "build")
    result: dict[str, Any] = {
        "mode": matcher.mode, "offerings": len(catalog), "import_s": t1 - t0,
        "load_s": t2 - t1, "build_s": t3 - t2, "start_s": t3 - t0 + args.interpreter_s}
    if args.questions_file:
        questions = json.loads(Path(args.questions_file).read_text(encoding="utf-8"))
        _pin_to_one_cpu()
        profiler = _profiler(args.profile_to, "queries")
        latencies, cpu = [], []
        decisions: dict[str, int] = {}
        started = time.perf_counter()
        for q in questions:
            t, c = time.perf_counter(), time.process_time()
            kind = matcher.decide(q).kind.value
            latencies.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            decisions[kind] = decisions.get(kind, 0) + 1
        total = time.perf_counter() - started
        _save_profile(profiler, args.profile_to, "queries")
        result |= {"first_ms": latencies[0] * 1000, "latencies_ms": [x * 1000 for x in latencies],
                   "cpu_ms": [x * 1000 for x in cpu],
                   "throughput_qps": len(questions) / total, "decisions": decisions}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _profiler(path: str | None, phase: str) -> Any:
    if not path:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    return profiler


def _save_profile(profiler: Any, path: str | None, phase: str) -> None:
    if profiler is None or path is None:
        return
    profiler.stop()
    Path(f"{path}-{phase}.txt").write_text(
        profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")


# --- the parent: generate, run children, report ---------------------------------------------


def _interpreter_start() -> float:
    """Seconds for a bare `python -c pass`: added to in-process start times."""
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        runs.append(time.perf_counter() - t)
    return min(runs)


def run_child(catalogue: Path, mode: str, cache: Path, interpreter_s: float, *,
              questions: Path | None = None, profile: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.benchmarks.perf", "--child", "--catalogue",
           str(catalogue), "--mode", mode, "--interpreter-s", str(interpreter_s)]
    if questions is not None:
        cmd += ["--questions-file", str(questions)]
    if profile is not None:
        cmd += ["--profile-to", str(profile)]
    env = {**os.environ, "CONCIERGE_CACHE_DIR": str(cache), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed ({' '.join(cmd)}):\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_single(catalogue: Path, mode: str, cache: Path, questions: Sequence[str]) -> list[float]:
    env = {**os.environ, "CONCIERGE_CACHE_DIR": str(cache)}
    times = []
    for q in questions:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bot", "ask", "--knowledge", str(catalogue),
                        "--matcher", mode, q], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(size: int, mode: str, args: argparse.Namespace,
            interpreter_s: float) -> dict[str, Any]:
    from tests.benchmarks.synthetic import questions, write_catalogue

    catalogue = args.workdir / f"catalogue-{size}"
    if not catalogue.exists():
        write_catalogue(size, catalogue, seed=args.seed)
    qfile = args.workdir / f"questions-{size}.json"
    if not qfile.exists():
        qfile.write_text(json.dumps(questions(catalogue, args.questions, seed=args.seed)),
                         encoding="utf-8")
    cache = args.workdir / f"cache-{size}-{mode}"
    for stale in cache.glob("*"):
        stale.unlink()
    print(f"  {size:>6} {mode:<8} cold…", end="", flush=True, file=sys.stderr)
    cold = run_child(catalogue, mode, cache, interpreter_s)
    print(" warm…", end="", flush=True, file=sys.stderr)
    profile = (args.workdir / f"profile-{mode}-{size}"
               if args.profile and size == max(args.sizes) else None)
    warm = run_child(catalogue, mode, cache, interpreter_s, questions=qfile, profile=profile)
    print(" single…", flush=True, file=sys.stderr)
    asked = json.loads(qfile.read_text(encoding="utf-8"))[:args.single]
    single = run_single(catalogue, mode, cache, asked) if asked else []
    lat, cpu = warm["latencies_ms"], warm["cpu_ms"]
    return {
        "size": size, "mode": warm["mode"],
        "cold_start_s": cold["start_s"], "cold_build_s": cold["build_s"],
        "cold_rss_mb": cold["peak_rss_mb"],
        "warm_start_s": warm["start_s"], "warm_import_s": warm["import_s"],
        "warm_load_s": warm["load_s"], "warm_build_s": warm["build_s"],
        "warm_rss_mb": warm["peak_rss_mb"],
        "p50_ms": statistics.median(lat), "p99_ms": percentile(lat, 0.99),
        "max_ms": max(lat), "first_ms": warm["first_ms"],
        "cpu_p50_ms": statistics.median(cpu), "cpu_p99_ms": percentile(cpu, 0.99),
        "load_average": os.getloadavg()[0],
        "throughput_qps": warm["throughput_qps"], "questions": len(lat),
        "decisions": warm["decisions"],
        "single_median_s": statistics.median(single) if single else None,
        "single_max_s": max(single) if single else None,
    }


def report(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = [
        f"baseline (×1.0): {base['size']} offerings, {base['mode']}; goals: p99 ≤ "
        f"{GOALS['p99_ms']:.0f} ms at 10k on one core, warm start ≤ {GOALS['warm_start_s']:.0f}"
        f" s at 10k, growth 1k→10k ≤ {GOALS['growth']:.0f}×",
        "",
        "| offerings | mode | cold start s | warm start s (load + build) | peak RSS MB "
        "| p50 ms | p99 ms (× base) | CPU p50 / p99 ms | q/s | single ask s | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        single = f"{r['single_median_s']:.2f}" if r["single_median_s"] is not None else "-"
        lines.append(
            f"| {r['size']:,} | {r['mode']} | {r['cold_start_s']:.2f} | {r['warm_start_s']:.2f} "
            f"({r['warm_load_s']:.2f} + {r['warm_build_s']:.2f}) | {r['warm_rss_mb']:.0f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} (×{r['p99_ms'] / base['p99_ms']:.1f}) "
            f"| {r['cpu_p50_ms']:.2f} / {r['cpu_p99_ms']:.2f} | {r['throughput_qps']:.1f} "
            f"| {single} | {r['load_average']:.1f} |")
    lines.append("")
    by = {(r["size"], r["mode"]): r for r in rows}
    for mode in sorted({r["mode"] for r in rows}):
        if (1000, mode) in by and (10000, mode) in by:
            small, big = by[(1000, mode)], by[(10000, mode)]
            growth = big["p99_ms"] / small["p99_ms"]
            verdicts = [
                f"p99 {big['p99_ms']:.1f} ms ({_ok(big['p99_ms'] <= GOALS['p99_ms'])})",
                f"warm start {big['warm_start_s']:.1f} s "
                f"({_ok(big['warm_start_s'] <= GOALS['warm_start_s'])})",
                f"growth 1k→10k p99 ×{growth:.1f}, p50 "
                f"×{big['p50_ms'] / small['p50_ms']:.1f} ({_ok(growth <= GOALS['growth'])})"]
            lines.append(f"{mode} at 10k: " + "; ".join(verdicts))
    return "\n".join(lines)


def _ok(met: bool) -> str:
    return "goal met" if met else "GOAL MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.perf",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--modes", default="lexical,semantic", type=lambda s: s.split(","))
    parser.add_argument("--questions", type=int, default=300, help="questions per size")
    parser.add_argument("--single", type=int, default=3,
                        help="single-question `ask` processes per size and mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument reports of the largest size into --workdir")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--interpreter-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    interpreter_s = _interpreter_start()
    rows = []
    for size in args.sizes:
        for mode in args.modes:
            rows.append(measure(size, mode, args, interpreter_s))
            # Saved after every row: a run cut short still leaves what it measured.
            (args.workdir / "perf-results.json").write_text(json.dumps(rows, indent=1),
                                                            encoding="utf-8")
    print(report(rows))
    print(f"\n{os.cpu_count()} CPUs; load average is the 1-minute figure after each row: "
          "above 1, other processes shared the CPU and wall-clock times are inflated "
          "(CPU times much less so).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
