"""Evaluation of every task from hand-written predictions: metric values equal to the reference libraries
(scikit-learn, Google's rouge-score, SQuAD v1.1 worked by hand), paired bootstrap tests, the worst examples, the
report's content, and the quality gate on the task's metric."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fmops_testkit import FakeAws, fixed_clock, jsonl, load_event
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score, hamming_loss
from sklearn.preprocessing import MultiLabelBinarizer

from fmops.config import CommonSettings
from fmops.errors import EvaluationError
from fmops.lifecycle.evaluation import evaluate, evaluation_metrics
from fmops.lifecycle.registry import metric_metadata, model_quality_statistics, quality_gate, significantly_worse
from fmops.schemas import parse
from fmops.schemas.steps import EvaluateEvent, PairedTest, QualityGateEvent, RegisterModelEvent

RUN = "churn-3f2a9c1d0b7e"
REPORTS = f"s3://fmops-reports/runs/{RUN}/"
CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"


# ------------------------------------------------------------------------------------------------ fixtures


def event_for(task: str, champion: bool = False, **run: Any) -> dict[str, Any]:
    event = load_event("evaluate")
    event["run"].update(task=task, metric=None, threshold=None, **run)
    if task not in ("classification", "multilabel") and "base_model" not in run:
        event["run"]["base_model"] = "s3://fmops-artifacts/models/tiny/"
    event["dataset"]["labels"] = ["a", "b", "c"] if task == "multilabel" else []
    if champion:
        event["evaluation_spec"]["champion_arn"] = CHAMPION_ARN
    return event


def evaluate_rows(aws: FakeAws, rows: list[dict[str, Any]], event: dict[str, Any]):  # type: ignore[no-untyped-def]
    aws.s3_client.put_object(Bucket="fmops-artifacts", Key=f"evaluation/{RUN}/predictions.jsonl", Body=jsonl(*rows))
    request = parse(EvaluateEvent, event)
    return evaluate(request, s3=aws.s3, settings=CommonSettings.from_env(), clock=fixed_clock)


def document(aws: FakeAws) -> dict[str, Any]:
    return json.loads(aws.read(REPORTS + "evaluation.json"))  # type: ignore[no-any-return]


REFERENCES = [["a"], ["a", "b"], ["b"], ["c"], ["a", "c"], ["b", "c"]]
ML_BASE = [["a"], ["a"], ["a"], ["a"], ["a"], ["a"]]
ML_TUNED = [["a"], ["a", "b"], ["b", "c"], ["c"], ["a"], ["b", "c"]]
ML_CHAMPION = [["a"], ["b"], ["b"], ["c"], ["a", "c"], ["c"]]


def multilabel_rows(champion: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "line": i + 1,
            "text": f"ticket {i}",
            "reference": REFERENCES[i],
            "base": ML_BASE[i],
            "finetuned": ML_TUNED[i],
            **({"champion": ML_CHAMPION[i]} if champion else {}),
        }
        for i in range(len(REFERENCES))
    ]


def sklearn_multilabel(y_true: list[list[str]], y_pred: list[list[str]]) -> dict[str, float]:
    binarizer = MultiLabelBinarizer().fit(y_true + y_pred)
    t, p = binarizer.transform(y_true), binarizer.transform(y_pred)
    return {
        "subset_accuracy": accuracy_score(t, p),
        "hamming_loss": hamming_loss(t, p),
        "f1_micro": f1_score(t, p, average="micro", zero_division=0),
        "f1_macro": f1_score(t, p, average="macro", zero_division=0),
        "f1_samples": f1_score(t, p, average="samples", zero_division=0),
    }


DOCUMENTS = [
    "The council approved the new park budget on Monday after a long debate.",
    "Heavy rain flooded the main road and closed two schools.",
    "The team won the final with a late goal in extra time.",
    "Prices of fresh vegetables rose sharply this winter.",
]
SUMMARIES = [
    "Council approves park budget.",
    "Rain floods road, schools closed.",
    "Team wins final late.",
    "Vegetable prices rise.",
]
SUM_BASE = ["The council met on Monday.", "It rained.", "The final was played.", "Prices changed."]
SUM_TUNED = [
    "Council approved the park budget.",
    "Rain flooded road and closed schools.",
    "Team won the final.",
    "Fresh vegetable prices rose.",
]


def summarization_rows() -> list[dict[str, Any]]:
    return [
        {
            "line": i + 1,
            "prompt": "Summarize the following text.\n\n" + DOCUMENTS[i],
            "reference": [SUMMARIES[i]],
            "base": SUM_BASE[i],
            "finetuned": SUM_TUNED[i],
        }
        for i in range(4)
    ]


def rouge_reference(predictions: list[str], references: list[str]) -> dict[str, float]:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    scores = [scorer.score(r, p) for p, r in zip(predictions, references, strict=True)]
    return {name: sum(s[name].fmeasure for s in scores) / len(scores) for name in scores[0]}


QA_GOLD = [["France", "in France"], ["1889"], ["the Seine", "Seine river"], ["Gustave Eiffel"]]
QA_BASE = ["Paris", "in 1900", "a river", "Eiffel"]
QA_TUNED = ["France", "1889", "The Seine river.", "Alexandre Gustave Eiffel"]


def qa_rows() -> list[dict[str, Any]]:
    return [
        {
            "line": i + 1,
            "prompt": f"Answer the question ... {i}",
            "reference": QA_GOLD[i],
            "base": QA_BASE[i],
            "finetuned": QA_TUNED[i],
        }
        for i in range(4)
    ]


# --------------------------------------------------------------------------------------------- multilabel


def test_multilabel_metrics_equal_scikit_learn(aws: FakeAws) -> None:
    result = evaluate_rows(aws, multilabel_rows(), event_for("multilabel"))
    for model, predictions in (("base", ML_BASE), ("finetuned", ML_TUNED)):
        summary = (result.base_metrics if model == "base" else result.finetuned_metrics).values()
        expected = sklearn_multilabel(REFERENCES, predictions)
        assert summary == pytest.approx(expected), model
    assert result.metric == "f1_micro" and result.test_count == 6
    doc = document(aws)
    assert doc["task"] == "multilabel" and doc["labels"] == ["a", "b", "c"]
    assert set(doc["finetuned"]["ci"]) == set(evaluation_metrics("multilabel"))
    low, high = doc["finetuned"]["ci"]["f1_micro"]
    assert low <= doc["finetuned"]["f1_micro"] <= high
    # per-label one-vs-rest scores: "c" is in 3 references (lines 4-6), predicted on lines 3, 4, 6: right twice
    assert doc["finetuned"]["per_label"]["c"] == {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}
    for label in ("a", "b", "c"):
        gold, guess = [int(label in r) for r in REFERENCES], [int(label in p) for p in ML_TUNED]
        assert doc["finetuned"]["per_label"][label]["f1"] == pytest.approx(f1_score(gold, guess))


def test_multilabel_paired_tests_are_bootstrap_only(aws: FakeAws) -> None:
    result = evaluate_rows(aws, multilabel_rows(champion=True), event_for("multilabel", champion=True))
    assert set(result.paired_tests) == {"finetuned_vs_base", "finetuned_vs_champion"}
    versus = result.paired_tests["finetuned_vs_base"]
    assert versus.mcnemar_p_value is None and versus.baseline_only_correct is None
    expected = (
        sklearn_multilabel(REFERENCES, ML_TUNED)["f1_micro"] - sklearn_multilabel(REFERENCES, ML_BASE)["f1_micro"]
    )
    assert versus.delta == pytest.approx(expected)
    assert versus.delta_ci[0] <= versus.delta <= versus.delta_ci[1]
    assert versus.significant == (versus.delta_ci[0] > 0 or versus.delta_ci[1] < 0)
    assert result.champion_metrics is not None
    assert result.champion_metrics.values()["f1_micro"] == pytest.approx(
        sklearn_multilabel(REFERENCES, ML_CHAMPION)["f1_micro"]
    )
    # worst examples: the fine-tuned model's lowest example F1 first (lines 3 and 5 are wrong)
    worst = document(aws)["worst_examples"]
    assert [(w["line"], w["finetuned_score"]) for w in worst] == [(3, pytest.approx(2 / 3)), (5, pytest.approx(2 / 3))]


def test_multilabel_predictions_must_be_label_lists(aws: FakeAws) -> None:
    rows = multilabel_rows()
    rows[2]["finetuned"] = "b"
    with pytest.raises(EvaluationError, match="line 3: field 'finetuned' must be a list of strings"):
        evaluate_rows(aws, rows, event_for("multilabel"))


# ------------------------------------------------------------------------------------------ summarization


def test_summarization_metrics_equal_rouge_score(aws: FakeAws) -> None:
    result = evaluate_rows(aws, summarization_rows(), event_for("summarization"))
    assert result.metric == "rougeL"
    assert result.base_metrics.values() == pytest.approx(rouge_reference(SUM_BASE, SUMMARIES))
    assert result.finetuned_metrics.values() == pytest.approx(rouge_reference(SUM_TUNED, SUMMARIES))
    # classification fields stay absent
    assert result.finetuned_metrics.accuracy is None and "accuracy" not in result.finetuned_metrics.model_dump()
    versus = result.paired_tests["finetuned_vs_base"]
    assert versus.metric == "rougeL"
    tuned, base = rouge_reference(SUM_TUNED, SUMMARIES), rouge_reference(SUM_BASE, SUMMARIES)
    assert versus.delta == pytest.approx(tuned["rougeL"] - base["rougeL"])
    table = list(csv.DictReader(io.StringIO(aws.read(REPORTS + "metrics.csv").decode())))
    assert [(r["model"], r["metric"]) for r in table] == [
        (m, name) for m in ("base", "finetuned") for name in ("rouge1", "rouge2", "rougeL", "rougeLsum")
    ]
    assert float(table[6]["value"]) == pytest.approx(tuned["rougeL"])


def test_summarization_worst_examples_are_the_lowest_rouge_l(aws: FakeAws) -> None:
    evaluate_rows(aws, summarization_rows(), event_for("summarization"))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(SUM_TUNED, SUMMARIES, strict=True)]
    order = sorted(range(4), key=lambda i: (scores[i], i))
    worst = document(aws)["worst_examples"]
    assert [w["line"] for w in worst] == [i + 1 for i in order if scores[i] < 1]
    assert [w["finetuned_score"] for w in worst] == pytest.approx([scores[i] for i in order if scores[i] < 1])
    assert worst[0]["prompt"].startswith("Summarize the following text.")
    copied = [json.loads(line) for line in aws.read(REPORTS + "predictions.jsonl").splitlines()]
    assert [c["finetuned"] for c in copied] == SUM_TUNED and copied[0]["reference"] == [SUMMARIES[0]]


# --------------------------------------------------------------------------------------------------- qa


def test_qa_metrics_follow_squad_on_the_0_100_scale(aws: FakeAws) -> None:
    result = evaluate_rows(aws, qa_rows(), event_for("qa"))
    # Worked by hand (SQuAD v1.1 normalisation: lower case, no punctuation or articles; best gold answer):
    # "France" = EM 1, F1 1; "1889" = 1, 1; "The Seine river." -> "seine river" = "Seine river": 1, 1;
    # "Alexandre Gustave Eiffel" vs "gustave eiffel": EM 0, F1 = 2 * (2/3 * 1) / (2/3 + 1) = 0.8.
    tuned = result.finetuned_metrics.values()
    assert tuned == pytest.approx({"exact_match": 75.0, "f1": 100 * (1 + 1 + 1 + 0.8) / 4})
    # base: "Paris" 0; "in 1900" 0; "a river" -> "river" vs "seine river": F1 2*(1*0.5)/1.5 = 2/3; "Eiffel" vs
    # "gustave eiffel": 2/3
    assert result.base_metrics.values() == pytest.approx({"exact_match": 0.0, "f1": 100 * (2 / 3 + 2 / 3) / 4})
    assert (result.metric, parse(EvaluateEvent, event_for("qa")).run.threshold) == ("f1", 50.0)
    versus = result.paired_tests["finetuned_vs_base"]
    assert versus.delta == pytest.approx(tuned["f1"] - 100 * (4 / 3) / 4)
    worst = document(aws)["worst_examples"]
    assert [(w["line"], w["finetuned_score"]) for w in worst] == [(4, pytest.approx(80.0))]


def test_a_generative_line_without_a_reference_list_is_named(aws: FakeAws) -> None:
    rows = qa_rows()
    rows[1]["reference"] = []
    with pytest.raises(EvaluationError, match="line 2: field 'reference' must not be empty"):
        evaluate_rows(aws, rows, event_for("qa"))
    rows = qa_rows()
    rows[3]["base"] = ["x"]
    with pytest.raises(EvaluationError, match="line 4: field 'base' must be a string"):
        evaluate_rows(aws, rows, event_for("qa"))


def test_champion_predictions_on_some_lines_only_are_refused(aws: FakeAws) -> None:
    rows = qa_rows()
    rows[0]["champion"] = "France"
    with pytest.raises(EvaluationError, match="field 'champion' is missing on some lines only"):
        evaluate_rows(aws, rows, event_for("qa"))
    with pytest.raises(EvaluationError, match="no champion predictions although a champion was planned"):
        evaluate_rows(aws, qa_rows(), event_for("qa", champion=True))


# -------------------------------------------------------------------------------------------------- chat


def test_chat_scores_rouge_and_squad(aws: FakeAws) -> None:
    rows = qa_rows()
    for row in rows:
        row["reference"] = row["reference"][:1]
    result = evaluate_rows(aws, rows, event_for("chat", champion=False))
    tuned = result.finetuned_metrics.values()
    assert set(tuned) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match", "f1"}
    gold = [g[0] for g in QA_GOLD]
    assert {k: tuned[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")} == pytest.approx(
        rouge_reference(QA_TUNED, gold)
    )
    # "The Seine river." vs "the Seine" only: EM 0; F1 2 * (1/2 * 1) / 1.5 = 2/3
    assert tuned["exact_match"] == 50.0 and tuned["f1"] == pytest.approx(100 * (1 + 1 + 2 / 3 + 0.8) / 4)


# ------------------------------------------------------------------------------------------------ report


class Tables(HTMLParser):
    """Text of each table's cells, by the table's class."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = found.get("class", "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def report(aws: FakeAws) -> tuple[str, dict[str, list[list[str]]]]:
    html = aws.read(REPORTS + "report.html").decode()
    page = Tables()
    page.feed(html)
    return html, page.tables


