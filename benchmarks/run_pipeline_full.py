"""Run the full pipeline (paper budgets by default) and publish its evidence: see :mod:`go1o4.experiments.pipeline_full`.

    python benchmarks/run_pipeline_full.py --out runs/pipeline_full              # 3 seeds, 180k + 100k steps
"""
import sys

from go1o4.experiments.pipeline_full import main

if __name__ == "__main__":
    sys.exit(main())
