"""Benchmarks for the evaluate phase: the paper's ten presets (rzero_worker.benchmark_presets), JSONL or
Parquet files with configurable fields, and a built-in arithmetic set that needs no download.

- `loading`: files (local or s3://) into a `Benchmark` of `BenchmarkItem`s, each row checked against its
  preset's layout;
- `answers`: gold answers from dataset fields, option letters and short answers from model outputs;
- `scoring`: accuracy with a Wilson interval, avg@k, shards merged, the paper's averages;
- `prepare`: `rzero benchmarks prepare` (downloads with the `datasets` library, imported only there).

Importing this package imports no ML library (the control plane merges scores with `scoring`).
"""

from .answers import GoldError, read_gold
from .arithmetic import arithmetic_benchmark
from .items import Benchmark, BenchmarkError, BenchmarkItem, prompt_messages
from .loading import load_benchmark, read_bytes, read_rows
from .scoring import merge_scores, paper_averages, rows_score, score_entry, wilson_interval

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "BenchmarkItem",
    "GoldError",
    "arithmetic_benchmark",
    "load_benchmark",
    "merge_scores",
    "paper_averages",
    "prompt_messages",
    "read_bytes",
    "read_gold",
    "read_rows",
    "rows_score",
    "score_entry",
    "wilson_interval",
]
