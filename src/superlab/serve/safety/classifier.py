"""The classifier layer: n-gram logistic regression over our labelled examples, offline.

No PyPI package ships a usable embedding model inside it (wordllama ships its weights but
fetches its tokenizer from the Hugging Face hub at load time), so the classifier is trained
at first use, in about a second, on ``examples.yaml``: TF-IDF character n-grams (2-5,
within word boundaries) plus word uni/bigrams, a multinomial logistic regression over
the 14 categories and ``benign``.

Thresholds: a category is flagged when its probability reaches its threshold. Each
threshold is tuned on the benign examples: 5-fold out-of-fold probabilities (so a benign
example is scored by a model that never saw it), the highest benign score for the
category plus a margin of 0.1, never below 0.35. "romantic comedy" is among the benign
examples, so S12's threshold sits above what such phrases score. A policy file may set a
threshold per category instead.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from superlab.serve.safety.policy import CATEGORIES, Flag

EXAMPLES = Path(__file__).with_name("examples.yaml")
FLOOR_THRESHOLD, MARGIN = 0.35, 0.1


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the safety classifier needs scikit-learn: pip install 'superlab[serve]' "
            "(or set `classifier: false` in the policy file)"
        ) from e
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union

    return (
        LogisticRegression,
        StratifiedKFold,
        cross_val_predict,
        make_pipeline,
        make_union,
        TfidfVectorizer,
    )


def _pipeline() -> Any:
    LogReg, _, _, make_pipeline, make_union, Tfidf = _sklearn()
    features = make_union(
        Tfidf(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
        Tfidf(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
    )
    return make_pipeline(features, LogReg(C=20.0, max_iter=5000, class_weight="balanced"))


@cache
def trained(path: Path = EXAMPLES) -> tuple[Any, dict[str, float]]:
    """The fitted pipeline and the tuned threshold per category."""
    _, KFold, cross_val_predict, *_ = _sklearn()
    data = yaml.safe_load(path.read_text())
    texts = [t for label in data for t in data[label]]
    labels = [label for label in data for _ in data[label]]
    unknown = set(labels) - set(CATEGORIES) - {"benign"}
    if unknown:
        raise ValueError(f"{path}: unknown label(s) {sorted(unknown)}")
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    oof = cross_val_predict(_pipeline(), texts, labels, cv=folds, method="predict_proba")
    classes = sorted(set(labels))
    benign_rows = [i for i, label in enumerate(labels) if label == "benign"]
    thresholds = {}
    for j, cat in enumerate(classes):
        if cat != "benign":
            worst = max(float(oof[i, j]) for i in benign_rows)
            thresholds[cat] = min(max(FLOOR_THRESHOLD, worst + MARGIN), 0.95)
    model = _pipeline().fit(texts, labels)
    return model, thresholds


class ClassifierCheck:
    """Flags each category whose probability reaches its threshold."""

    name = "classifier"

    def __init__(self, thresholds: dict[str, float] | None = None) -> None:
        self.model, tuned = trained()
        self.thresholds = tuned | (thresholds or {})

    def scores(self, text: str) -> dict[str, float]:
        """Probability of each class (the 14 categories and ``benign``)."""
        probs = self.model.predict_proba([text])[0]
        return dict(zip(self.model.classes_, (float(p) for p in probs), strict=True))

    def flags(self, text: str) -> list[Flag]:
        return [
            Flag(cat, p, self.name)
            for cat, p in self.scores(text).items()
            if cat in self.thresholds and p >= self.thresholds[cat]
        ]