def test_the_summarization_report_shows_rouge_with_intervals_and_the_worst_summaries(aws: FakeAws) -> None:
    rows = summarization_rows()
    rows[0]["finetuned"] = "<b>bold</b> & council"
    evaluate_rows(aws, rows, event_for("summarization"))
    html, tables = report(aws)
    assert [row[0] for row in tables["metrics"][1:]] == ["ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"]
    assert tables["metrics"][0] == ["metric", "Base model", "Fine-tuned", "fine-tuned − base"]
    assert re.search(r"\[\d\.\d{4}, \d\.\d{4}\]", tables["metrics"][3][2])  # value and its interval
    assert 'class="gate" data-metric="rougeL"' in html
    assert tables["tests"][0] == [
        "comparison",
        "difference [95% CI]",
        "bootstrap p (one-sided)",
        "significant (interval excludes 0)",
    ]
    assert tables["tests"][1][0] == "Fine-tuned vs base model" and tables["tests"][1][1].startswith("ROUGE-L ")
    assert tables["worst"][0] == ["line", "prompt", "reference", "fine-tuned (ROUGE-L)", "Base model"]
    assert "Per class" not in html and "Confusion matrices" not in html and "confusion" not in tables
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; council" in html
    assert "task <b>summarization</b>" in html


def test_the_multilabel_report_has_a_per_label_table(aws: FakeAws) -> None:
    evaluate_rows(aws, multilabel_rows(champion=True), event_for("multilabel", champion=True))
    html, tables = report(aws)
    assert tables["per-label"][0][:2] == ["label", "support"]
    assert [row[0] for row in tables["per-label"][2:]] == ["a", "b", "c"]
    assert "Hamming loss (lower is better)" in [row[0] for row in tables["metrics"]]
    hamming = next(row for row in tables["metrics"] if row[0].startswith("Hamming"))
    assert hamming[0] and tables["worst"][0][:3] == ["line", "text", "true labels"]
    assert "Confusion matrices" not in html


