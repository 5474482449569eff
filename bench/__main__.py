"""`python -m bench [names...]`: run each benchmark module's `main()` (all of them by default).

Modules are discovered in this package, so benchmarks added later need no registration; a name
that does not exist is reported and makes the exit status non-zero.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return sorted(
        m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_") and not m.ispkg
    )


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    known = available()
    if any(n in ("-h", "--help") for n in names):
        print(f"usage: python -m bench [names...]\navailable: {' '.join(known)}")
        return 0
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s): {' '.join(unknown)}; available: {' '.join(known)}",
              file=sys.stderr)  # fmt: skip
        return 2
    status = 0
    for name in names or known:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            print(f"bench.{name} has no main(); skipped", file=sys.stderr)
            continue
        start = time.perf_counter()
        print(f"# bench.{name}", file=sys.stderr, flush=True)
        rc = module.main()
        elapsed = time.perf_counter() - start
        print(f"# bench.{name} finished in {elapsed:.1f} s (rc={rc or 0})", file=sys.stderr)
        sys.stdout.flush()
        if rc:
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
