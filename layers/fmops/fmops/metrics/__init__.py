"""Evaluation metrics in pure Python (numpy is never imported), checked against the reference implementations.

- classification (scikit-learn): :func:`accuracy`, :func:`precision_recall_f1`, :func:`per_class_scores`,
  :func:`confusion_matrix`, :func:`classification_report`;
- multi-label (scikit-learn): :func:`subset_accuracy`, :func:`hamming_loss`,
  :func:`multilabel_precision_recall_f1`, :func:`multilabel_report`;
- summarisation (Google's rouge-score 0.1.2): :func:`rouge_score`, :func:`rouge_scores`, :func:`rouge_corpus`,
  :func:`porter_stem` (NLTK's Porter stemmer);
- question answering (SQuAD v1.1 ``evaluate-v1.1.py``): :func:`exact_match`, :func:`token_f1`,
  :func:`squad_evaluate`, :func:`normalize_answer`;
- generation: :func:`perplexity`, :func:`mean_token_nll`;
- statistics: :func:`bootstrap_ci`, :func:`bootstrap_cis`, :func:`paired_bootstrap_test`, :func:`mcnemar`;
- :func:`compute_metrics`: the headline metrics of a task from evaluation rows, with bootstrap intervals.
"""

from fmops.metrics.classification import (
    ClassificationReport,
    ClassScores,
    accuracy,
    classification_report,
    confusion_matrix,
    per_class_scores,
    precision_recall_f1,
)
from fmops.metrics.compute import HEADLINE_METRICS, compute_metrics
from fmops.metrics.generation import mean_token_nll, perplexity
from fmops.metrics.multilabel import (
    MultilabelReport,
    hamming_loss,
    multilabel_precision_recall_f1,
    multilabel_report,
    subset_accuracy,
)
from fmops.metrics.qa import SquadScores, exact_match, normalize_answer, squad_evaluate, token_f1
from fmops.metrics.rouge import ROUGE_TYPES, RougeScore, porter_stem, rouge_corpus, rouge_score, rouge_scores
from fmops.metrics.stats import (
    McNemarResult,
    PairedBootstrapResult,
    bootstrap_ci,
    bootstrap_cis,
    mcnemar,
    mcnemar_from_counts,
    mean_of,
    paired_bootstrap_test,
)

__all__ = [
    "HEADLINE_METRICS",
    "ROUGE_TYPES",
    "ClassScores",
    "ClassificationReport",
    "McNemarResult",
    "MultilabelReport",
    "PairedBootstrapResult",
    "RougeScore",
    "SquadScores",
    "accuracy",
    "bootstrap_ci",
    "bootstrap_cis",
    "classification_report",
    "compute_metrics",
    "confusion_matrix",
    "exact_match",
    "hamming_loss",
    "mcnemar",
    "mcnemar_from_counts",
    "mean_of",
    "mean_token_nll",
    "multilabel_precision_recall_f1",
    "multilabel_report",
    "normalize_answer",
    "paired_bootstrap_test",
    "per_class_scores",
    "perplexity",
    "porter_stem",
    "precision_recall_f1",
    "rouge_corpus",
    "rouge_score",
    "rouge_scores",
    "squad_evaluate",
    "subset_accuracy",
    "token_f1",
]
