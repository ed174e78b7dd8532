"""Evaluator quality (ROC AUC on the dev datasets) and throughput (spans/s of the default suite).

Quality: every built-in evaluator on the lines of ``eval_dev.jsonl`` labelled
for it, factuality on ``halueval_qa_dev.jsonl`` and its length-matched subset,
toxicity on ``toxigen_dev.jsonl``. The shipped toxicity head was trained on
toxigen_dev and on eval_dev's toxicity lines, so its AUC there is in-sample;
the honest figures come from heads trained by ``scripts/train_toxicity_head.py``'s
own code (imported, not copied) without the lines they score, and are judged
on the group-split measure: seeded random splits of the twelve ToxiGen groups
into six training and six held-out groups, one head per split (trained on its
six groups plus eval_dev's toxicity lines, as shipped) scoring all six held-out
groups at once, ROC AUC over those lines; mean, minimum and maximum over the
splits. Leave-one-group-out (twelve heads, one per held-out group) is reported
too, for information, and eval_dev is scored by a head trained on ToxiGen
alone. Those heads are written to temporary weights files and scored through
the real :class:`ToxicityEvaluator`, so only the weights differ from the
shipped evaluator.

The dev files are read from the repository's ``datasets/`` folder (where
their licences are too), or from ``--datasets DIR``. Also, for information:
``benchmarks/data/probe_eval.jsonl``, lines of eval_dev's kinds written for
llmvigil after the evaluators were tuned.

Throughput: ``--spans`` demo spans (``llmvigil.demo.run_demo``, through the
real decorator, spool and ingest, into a temporary DuckDB file) scored by a
:class:`Runner` with every registered built-in evaluator, the default batch
size and the default span kinds (llm and chain spans; retrieval spans are not
answers), in a fresh Python process: imports, model load and the run are timed
separately, and the peak RSS is read from ``getrusage``. The demo repeats six
questions, so nearly every text is in the embedding cache after the first
batch; the same spans are measured a second time with each request's question
and answer made distinct (an order number written into them), which is the
cost of real traffic where texts rarely repeat.

Usage::

    python benchmarks/bench_evaluators.py [--spans 10000] [--batch-size N] [--write]
    python benchmarks/bench_evaluators.py --skip-throughput --datasets DIR   # other dev files
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from _report import header, load_average, write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).with_name("RESULTS.md")
#: The public dev sets and their licences, carried by the repository.
DATASETS = ROOT / "datasets"
PACKAGES = [
    "llmvigil",
    "numpy",
    "scikit-learn",
    "onnxruntime",
    "torch",
    "transformers",
    "alt-profanity-check",
    "duckdb",
]
SECTION = "## Evaluators"
#: Lines like eval_dev's, written for llmvigil after the evaluators were tuned.
DATA = Path(__file__).with_name("data")
PROBE_PATH = DATA / "probe_eval.jsonl"
PROBE_EVALUATORS = ("relevance", "completeness", "brevity", "toxicity", "factuality")
TRAINER_PATH = ROOT / "scripts" / "train_toxicity_head.py"

#: ROC AUC targets on eval_dev, by evaluator.
EVAL_DEV_TARGETS = {
    "relevance": 0.95,
    "completeness": 0.90,
    "brevity": 0.95,
    "toxicity": 0.95,
    "factuality": 0.90,
}
#: Evaluators whose learned head (version 3) has eval_dev's lines among its training data.
HEADS_ON_EVAL_DEV = frozenset({"relevance", "completeness"})
HALUEVAL_TARGET = 0.95
HALUEVAL_MATCHED_TARGET = 0.90
TOXIGEN_HELD_OUT_TARGET = 0.93
SPANS_PER_S_TARGET = 200.0

#: Scores one item with every evaluator before timing, so each model is loaded.
WARMUP = {
    "input": "What time does the store open on Sundays?",
    "output": "On Sundays the store opens at 10 am.",
    "context": ["The store opens at 10 am on Sundays and at 9 am on other days."],
}


# -- quality -------------------------------------------------------------------------------


def load_trainer() -> ModuleType:
    """``scripts/train_toxicity_head.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location("train_toxicity_head", TRAINER_PATH)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {TRAINER_PATH}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def embedding_backend() -> str:
    """The runtime of the shared sentence vectors in this process: ``onnx`` or ``torch``."""
    from llmvigil.evaluators.vectors import shared_vectors

    return str(getattr(shared_vectors(), "backend", "torch"))


def row(
    file: str,
    evaluator: str,
    lines: int | str,
    scored: int | str,
    auc: float,
    target: float | None,
    note: str = "",
    reference: float | None = None,
    rates: dict[str, Any] | None = None,
    baseline: bool = False,
) -> dict[str, Any]:
    """One table row; ``reference``: a level an unjudged row is compared with, for information.

    ``rates``: precision and recall of the flagged lines at the shipped threshold
    (:func:`benchmarks._eval_data.flag_precision_recall`); ``baseline``: a naive
    baseline's row, which has no threshold.
    """
    rates = rates or {}
    return {
        "file": file,
        "evaluator": evaluator,
        "lines": lines,
        "scored": scored,
        "roc_auc": auc,
        "target": target,
        "note": note,
        "reference": reference,
        "precision": rates.get("precision"),
        "recall": rates.get("recall"),
        "baseline": baseline,
    }