def test_the_qa_report_plots_the_0_100_scale(aws: FakeAws) -> None:
    evaluate_rows(aws, qa_rows(), event_for("qa"))
    html, tables = report(aws)
    assert [row[0] for row in tables["metrics"][1:]] == ["Exact match (0-100)", "Token F1 (0-100)"]
    assert ">100</text>" in html and ">50</text>" in html  # the forest plot's axis
    assert "<title>threshold 50.0000</title>" in html


# -------------------------------------------------------------------------------------- gate and registry


def gate_event(task: str, finetuned: dict[str, float], **evaluation: Any) -> QualityGateEvent:
    raw = load_event("quality_gate")
    raw["run"].update(task=task, metric=None, threshold=None)
    if task not in ("classification", "multilabel"):
        raw["run"]["base_model"] = "s3://fmops-artifacts/models/tiny/"
    metric = {"qa": "f1", "summarization": "rougeL"}[task]
    raw["evaluation"].update(finetuned_metrics=finetuned, base_metrics=finetuned, metric=metric, **evaluation)
    return parse(QualityGateEvent, raw)


def test_the_gate_uses_the_qa_metric_on_the_0_100_scale(aws: FakeAws) -> None:
    settings = CommonSettings.from_env()
    passed = quality_gate(
        gate_event("qa", {"exact_match": 40.0, "f1": 61.5}), sagemaker=aws.sagemaker, settings=settings
    )
    assert passed.passed and (passed.metric, passed.value, passed.threshold) == ("f1", 61.5, 50.0)
    assert passed.reason == "quality gate passed: f1 61.5000 >= threshold 50.0000; no approved champion yet"
    failed = quality_gate(
        gate_event("qa", {"exact_match": 40.0, "f1": 45.0}), sagemaker=aws.sagemaker, settings=settings
    )
    assert not failed.passed and failed.reason == "quality gate failed: f1 45.0000 is below the threshold 50.0000"


