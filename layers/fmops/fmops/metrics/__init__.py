"""Evaluation metrics in pure Python (no numpy), matching scikit-learn's definitions."""

from fmops.metrics.classification import (
    ClassificationReport,
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)

__all__ = ["ClassificationReport", "accuracy", "classification_report", "confusion_matrix", "precision_recall_f1"]