def score_texts_with_head(
    items: list, coef: Any, intercept: float, gate: float | None, tmp: Path
) -> list:
    """Scores of ``items`` by the real toxicity evaluator with another head's weights."""
    from llmvigil.evaluators.toxicity import WEIGHTS_FORMAT, ToxicityEvaluator, ToxicityModel

    path = tmp / f"head-{len(list(tmp.iterdir()))}.json"
    path.write_text(
        json.dumps(
            {
                "format": WEIGHTS_FORMAT,
                "version": "held-out",
                "combination": {"profanity_gate": gate},
                "intercept": float(intercept),
                "coef": [float(v) for v in coef],
            }
        ),
        encoding="utf-8",
    )
    evaluator = ToxicityEvaluator(model=ToxicityModel(weights_path=path))
    scores: list[float | None] = []
    for start in range(0, len(items), 64):
        scores += [s.score for s in evaluator.evaluate(items[start : start + 64])]
    return scores


def toxicity_held_out() -> dict[str, Any]:
    """Toxicity ROC AUC on lines the head never saw, with the training script's own code.

    ToxiGen, group splits (the judged measure): for each of the training
    script's seeded splits, one head trained on the split's training groups
    plus eval_dev's toxicity lines scores every line of the other groups; ROC
    AUC over those lines, then mean, minimum and maximum over the splits.
    ToxiGen, leave one group out: train on the eleven others plus eval_dev's
    toxicity lines, score the held-out group; mean and minimum over the groups
    and the AUC of all held-out scores pooled (twelve heads, twelve
    calibrations). eval_dev: a head trained on ToxiGen alone.
    """
    import numpy as np

    from benchmarks._eval_data import flag_precision_recall, labelled, load_rows, roc_auc
    from llmvigil.evaluators.toxicity import ToxicityEvaluator, ToxicityHead
    from llmvigil.evaluators.vectors import shared_vectors

    trainer = load_trainer()
    gate = ToxicityHead.load().profanity_gate
    threshold = ToxicityEvaluator.threshold
    toxigen = load_rows("toxigen_dev.jsonl")
    evald = [r for r in load_rows("eval_dev.jsonl") if "toxicity" in r.get("labels", {})]
    items_t, labels_t = labelled(toxigen, "toxicity")
    items_e, labels_e = labelled(evald, "toxicity")
    vectors = shared_vectors()
    xt = vectors.encode_layers([r["output"] for r in toxigen]).astype(np.float64)
    yt = np.array(labels_t)
    gt = np.array([r["group"] for r in toxigen])
    # Every head also trains on eval_dev's toxicity lines and the contrast lines, as shipped.
    xe, ye, ge, _ = trainer.load_extra(vectors)
    in_eval = ge == trainer.EVAL_GROUP
    groups = sorted(set(gt))

    per_group: list[dict[str, Any]] = []
    pooled: list[float | None] = [None] * len(yt)
    with tempfile.TemporaryDirectory(prefix="llmvigil-heads-") as name:
        tmp = Path(name)
        for g in groups:
            held = gt == g
            w, b, _ = trainer.fit_calibrated(
                np.vstack([xt[~held], xe]), np.r_[yt[~held], ye], np.r_[gt[~held], ge]
            )
            idx = np.flatnonzero(held)
            scores = score_texts_with_head([items_t[i] for i in idx], w, b, gate, tmp)
            for i, s in zip(idx, scores, strict=True):
                pooled[i] = s
            per_group.append(
                {
                    "group": g,
                    "lines": int(held.sum()),
                    "toxic": int(yt[held].sum()),
                    "roc_auc": roc_auc(yt[held].tolist(), scores),
                }
            )
        splits: list[dict[str, Any]] = []
        for train_groups in trainer.group_splits(gt):
            train = np.isin(gt, train_groups)
            w, b, _ = trainer.fit_calibrated(
                np.vstack([xt[train], xe]), np.r_[yt[train], ye], np.r_[gt[train], ge]
            )
            idx = np.flatnonzero(~train)
            scores = score_texts_with_head([items_t[i] for i in idx], w, b, gate, tmp)
            splits.append(
                {
                    "train": list(train_groups),
                    "held_out": sorted(set(gt[idx])),
                    "lines": len(idx),
                    "toxic": int(yt[idx].sum()),
                    "roc_auc": roc_auc(yt[idx].tolist(), scores),
                    **flag_precision_recall(yt[idx].tolist(), scores, threshold, False),
                }
            )
        w, b, _ = trainer.fit_calibrated(
            np.vstack([xt, xe[~in_eval]]), np.r_[yt, ye[~in_eval]], np.r_[gt, ge[~in_eval]]
        )
        unseen = score_texts_with_head(items_e, w, b, gate, tmp)
    aucs = [g["roc_auc"] for g in per_group]
    split_aucs = [s["roc_auc"] for s in splits]
    return {
        "splits": splits,
        "split_mean": float(np.mean(split_aucs)),
        "split_min": float(np.min(split_aucs)),
        "split_max": float(np.max(split_aucs)),
        "split_sem": float(np.std(split_aucs, ddof=1) / np.sqrt(len(split_aucs))),
        "split_rates": {
            k: float(np.nanmean([s[k] for s in splits])) for k in ("precision", "recall")
        },
        "pooled_rates": flag_precision_recall(labels_t, pooled, threshold, False),
        "eval_dev_rates": flag_precision_recall(labels_e, unseen, threshold, False),
        "split_train_groups": trainer.SPLIT_TRAIN_GROUPS,
        "groups": per_group,
        "mean": float(np.mean(aucs)),
        "min": float(np.min(aucs)),
        "min_group": per_group[int(np.argmin(aucs))]["group"],
        "pooled": roc_auc(labels_t, pooled),
        "toxigen_lines": len(yt),
        "eval_dev_unseen": roc_auc(labels_e, unseen),
        "eval_dev_lines": len(labels_e),
        "eval_dev_scored": sum(s is not None for s in unseen),
        "gate": gate,
    }