def bootstrap_test(low: float, high: float) -> PairedTest:
    return PairedTest(
        baseline="champion",
        metric="rougeL",
        delta=(low + high) / 2,
        delta_ci=[low, high],
        bootstrap_p_value=0.4,
        significant=low > 0 or high < 0,
        verdict="words",
    )


def test_a_bootstrap_only_test_is_worse_when_its_interval_is_below_zero() -> None:
    assert significantly_worse(bootstrap_test(-0.2, -0.01))
    assert not significantly_worse(bootstrap_test(-0.05, 0.02))
    assert not significantly_worse(bootstrap_test(0.01, 0.2))


def test_a_generative_champion_on_the_same_split_is_compared_by_the_bootstrap(aws: FakeAws) -> None:
    champion = {"rouge1": 0.5, "rouge2": 0.3, "rougeL": 0.45, "rougeLsum": 0.45}
    tuned = {**champion, "rougeL": 0.42}
    event = gate_event(
        "summarization",
        tuned,
        champion_arn=CHAMPION_ARN,
        champion_metrics=champion,
        paired_tests={"finetuned_vs_champion": bootstrap_test(-0.08, 0.02).model_dump()},
    )
    result = quality_gate(event, sagemaker=aws.sagemaker, settings=CommonSettings.from_env())
    assert result.passed and result.champion_value == 0.45
    assert "paired bootstrap: rougeL difference -0.0300, 95% interval [-0.0800, +0.0200]" in result.reason
    worse = gate_event(
        "summarization",
        tuned,
        champion_arn=CHAMPION_ARN,
        champion_metrics=champion,
        paired_tests={"finetuned_vs_champion": bootstrap_test(-0.08, -0.01).model_dump()},
    )
    assert not quality_gate(worse, sagemaker=aws.sagemaker, settings=CommonSettings.from_env()).passed


