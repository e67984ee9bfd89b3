"""Run every ``bench/bench_<area>.py`` and print one markdown table per area.

    python bench/run.py            # full sizes
    python bench/run.py --quick    # small sizes, under two minutes in total
    python bench/run.py --area ot  # one area
    python bench/run.py --json results.json

Each table shows randnla's time, the anchor's time on the same input in the same run, the ratio
(anchor / randnla: above 1 means randnla is faster) and whether each answer passed its check.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(areas=None):
    found = sorted(HERE.glob("bench_*.py"))
    names = [p.stem[len("bench_"):] for p in found]
    if areas:
        unknown = set(areas) - set(names)
        if unknown:
            raise SystemExit(f"unknown area(s) {sorted(unknown)}; available: {names}")
        found = [p for p, n in zip(found, names) if n in areas]
    return found


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def fmt_time(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(area: str, rows: list) -> str:
    lines = [f"### {area}", "", "| case | randnla | anchor | anchor time | ratio | checks | goal | note |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["anchor_s"] / r["randnla_s"] if r["randnla_s"] > 0 and r["anchor_s"] == r["anchor_s"] else float("nan")
        r["ratio"] = ratio
        checks = ("ok" if r["randnla_ok"] else "FAIL") + " / " + ("ok" if r["anchor_ok"] else "FAIL")
        lines.append(
            f"| {r['case']} | {fmt_time(r['randnla_s'])} | {r['anchor']} | {fmt_time(r['anchor_s'])} | "
            f"{ratio:.2f}x | {checks} | {r.get('goal', '')} | {r.get('note', '')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (whole run under two minutes)")
    parser.add_argument("--area", action="append", help="run only this area (repeatable)")
    parser.add_argument("--json", default=str(HERE / "results.json"), help="where to write the numbers")
    args = parser.parse_args(argv)

    report = {"quick": args.quick, "python": platform.python_version(), "machine": platform.machine(), "areas": {}}
    failed = False
    for path in discover(args.area):
        area = path.stem[len("bench_"):]
        start = time.perf_counter()
        try:
            rows = load(path).run(quick=args.quick)
        except ImportError as err:
            print(f"### {area}\n\nskipped: {err}\n")
            report["areas"][area] = {"skipped": str(err)}
            continue
        print(table(area, rows))
        print(f"\n({area}: {time.perf_counter() - start:.1f} s; ratio = anchor time / randnla time)\n", flush=True)
        failed |= not all(r["randnla_ok"] for r in rows)
        report["areas"][area] = rows
    Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    print(f"numbers written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