def baseline_rows(
    file: str, path: str | Path, name: str, skip: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The naive baselines of evaluator ``name`` on the lines of ``path`` labelled for it."""
    from benchmarks._baselines import BASELINES
    from benchmarks._eval_data import labelled, load_rows, roc_auc

    items, labels = labelled(load_rows(path), name)
    rows = []
    for label, baseline in BASELINES.get(name, {}).items():
        if label in skip:
            continue
        scores = baseline(items)
        rows.append(
            row(
                file,
                f"baseline: {label}",
                len(items),
                sum(v is not None for v in scores),
                roc_auc(labels, scores),
                None,
                baseline=True,
            )
        )
    return rows


#: Validation sets written for issue 18 before tuning (``benchmarks/data/VALIDATION.md``):
#: file label, path, evaluator, ROC AUC target.
VALIDATION_SETS = [
    ("factuality_rag", DATA / "factuality_rag.jsonl", "factuality", 0.75),
    ("factuality_rag_2", DATA / "factuality_rag_2.jsonl", "factuality", 0.75),
    ("factuality_rag_3", DATA / "factuality_rag_3.jsonl", "factuality", 0.75),
    ("factuality_rag_4", DATA / "factuality_rag_4.jsonl", "factuality", 0.75),
    ("factuality_rag_5", DATA / "factuality_rag_5.jsonl", "factuality", 0.75),
    ("factuality_rag_6", DATA / "factuality_rag_6.jsonl", "factuality", 0.75),
    ("relevance_question_sentence", DATA / "relevance_question_sentence.jsonl", "relevance", 0.85),
    (
        "relevance_question_sentence_2",
        DATA / "relevance_question_sentence_2.jsonl",
        "relevance",
        0.85,
    ),
    (
        "relevance_question_sentence_3",
        DATA / "relevance_question_sentence_3.jsonl",
        "relevance",
        0.85,
    ),
    (
        "relevance_question_sentence_4",
        DATA / "relevance_question_sentence_4.jsonl",
        "relevance",
        0.85,
    ),
    ("toxicity_functional", DATA / "toxicity_functional.jsonl", "toxicity", 0.85),
    ("toxicity_unseen_groups", DATA / "toxicity_unseen_groups.jsonl", "toxicity", 0.93),
    ("completeness_heldout", DATA / "completeness_heldout.jsonl", "completeness", 0.90),
    ("completeness_heldout_2", DATA / "completeness_heldout_2.jsonl", "completeness", 0.90),
    ("completeness_heldout_3", DATA / "completeness_heldout_3.jsonl", "completeness", 0.90),
    ("completeness_heldout_4", DATA / "completeness_heldout_4.jsonl", "completeness", 0.90),
    ("completeness_heldout_5", DATA / "completeness_heldout_5.jsonl", "completeness", 0.90),
    ("completeness_heldout_6", DATA / "completeness_heldout_6.jsonl", "completeness", 0.90),
]


def quality() -> dict[str, Any]:
    """ROC AUC, precision and recall rows for every (file, evaluator) pair, with baselines."""
    from benchmarks._eval_data import evaluate_file, load_rows
    from llmvigil.evaluators.registry import available

    started = time.perf_counter()
    classes = available()
    rows: list[dict[str, Any]] = []

    eval_rows = load_rows("eval_dev.jsonl")
    present = {k for r in eval_rows for k in r.get("labels", {})}
    held = toxicity_held_out()
    for name in [*EVAL_DEV_TARGETS, *sorted(present - set(EVAL_DEV_TARGETS))]:
        if name not in present or name not in classes:
            continue
        r = evaluate_file(classes[name](), "eval_dev.jsonl", name)
        if name == "toxicity":
            rows.append(
                row(
                    "eval_dev",
                    "toxicity, shipped head (in-sample)",
                    r["items"],
                    r["scored"],
                    r["roc_auc"],
                    None,
                    "in-sample: the head was trained on these lines",
                    rates=r,
                )
            )
            rows.append(
                row(
                    "eval_dev",
                    "toxicity, head trained without eval_dev (unseen)",
                    held["eval_dev_lines"],
                    held["eval_dev_scored"],
                    held["eval_dev_unseen"],
                    EVAL_DEV_TARGETS["toxicity"],
                    rates=held["eval_dev_rates"],
                )
            )
        else:
            rows.append(
                row(
                    "eval_dev",
                    f"{name} (head trained on these lines too)"
                    if name in HEADS_ON_EVAL_DEV
                    else name,
                    r["items"],
                    r["scored"],
                    r["roc_auc"],
                    EVAL_DEV_TARGETS.get(name),
                    rates=r,
                )
            )
        rows += baseline_rows("eval_dev", "eval_dev.jsonl", name)

    r = evaluate_file(classes["factuality"](), "halueval_qa_dev.jsonl", "factuality")
    rows.append(
        row(
            "halueval_qa_dev",
            "factuality",
            r["items"],
            r["scored"],
            r["roc_auc"],
            HALUEVAL_TARGET,
            rates=r,
        )
    )
    rows += baseline_rows("halueval_qa_dev", "halueval_qa_dev.jsonl", "factuality")
    rows.append(
        row(
            "halueval_qa_dev, length-matched subset",
            "factuality",
            r["length_matched_items"],
            r["length_matched_items"],
            r["length_matched_roc_auc"],
            HALUEVAL_MATCHED_TARGET,
            "pairs whose lengths differ by at most one word",
            rates={
                "precision": r["length_matched_precision"],
                "recall": r["length_matched_recall"],
            },
        )
    )

    # Written for issue 18 before any tuning: data of the kinds the evaluators are
    # judged on away from the dev files.
    for file, path, name, target in VALIDATION_SETS:
        r = evaluate_file(classes[name](), path, name)
        rows.append(row(file, name, r["items"], r["scored"], r["roc_auc"], target, rates=r))
        rows += baseline_rows(file, path, name)

    # Written after the evaluators were tuned: how they fare on unseen lines of
    # eval_dev's kinds. Small, so for information only.
    for name in PROBE_EVALUATORS:
        r = evaluate_file(classes[name](), PROBE_PATH, name)
        rows.append(
            row(
                "probe_eval",
                name,
                r["items"],
                r["scored"],
                r["roc_auc"],
                None,
                "benchmarks/data/probe_eval.jsonl, written after tuning",
                rates=r,
            )
        )

    r = evaluate_file(classes["toxicity"](), "toxigen_dev.jsonl", "toxicity")
    rows.append(
        row(
            "toxigen_dev",
            "toxicity, shipped head (in-sample)",
            r["items"],
            r["scored"],
            r["roc_auc"],
            None,
            "in-sample: the head was trained on these lines",
            rates=r,
        )
    )
    # The logistic-regression baseline is trained on these very lines: left out here.
    rows += baseline_rows(
        "toxigen_dev",
        "toxigen_dev.jsonl",
        "toxicity",
        skip=("logistic regression on the sentence vector (trained on toxigen_dev)",),
    )
    n = held["toxigen_lines"]
    groups = len(held["groups"])
    splits = held["splits"]
    k = held["split_train_groups"]
    worst = min(splits, key=lambda x: x["roc_auc"])
    best = max(splits, key=lambda x: x["roc_auc"])
    sizes = sorted(x["lines"] for x in splits)
    split_name = f"toxicity, group splits ({k} training / {groups - k} held-out groups, one head)"
    rows.append(
        row(
            "toxigen_dev",
            f"{split_name}: mean of {len(splits)} splits",
            f"{sizes[0]}-{sizes[-1]} per split",
            f"{sizes[0]}-{sizes[-1]} per split",
            held["split_mean"],
            TOXIGEN_HELD_OUT_TARGET,
            rates=held["split_rates"],
        )
    )
    for label, split in (("worst", worst), ("best", best)):
        rows.append(
            row(
                "toxigen_dev",
                f"{split_name}: {label} split",
                split["lines"],
                split["lines"],
                split["roc_auc"],
                None,
                reference=TOXIGEN_HELD_OUT_TARGET,
            )
        )
    rows.append(
        row(
            "toxigen_dev",
            f"toxicity, leave-one-group-out: mean of {groups} groups",
            n,
            n,
            held["mean"],
            None,
            reference=TOXIGEN_HELD_OUT_TARGET,
        )
    )
    rows.append(
        row(
            "toxigen_dev",
            f"toxicity, leave-one-group-out: held-out scores of the {groups} heads pooled",
            n,
            n,
            held["pooled"],
            None,
            reference=TOXIGEN_HELD_OUT_TARGET,
            rates=held["pooled_rates"],
        )
    )
    worst_lines = next(g["lines"] for g in held["groups"] if g["group"] == held["min_group"])
    rows.append(
        row(
            "toxigen_dev",
            f"toxicity, leave-one-group-out: worst group ({held['min_group']})",
            worst_lines,
            worst_lines,
            held["min"],
            None,
            reference=TOXIGEN_HELD_OUT_TARGET,
        )
    )
    return {
        "rows": rows,
        "held_out": held,
        "backend": embedding_backend(),
        "seconds": time.perf_counter() - started,
    }


# -- throughput ----------------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names of the registered built-in evaluators (plug-ins left out), in registry order."""
    from llmvigil.evaluators.registry import BUILTIN_MODULES, available

    return [n for n, cls in available().items() if cls.__module__ in BUILTIN_MODULES]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (``ru_maxrss`` is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(db: str, spans: int, batch_size: int | None) -> None:
    """Run in a fresh process: import, load every model, then score ``spans`` spans of ``db``."""
    t0 = time.perf_counter()
    from llmvigil.config import EvaluatorSettings
    from llmvigil.evaluators.base import EvalItem
    from llmvigil.evaluators.runner import Runner, build_evaluators
    from llmvigil.storage import Store

    names = builtin_names()  # imports the evaluator modules
    t_import = time.perf_counter()

    from llmvigil.evaluators import vectors as vectors_module

    onnx_cached = None
    onnx_file = getattr(vectors_module, "_onnx_file", None)
    if onnx_file is not None:
        try:
            onnx_cached = onnx_file(vectors_module.default_model_path()).exists()
        except Exception:
            onnx_cached = None
    evaluators = build_evaluators(names)
    warm = EvalItem("warm-up", WARMUP["input"], WARMUP["output"], tuple(WARMUP["context"]), None)
    for evaluator in evaluators:
        evaluator.evaluate([warm])
    backend = str(getattr(vectors_module.shared_vectors(), "backend", "torch"))
    t_load = time.perf_counter()
    rss_load = peak_rss_mb()

    store = Store(f"duckdb:///{db}")
    settings = EvaluatorSettings()
    options: dict[str, Any] = {"kinds": settings.kinds}
    if batch_size:
        options["batch_size"] = batch_size
    runner = Runner(evaluators, **options)
    todo = store.count_spans_missing_evaluations(runner.wanted, kinds=runner.kinds)
    t_open = time.perf_counter()

    marks: list[tuple[float, int]] = []

    def on_batch(n: int) -> None:
        marks.append((time.perf_counter(), n))

    cpu_open = cpu_seconds()
    report = runner.run(store, max_spans=spans, on_batch=on_batch)
    t_run = time.perf_counter()
    cpu_run = cpu_seconds() - cpu_open
    store.close()
    rates, previous = [], t_open
    for moment, n in marks:
        rates.append(n / (moment - previous) if moment > previous else math.inf)
        previous = moment
    steady = sorted(rates[1:]) or rates
    result = {
        "evaluators": names,
        "batch_size": runner.batch_size,
        "kinds": list(runner.kinds or []),
        "todo": todo,
        "spans": report.spans,
        "batches": report.batches,
        "scored": dict(report.scored),
        "skipped": dict(report.skipped),
        "failed": dict(report.failed),
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "open_s": t_open - t_load,
        "run_s": t_run - t_open,
        "run_cpu_s": cpu_run,
        "in_process_s": t_run - t0,
        "spans_per_s": report.spans / (t_run - t_open) if t_run > t_open else math.nan,
        "median_batch_spans_per_s": steady[len(steady) // 2] if steady else math.nan,
        "backend": backend,
        "onnx_export_cached": onnx_cached,
        "rss_after_load_mb": rss_load,
        "peak_rss_mb": peak_rss_mb(),
    }
    print("RESULT " + json.dumps(result), flush=True)


def make_demo_store(folder: Path, spans: int) -> dict[str, Any]:
    """A DuckDB store of demo spans holding at least ``spans`` llm and chain spans."""
    from llmvigil.demo import run_demo
    from llmvigil.storage import Store

    calls = math.ceil(spans / 2)  # each request: a chain, an llm and a retrieval span
    db = folder / "demo.duckdb"
    started = time.perf_counter()
    with Store(f"duckdb:///{db}") as store:
        result = run_demo(store, folder / "spool", calls=calls)
    seconds = time.perf_counter() - started
    return {
        "db": db,
        "calls": calls,
        "rows": result.report.inserted,
        "kinds": dict(
            query_db(db, "SELECT kind, count(*) FROM spans GROUP BY kind ORDER BY 2 DESC")
        ),
        "seconds": seconds,
    }


def query_db(db: Path, sql: str) -> list[tuple]:
    """Rows of a read-only query on a DuckDB file no other process holds."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


DISTINCT_TEXTS = (
    "SELECT count(DISTINCT input_text), count(DISTINCT output_text) FROM spans "
    "WHERE kind IN ('llm', 'chain')"
)


def make_distinct(source: Path, target: Path) -> dict[str, int]:
    """Copy ``source`` and write a per-request order number into each question and answer.

    The llm and chain spans of one request keep the same texts, as in real
    traffic; the retrieved passages (a knowledge base) still repeat.
    """
    import duckdb

    shutil.copyfile(source, target)
    con = duckdb.connect(str(target))
    try:
        con.execute(
            r"""
            UPDATE spans SET
                input_text = regexp_replace(spans.input_text, '\?\s*$',
                                            ' (order ' || r.n || ')?'),
                output_text = regexp_replace(spans.output_text, '^([^.!?;]*)',
                                             '\1 (order ' || r.n || ')')
            FROM (SELECT trace_id, 10000 + row_number() OVER (ORDER BY trace_id) AS n
                  FROM (SELECT DISTINCT trace_id FROM spans)) AS r
            WHERE spans.trace_id = r.trace_id AND spans.kind IN ('llm', 'chain')
            """
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return distinct_texts(target)


def distinct_texts(db: Path) -> dict[str, int]:
    """Distinct questions and answers among the spans the runner scores."""
    ((inputs, outputs),) = query_db(db, DISTINCT_TEXTS)
    return {"inputs": int(inputs), "outputs": int(outputs)}


def run_child(db: Path, spans: int, batch_size: int | None) -> dict[str, Any]:
    """Score ``db`` in a fresh interpreter; its timings plus the wall time from spawn."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(db)]
    command += ["--spans", str(spans)]
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"throughput run failed (exit code {done.returncode})")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = wall
    result["cold_spans_per_s"] = result["spans"] / wall
    return result


def throughput(spans: int, batch_size: int | None) -> dict[str, Any]:
    """Demo spans, then two cold runner processes: the demo texts as they are, and distinct."""
    folder = Path(tempfile.mkdtemp(prefix="llmvigil-bench-eval-"))
    try:
        demo = make_demo_store(folder, spans)
        distinct_db = folder / "distinct.duckdb"  # copied before any run writes scores
        variants = [
            ("demo spans as generated", demo["db"], distinct_texts(demo["db"])),
            (
                "each request's question and answer distinct",
                distinct_db,
                make_distinct(demo["db"], distinct_db),
            ),
        ]
        runs = []
        for variant, db, texts in variants:
            runs.append({"variant": variant, "texts": texts, **run_child(db, spans, batch_size)})
        return {"demo": {k: v for k, v in demo.items() if k != "db"}, "runs": runs}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- reporting -----------------------------------------------------------------------------


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return "—"
    if value is None or math.isnan(value):
        return "MISSED (no value)"
    return "met" if value >= target else "MISSED"


def gate_text(gate: float | None) -> str:
    """How the head meets profanity-check in the scored weights."""
    return "head alone" if gate is None else f"profanity-check gate {gate:g}"


def rate(value: float | None) -> str:
    """A precision or recall cell: '—' where there is none (baselines, nothing flagged)."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2f}"


def quality_markdown(q: dict[str, Any]) -> list[str]:
    lines = [
        "| File | Evaluator | Lines | Scored | ROC AUC | Precision | Recall | Target | Status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in q["rows"]:
        target = f">= {r['target']:.2f}" if r["target"] is not None else "—"
        status = verdict(r["roc_auc"], r["target"])
        if r.get("baseline"):
            status = "naive baseline, same lines"
        elif r["target"] is None and "in-sample" in r["evaluator"]:
            status = "in-sample, not judged"
        elif r["target"] is None and r.get("reference") is not None:
            side = "at or above" if r["roc_auc"] >= r["reference"] else "below"
            status = f"for information, not judged ({side} {r['reference']:.2f})"
        elif r["target"] is None:
            status = "for information"
        auc = f"{r['roc_auc']:.3f}" if r.get("baseline") else f"**{r['roc_auc']:.3f}**"
        lines.append(
            f"| {r['file']} | {r['evaluator']} | {r['lines']} | {r['scored']} "
            f"| {auc} | {rate(r.get('precision'))} | {rate(r.get('recall'))} "
            f"| {target} | {status} |"
        )
    probe = [r for r in q["rows"] if r["file"] == "probe_eval"]
    if probe:
        sizes = sorted(int(r["lines"]) for r in probe)
        lines += [
            "",
            f"probe_eval: lines in eval_dev's format (`{PROBE_PATH.relative_to(ROOT)}`), written "
            "for llmvigil after the evaluators were tuned, to see how they carry over to unseen "
            f"lines of the same kinds; {sizes[0]} to {sizes[-1]} labelled lines per evaluator, "
            "too few to judge on. Two changes followed from reading its scores, so those lines "
            "are no longer unseen: factuality v2's number-binding check (its factuality lines, "
            "which include swapped values, scored 0.800 before) and relevance v2 reading "
            "'..., so ...' as a reason (ranking unchanged, a correct 'why' answer no longer "
            "scored near the threshold). `llmvigil evaluate --dataset` on the file shows each "
            "line's score and why.",
        ]
    held = q["held_out"]
    k = held["split_train_groups"]
    lines += [
        "",
        f"Toxicity, group splits of toxigen_dev (the judged measure), by split: one head trained "
        f"on the {k} training groups plus eval_dev's toxicity lines and the contrast lines "
        f"scores every line of the other {len(held['groups']) - k} groups, ROC AUC over those "
        f"lines ({gate_text(held['gate'])}, as shipped):",
        "",
        "| Split | Training groups | Held-out lines | Toxic | ROC AUC |",
        "|---:|---|---:|---:|---:|",
    ]
    for i, split in enumerate(held["splits"], 1):
        lines.append(
            f"| {i} | {', '.join(split['train'])} | {split['lines']} | {split['toxic']} "
            f"| {split['roc_auc']:.3f} |"
        )
    lines += [
        "",
        "Toxicity, leave-one-group-out on toxigen_dev, by held-out group (head trained on the "
        f"other {len(held['groups']) - 1} groups plus eval_dev's toxicity lines and the contrast "
        f"lines; {gate_text(held['gate'])}, as shipped):",
        "",
        "| Held-out group | Lines | Toxic | ROC AUC |",
        "|---|---:|---:|---:|",
    ]
    for g in held["groups"]:
        lines.append(f"| {g['group']} | {g['lines']} | {g['toxic']} | {g['roc_auc']:.3f} |")
    return lines


def toxigen_measures_markdown(held: dict[str, Any]) -> list[str]:
    """What each toxigen_dev held-out measure is, and which one the target is judged on."""
    groups = len(held["groups"])
    k = held["split_train_groups"]
    return [
        "**Which toxigen_dev measure is which.** The target (ROC AUC >= "
        f"{TOXIGEN_HELD_OUT_TARGET:.2f} on statements about groups the head was not trained "
        "on) is judged on the *group splits*: "
        f"{len(held['splits'])} seeded random splits of the {groups} groups into {k} training "
        f"and {groups - k} held-out groups; for each, ONE head (trained on the {k} groups plus "
        "eval_dev's toxicity lines, calibrated as shipped) scores every line of the held-out "
        "groups together, and the ROC AUC is over those lines. That is how the shipped head "
        "is used on new groups: one head, one calibration, ranking statements about several "
        "unseen groups against each other. The mean over the splits is judged; the worst "
        f"and best split are shown. The splits are {len(held['splits'])} of the "
        f"{math.comb(groups, k)} possible ones: the mean's standard error over the draw of "
        f"splits is {held['split_sem']:.3f}. The split heads see {k} groups where the shipped "
        f"head sees {groups}, so this measure leans pessimistic. *Leave-one-group-out* "
        f"({groups} heads, each trained on {groups - 1} groups and scoring the remaining one) "
        "is shown for "
        "information, not judged: its mean averages per-group AUCs, each ranking lines "
        "about one group only (no offsets between groups to get wrong), and its pooled "
        f"figure ranks together the scores of {groups} different heads with {groups} "
        "different calibrations, which is neither the shipped head nor any single head.",
    ]


def throughput_markdown(t: dict[str, Any]) -> list[str]:
    lines = [
        "| Spans | Distinct questions / answers | Imports s | Model load s | Store open s "
        "| Run s | Run CPU s | Steady-state spans/s | Median batch spans/s "
        "| From process start spans/s | Peak RSS MB (after load) | Target | Status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in t["runs"]:
        lines.append(
            f"| {r['variant']} | {r['texts']['inputs']:,} / {r['texts']['outputs']:,} "
            f"| {r['import_s']:.1f} | {r['load_s']:.1f} | {r['open_s']:.2f} | {r['run_s']:.1f} "
            f"| {r['run_cpu_s']:.1f} "
            f"| **{r['spans_per_s']:,.0f}** | {r['median_batch_spans_per_s']:,.0f} "
            f"| {r['cold_spans_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} "
            f"({r['rss_after_load_mb']:,.0f}) | >= {SPANS_PER_S_TARGET:.0f} "
            f"| {verdict(r['spans_per_s'], SPANS_PER_S_TARGET)} |"
        )
    first = t["runs"][0]
    demo = t["demo"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in demo["kinds"].items() if v is not None)
    scored = ", ".join(f"{k} {v:,}" for k, v in first["scored"].items())
    skipped = ", ".join(f"{k} {v:,}" for k, v in first["skipped"].items() if v)
    failed = ", ".join(f"{k} {v:,}" for k, v in first["failed"].items() if v)
    cached = first.get("onnx_export_cached")
    lines += [
        "",
        f"- Spans: {first['spans']:,} llm and chain spans from `run_demo` ({demo['calls']:,} "
        f"requests, {demo['rows']:,} spans in all: {kinds}; generated in "
        f"{demo['seconds']:.1f} s), scored by a `Runner` with every built-in evaluator "
        f"({', '.join(first['evaluators'])}), batch size {first['batch_size']} (default), "
        f"kinds {', '.join(first['kinds'])}, in {first['batches']} batches.",
        f"- Scores written (first run): {scored}"
        + (f"; skipped: {skipped}" if skipped else "")
        + (f"; failed: {failed}" if failed else "")
        + ". Demo spans that end in an upstream error have no answer, so the evaluators "
        "that need one skip them; factuality also leaves the llm spans unscored, as they carry "
        "no retrieved context (their chain span does) and no reference.",
        f"- Embedding backend: **{first['backend']}**"
        + (
            " (ONNX export already in the user cache)"
            if cached
            else " (ONNX export made during the model load)"
            if cached is False and first["backend"] == "onnx"
            else ""
        )
        + ".",
        "- Each run is a fresh Python process: imports (llmvigil, the evaluator modules and "
        "what they import), model load (each evaluator scores one warm-up item, which loads "
        "the embedding model, the toxicity head and profanity-check), store open (and a count "
        "of the spans owed), then `Runner.run`. Steady-state spans/s = spans / run time; "
        "median batch leaves out the first batch; 'from process start' divides by the whole "
        "wall time from spawning the interpreter to its exit.",
        "- Run CPU s: user + system CPU time of the runner process during the run, all its "
        "threads (ONNX Runtime uses both cores); other work on the machine slows the wall "
        "time, much less the CPU time.",
        "- Peak RSS: `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the runner process at "
        "its end (and right after the model load).",
        "- The demo assistant repeats six questions, so after the first batch nearly every "
        "text is in the process's embedding cache and the run measures the evaluators' own "
        "Python, numpy and the store. The second run writes a per-request order number into "
        "each question and answer (the llm and chain span of a request still share them, "
        "the retrieved passages still repeat), so every request is embedded anew: closer to "
        "real traffic.",
    ]
    return lines


def section(q: dict[str, Any] | None, t: dict[str, Any] | None, command: str, load: tuple) -> str:
    lines = header(SECTION, command, PACKAGES, load)
    targets: list[str] = []
    if q is not None:
        lines += [
            "",
            "### Quality: ROC AUC on the dev datasets",
            "",
            "Each evaluator on the lines of each file labelled for it (`benchmarks/_eval_data.py`:"
            " same loaders, length-matched subset and ROC AUC as the tests), embedding backend "
            f"**{q['backend']}**, {q['seconds']:.0f} s in all.",
            "",
            "**In-sample vs held-out.** The shipped toxicity head "
            "(`llmvigil/evaluators/weights/toxicity_head.json`) was trained on all of "
            "toxigen_dev, on eval_dev's toxicity lines and on "
            "`datasets/toxicity_contrast_dev.jsonl`, so its AUC on those lines is "
            "in-sample and says little about new text; it is shown but not judged. The "
            "toxicity targets are judged on heads trained by `scripts/train_toxicity_head.py`'s "
            "own code without the lines they score, then run through the real "
            "`ToxicityEvaluator` (same embeddings, only the weights "
            "differ): on eval_dev, a head trained on toxigen_dev and the contrast lines; on "
            "toxigen_dev, the "
            "group splits below. The relevance and completeness heads were "
            "trained on eval_dev's relevance and completeness lines (with "
            "`datasets/relevance_pairs_dev.jsonl` and `datasets/completeness_pairs_dev.jsonl`), "
            "so their eval_dev figures are in-sample too; their training scripts print "
            "leave-one-question-out estimates. Factuality's framing head was trained against "
            "the sentences of eval_dev's and halueval_qa_dev's factuality lines as statements. "
            "The rules of all evaluators were developed while looking at these files, so the "
            "validation sets below and the held-out sets the datasets README mentions remain "
            "the real test.",
            "",
            *toxigen_measures_markdown(q["held_out"]),
            "",
            "**Precision and recall** are of the lines each evaluator flags at its shipped "
            "threshold (a score below it fails; for toxicity, a score at or above it is toxic): "
            "precision is the share of flagged lines that are bad (label 0, or toxic), recall "
            "the share of bad lines flagged, what an alert on failing scores would catch and "
            "miss. For the toxicity group splits they are means over the splits. Each "
            "evaluator's rows are followed by the naive baselines on the same lines, computed "
            "in this run (`benchmarks/_baselines.py`; they have no threshold, so ROC AUC only).",
            "",
            "**Validation sets** (`benchmarks/data/VALIDATION.md`): factuality_rag, "
            "factuality_rag_2, relevance_question_sentence, relevance_question_sentence_2, "
            "toxicity_functional, toxicity_unseen_groups and completeness_heldout (and "
            "completeness_heldout_2, before completeness v4; completeness_heldout_3, before "
            "completeness v5; completeness_heldout_4, after v5 was first judged on _3 and "
            "before the changes that judgement led to; completeness_heldout_5 and _6, after v5 "
            "was judged on _4, and never tuned on; relevance_question_sentence_3 and "
            "factuality_rag_3, after relevance v4 and factuality v4 were judged on the _2 sets; "
            "relevance_question_sentence_4 and factuality_rag_4, after factuality v5 was chosen "
            "on factuality_rag_3; factuality_rag_5 and _6, after v5 was judged on _4 and on _5) "
            "were "
            "written for issue 18 before any evaluator was tuned "
            "against them, each of one kind of the held-out data the evaluators are judged on; "
            "their targets are issue 18's. Completeness v5 is judged on completeness_heldout_5 "
            "and _6: its measures were chosen looking at the first four.",
            "",
            *quality_markdown(q),
        ]
        for r in q["rows"]:
            if r["target"] is not None:
                targets.append(
                    f"{r['file']} {r['evaluator']}: {r['roc_auc']:.3f} "
                    f"(>= {r['target']:.2f}) {verdict(r['roc_auc'], r['target'])}"
                )
    if t is not None:
        lines += ["", "### Throughput: the default suite over demo spans", ""]
        lines += throughput_markdown(t)
        for r in t["runs"]:
            targets.append(
                f"throughput, {r['variant']}: {r['spans_per_s']:,.0f} spans/s "
                f"(>= {SPANS_PER_S_TARGET:.0f}) {verdict(r['spans_per_s'], SPANS_PER_S_TARGET)}"
            )
    if targets:
        lines += ["", "### Targets", ""] + [f"- {line}" for line in targets]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=10_000, help="scored spans to time")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="runner batch size (default: Runner's)"
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=DATASETS,
        metavar="DIR",
        help="folder of the dev files (default: the repository's datasets/)",
    )
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in RESULTS.md")
    parser.add_argument("--skip-quality", action="store_true", help="throughput only")
    parser.add_argument("--skip-throughput", action="store_true", help="quality only")
    parser.add_argument("--child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.spans, args.batch_size)
        return 0
    if args.write and (args.skip_quality or args.skip_throughput):
        parser.error("--write needs the whole benchmark (no --skip-*)")
    from benchmarks._eval_data import use_datasets_dir

    try:
        use_datasets_dir(args.datasets)
    except FileNotFoundError as exc:
        parser.error(f"--datasets: {exc}")
    command = f"python benchmarks/bench_evaluators.py --spans {args.spans}"
    if args.batch_size:
        command += f" --batch-size {args.batch_size}"
    load_start = load_average()
    t = None if args.skip_throughput else throughput(args.spans, args.batch_size)
    q = None if args.skip_quality else quality()
    text = section(q, t, command, (load_start, load_average()))
    print(text)
    if args.write:
        write_section(RESULTS, SECTION, text)
        print(f"updated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