def test_registration_records_the_tasks_metrics() -> None:
    raw = load_event("register_model")
    raw["run"].update(task="summarization", metric=None, threshold=None, base_model="s3://m/tiny/")
    raw["evaluation"].update(
        metric="rougeL",
        finetuned_metrics={"rouge1": 0.5, "rouge2": 0.25, "rougeL": 0.4, "rougeLsum": 0.41},
        base_metrics={"rouge1": 0.2, "rouge2": 0.05, "rougeL": 0.1, "rougeLsum": 0.11},
    )
    event = parse(RegisterModelEvent, raw)
    assert metric_metadata(event) == {
        "rougeL": "0.400000",
        "rouge1": "0.500000",
        "rouge2": "0.250000",
        "rougeLsum": "0.410000",
        "base_rougeL": "0.100000",
        "base_rouge1": "0.200000",
        "base_rouge2": "0.050000",
        "base_rougeLsum": "0.110000",
    }
    statistics = model_quality_statistics(event)
    assert "multiclass_classification_metrics" not in statistics
    assert statistics["fmops"]["task"] == "summarization" and statistics["fmops"]["metrics"]["rougeL"] == 0.4
    classification = parse(RegisterModelEvent, load_event("register_model"))
    assert set(metric_metadata(classification)) == {"accuracy", "f1_macro", "base_accuracy", "base_f1_macro"}
    assert "multiclass_classification_metrics" in model_quality_statistics(classification)


