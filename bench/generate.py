"""Benchmark: the synthetic generator at scale (wall time, peak RSS, rows written).

.venv/bin/python bench/generate.py --rows 10000000 --out /tmp/shoprec-10m.parquet
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from pipelines.data.synthetic import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    started = time.perf_counter()
    summary = generate(args.out, {"seed": args.seed, "rows": args.rows})
    summary.update(
        {
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "file_mib": round(args.out.stat().st_size / 2**20),
        }
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
