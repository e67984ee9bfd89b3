"""`python -m randnla`: a tour of the library on built-in synthetic data.

Each area prints what it computed, how accurate it was (against a reference computed in the same
run) and how long it took. No downloads, no GPU needed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from randnla._tour import AREAS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m randnla",
        description="A tour of randnla: each area runs on built-in synthetic data and reports "
        "what it did, how accurate it was and how long it took.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller problems (a few seconds per area)")
    parser.add_argument("--area", action="append", choices=AREAS, metavar="NAME",
                        help=f"run only this area (repeatable): {', '.join(AREAS)}")
    args = parser.parse_args(argv)

    import randnla

    print(f"randnla {randnla.__version__} tour{' (quick)' if args.quick else ''}")
    randnla.show_config()
    failures = 0
    for area in args.area or AREAS:
        try:
            section = importlib.import_module(f"randnla._tour.{area}")
        except ModuleNotFoundError as err:
            if err.name == f"randnla._tour.{area}":
                continue  # that area has no tour section yet
            raise
        print(f"\n== {section.TITLE} ==")
        start = time.perf_counter()
        ok = section.run(quick=args.quick)
        failures += ok is False
        print(f"  [{area}: {time.perf_counter() - start:.1f} s]")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