# -------------------------------------------------------------------------------------------------- Bedrock


class GenerativeRuntime:
    """Bedrock runtime stand-in (Nova shape): the base model repeats the prompt's first word, the custom model
    answers the reference summary of the document it is asked about."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def invoke_json(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append((model_id, body))
        asked = body["messages"][-1]["content"][0]["text"]
        answer = self.answers[asked] if model_id.startswith("arn:") else asked.split()[0]
        return {"output": {"message": {"role": "assistant", "content": [{"text": f" {answer}\n"}]}}}


def test_bedrock_summarization_asks_both_models_trainings_prompt_and_scores_the_text(aws: FakeAws) -> None:
    records = [{"document": d, "summary": s} for d, s in zip(DOCUMENTS, SUMMARIES, strict=True)]
    aws.s3_client.put_object(Bucket="fmops-datasets", Key="prepared/test.jsonl", Body=jsonl(*records))
    event = event_for("summarization", backend="bedrock", base_model="amazon.nova-micro-v1:0")
    event["run"]["hyperparameters"] = {"epochCount": "1", "max_new_tokens": "40"}
    del event["evaluation_spec"]
    event["dataset"]["test_uri"] = "s3://fmops-datasets/prepared/test.jsonl"
    event["training"].update(backend="bedrock", custom_model_arn="arn:aws:bedrock:us-east-1:1:custom-model/x")
    runtime = GenerativeRuntime(
        {"Summarize the following text.\n\n" + d: s for d, s in zip(DOCUMENTS, SUMMARIES, strict=True)}
    )
    request = parse(EvaluateEvent, event)
    result = evaluate(request, s3=aws.s3, settings=CommonSettings.from_env(), runtime=runtime, clock=fixed_clock)
    assert len(runtime.bodies) == 8
    assert {model for model, _ in runtime.bodies} == {
        "amazon.nova-micro-v1:0",
        "arn:aws:bedrock:us-east-1:1:custom-model/x",
    }
    assert all(body["inferenceConfig"]["maxTokens"] == 40 for _, body in runtime.bodies)
    assert result.finetuned_metrics.values() == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "rougeLsum": 1.0}
    )
    assert result.base_metrics.values() == pytest.approx(rouge_reference(["Summarize"] * 4, SUMMARIES))
    doc = document(aws)
    assert doc["champion_note"] == "the Bedrock branch evaluates no champion" and doc["worst_examples"] == []
    copied = [json.loads(line) for line in aws.read(REPORTS + "predictions.jsonl").splitlines()]
    assert copied[0]["prompt"] == "Summarize the following text.\n\n" + DOCUMENTS[0]
    assert copied[0]["finetuned"] == SUMMARIES[0] and copied[0]["base"] == "Summarize"
