"""Causal LM instruction tuning pieces: prompts, completion-only labels, packing, the loss, generation."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
from tiny_models import make_tiny_llama, tiny_llama

from fmops_training.contract import Hyperparameters, parse_hyperparameters
from fmops_training.errors import DataError, HyperparameterError
from fmops_training.metrics_log import MetricLogger
from fmops_training.prompts import ANSWER, SUMMARIZE, Example, render, request_messages, segments, to_example
from fmops_training.tasks import IGNORE, CausalLMData, Encoded, block_causal_mask, causal_loss_sum, encode_example, pack

TEXTS = ["ticket about billing", "ticket about shipping", "hello world", "route it to returns"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny"), TEXTS * 20)
    return AutoModelForCausalLM.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))


# ------------------------------------------------------------------------------------------------ prompts
def test_every_generative_format_becomes_messages_with_references() -> None:
    pc = to_example({"prompt": "p", "completion": "c"})
    assert pc.messages == ({"role": "user", "content": "p"}, {"role": "assistant", "content": "c"})
    assert pc.references == ("c",)
    legacy = to_example(
        {"system": "s", "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    )
    assert [m["role"] for m in legacy.messages] == ["system", "user", "assistant"] and legacy.references == ("a",)
    bedrock = to_example(
        {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": "s"}],
            "messages": [
                {"role": "user", "content": [{"text": "u1"}]},
                {"role": "assistant", "content": [{"text": "a1"}]},
                {"role": "user", "content": [{"text": "u2"}]},
                {"role": "assistant", "content": [{"text": "a2"}]},
            ],
        }
    )
    assert bedrock.references == ("a2",) and len(bedrock.prompt_messages) == 4
    summ = to_example({"document": "d", "summary": "s"})
    assert summ.messages[0]["content"] == SUMMARIZE + "d" and summ.references == ("s",)
    qa = to_example({"context": "c", "question": "q", "answers": ["a", "b"]})
    assert qa.messages[0]["content"] == ANSWER.format(context="c", question="q") and qa.references == ("a", "b")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"prompt": "p"}, "field 'completion' must be a non-empty string"),
        ({"messages": [{"role": "user", "content": "u"}]}, "no assistant turn"),
        ({"messages": [{"role": "bot", "content": "u"}]}, r"messages\[0\].role' must be 'user' or 'assistant'"),
        ({"context": "c", "question": "q", "answers": []}, "field 'answers' must be a non-empty list"),
        ({"text": "t", "label": "x"}, "not a generative record"),
        ([1], "expected a JSON object"),
    ],
)
def test_bad_generative_records_name_the_line_and_field(obj: object, message: str) -> None:
    with pytest.raises(DataError, match=rf"^f\.jsonl line 7: .*{message}"):
        to_example(obj, "f.jsonl", 7)


def test_serving_inputs_become_messages() -> None:
    assert request_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(ValueError, match="last message must not be the assistant"):
        request_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


@pytest.mark.parametrize("chat_template", [True, False])
def test_segments_cover_the_rendered_text_and_mark_only_assistant_turns(tmp_path: Path, chat_template: bool) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_llama(tmp_path, TEXTS, chat_template=chat_template)))
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"},
        {"role": "assistant", "content": "A2"},
    ]
    pieces = segments(tokenizer, messages)
    assert "".join(t for t, _ in pieces) == render(tokenizer, messages, add_generation_prompt=False)
    learned = [t for t, learn in pieces if learn]
    assert len(learned) == 2 and learned[0].startswith("A1") and learned[1].startswith("A2")
    assert all(tokenizer.eos_token in t for t in learned)  # the model learns to stop
    assert not any("U1" in t or "S" in t for t in learned)


# ----------------------------------------------------------------------------------------- encoding, packing
def test_only_completion_tokens_are_learned_and_prompts_are_cut_from_the_left(tiny: tuple[object, object]) -> None:
    _, tokenizer = tiny
    messages = [{"role": "user", "content": "ticket about billing " * 6}, {"role": "assistant", "content": "billing"}]
    full, cut = encode_example(tokenizer, messages, 512)
    assert not cut and full.learn[-1] and not full.learn[0]
    learned = [i for i, keep in zip(full.ids, full.learn, strict=True) if keep]
    assert tokenizer.decode(learned).startswith("billing")
    short, cut = encode_example(tokenizer, messages, 20)
    assert cut and len(short.ids) == 20
    assert [i for i, keep in zip(short.ids, short.learn, strict=True) if keep] == learned  # the completion is kept


def test_pack_is_best_fit_and_keeps_every_example_once() -> None:
    lengths = [7, 3, 5, 2, 8, 1, 4]
    rows = pack(lengths, 10)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) == math.ceil(sum(lengths) / 10)  # 30 tokens fit exactly in 3 rows here
    assert pack(lengths, 10) == rows  # deterministic


def test_block_mask_isolates_examples_and_padding() -> None:
    seg = torch.tensor([[0, 0, 1, 1, -1]])
    allowed = block_causal_mask(seg, boolean=True)[0, 0]
    assert allowed[1, 0] and not allowed[2, 1] and allowed[3, 2] and not allowed[0, 1]
    assert allowed[4].tolist() == [False, False, False, False, True]  # padding sees only itself
    additive = block_causal_mask(seg, boolean=False)[0, 0]
    assert additive[2, 1] == torch.finfo(torch.float32).min and additive[3, 2] == 0


def _examples() -> list[Encoded]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for n, prompt in ((5, 2), (9, 6), (4, 1), (7, 3)):
        out.append(
            Encoded(torch.randint(4, 100, (n,), generator=gen).tolist(), [False] * prompt + [True] * (n - prompt))
        )
    return out


@pytest.mark.parametrize("boolean", [True, False])
def test_packed_rows_give_the_same_loss_as_one_example_per_row(boolean: bool) -> None:
    model = tiny_llama(seed=0).eval()  # type: ignore[attr-defined]
    if not boolean:
        model.config._attn_implementation = "eager"
    examples = _examples()
    packed = CausalLMData.build(examples, [], 16, packing=True, pad_id=0, boolean_mask=boolean)
    single = CausalLMData.build(examples, [], 16, packing=False, pad_id=0, boolean_mask=boolean)
    assert len(packed) < len(single) == 4
    batch_p, batch_s = packed.batch(range(len(packed))), single.batch(range(len(single)))
    assert packed.count(batch_p) == single.count(batch_s) == sum(sum(e.learn[1:]) for e in examples)
    with torch.no_grad():
        loss_p = causal_loss_sum(model, {k: v for k, v in batch_p.items() if k != "token_count"})
        loss_s = causal_loss_sum(model, {k: v for k, v in batch_s.items() if k != "token_count"})
        # Reference: each example alone through the model's own forward, summed over its learned tokens.
        reference = 0.0
        for e in examples:
            ids = torch.tensor([e.ids])
            logits = model(input_ids=ids).logits[0, :-1]
            targets = torch.tensor(e.ids[1:])
            keep = torch.tensor(e.learn[1:])
            reference += torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum").item()
    assert loss_p.item() == pytest.approx(reference, rel=1e-5)
    assert loss_s.item() == pytest.approx(reference, rel=1e-5)


def test_labels_are_ignored_on_prompts_and_padding() -> None:
    data = CausalLMData.build(_examples(), [], 16, packing=False, pad_id=0)
    batch = data.batch([0, 1])
    labels = batch["labels"]
    assert (labels[0, :1] == IGNORE).all() and labels[0, 1] != IGNORE  # prompt of 2: predicting token 2 is learned
    assert (labels[0, 5:] == IGNORE).all()  # padding


# ------------------------------------------------------------------------------------------ hyperparameters
def test_generative_tasks_default_to_smollm2_and_choices_are_checked() -> None:
    assert parse_hyperparameters({"task": "qa"}).base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert parse_hyperparameters({"task": "qa", "base_model": "x"}).base_model == "x"
    assert parse_hyperparameters({"packing": "false"}).packing is False
    with pytest.raises(HyperparameterError, match="task: must be one of classification, multilabel"):
        parse_hyperparameters({"task": "translation"})
    with pytest.raises(HyperparameterError, match="packing: could not parse 'maybe' as a boolean"):
        parse_hyperparameters({"packing": "maybe"})


# ----------------------------------------------------------------------------------- training and generation
def test_instruction_tuning_learns_and_early_stopping_keeps_the_best(tiny: tuple[object, object]) -> None:
    from fmops_training.loop import train_model
    from fmops_training.tasks import CausalLMData as Data

    model, tokenizer = tiny
    pairs = [("ticket about billing", "billing"), ("ticket about shipping", "shipping")] * 16
    encoded = [
        encode_example(tokenizer, [{"role": "user", "content": p}, {"role": "assistant", "content": c}], 64)[0]
        for p, c in pairs
    ]
    data = Data.build(encoded[:24], encoded[24:], 64, packing=True, pad_id=tokenizer.pad_token_id)
    before = data.evaluate(model, torch.device("cpu"), 8)["validation_loss"]
    hps = Hyperparameters(
        task="chat",
        epochs=40,
        batch_size=4,
        learning_rate=1e-2,
        eval_steps=2,
        early_stopping_patience=2,
        early_stopping_min_delta=0.5,
    )
    out = io.StringIO()
    result = train_model(model, data, hps, torch.device("cpu"), MetricLogger(out), lambda *a, **k: None)
    assert result.stopped_early and result.steps < 40 * len(data)
    assert result.best_metrics["validation_loss"] < before / 2
    kept = data.evaluate(model, torch.device("cpu"), 8)["validation_loss"]
    assert kept == pytest.approx(result.best_metrics["validation_loss"], rel=1e-5)  # the best weights are kept
    assert "name=validation_perplexity" in out.getvalue()

    from fmops_training.generation import generate

    answers = generate(
        model, tokenizer, [[{"role": "user", "content": "ticket about billing"}]] * 3, 4, 2, torch.device("cpu")
    )
    assert len(answers) == 3 and len(set(answers)) == 1  # greedy and batch-independent


def test_example_prompt_messages_stop_before_the_last_answer() -> None:
    example = Example(
        (
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ),
        ("d",),
    )
    assert [m["content"] for m in example.prompt_messages] == ["a", "b", "c"]


def test_inference_handlers_serve_a_generative_model(tmp_path: Path, tiny: tuple[object, object]) -> None:
    import sys

    from training_helpers import TRAINING_DIR

    sys.path.insert(0, str(TRAINING_DIR))
    import inference

    model, tokenizer = tiny
    model.save_pretrained(str(tmp_path))  # type: ignore[attr-defined]
    tokenizer.save_pretrained(str(tmp_path))  # type: ignore[attr-defined]
    (tmp_path / "fmops_model.json").write_text(json.dumps({"task": "chat", "hyperparameters": {"max_new_tokens": 3}}))
    loaded = inference.model_fn(tmp_path)
    data = inference.input_fn(
        json.dumps(
            {
                "inputs": ["ticket about billing", [{"role": "user", "content": "hello"}]],
                "parameters": {"max_new_tokens": 2},
            }
        ),
        "application/json",
    )
    out = json.loads(inference.output_fn(inference.predict_fn(data, loaded), "application/json"))
    assert len(out["predictions"]) == 2 and all(isinstance(p["generated_text"], str) for p in out["predictions"])
    bad = inference.input_fn(json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 0}}), "application/json")
    with pytest.raises(ValueError, match="max_new_tokens"):
        inference.predict_fn(bad, loaded)


def test_an_interrupted_lora_instruction_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """Spot safety for the generative path: LoRA adapters, packed rows, accumulation and early-stopping state
    all come back from the checkpoint (CPU, one thread: tolerance 0)."""
    from fmops_training.errors import TrainingInterrupted
    from fmops_training.loop import train_model
    from fmops_training.modeling import apply_lora

    torch.set_num_threads(1)
    examples = _examples() * 6
    data = CausalLMData.build(examples[:20], examples[20:], 24, packing=True, pad_id=0)
    hps = Hyperparameters(
        task="chat",
        epochs=3,
        batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        eval_steps=2,
        checkpoint_steps=3,
        lora_r=4,
        lora_dropout=0.1,
        seed=5,
    )

    def fresh() -> object:
        return apply_lora(tiny_llama(seed=hps.seed), 4, 16, 0.1, "auto", generative=True)

    echoed: list[str] = []

    def run(ckpt: Path | None, stop_at: int | None = None) -> tuple[object, object]:
        model = fresh()
        calls = {"n": 0}

        def stop() -> bool:
            calls["n"] += 1
            return stop_at is not None and calls["n"] >= stop_at

        result = train_model(
            model,
            data,
            hps,
            torch.device("cpu"),
            MetricLogger(io.StringIO()),
            lambda text, **_: echoed.append(text),
            checkpoint_dir=ckpt,
            stop_requested=stop,
        )
        return model, result

    straight, expected = run(None)
    with pytest.raises(TrainingInterrupted):
        run(tmp_path, stop_at=4)
    echoed.clear()
    resumed, result = run(tmp_path)
    assert any(line.startswith("fmops-train: resumed from step 4 ") for line in echoed), echoed
    a, b = straight.state_dict(), resumed.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result.evaluations == expected.evaluations  # type: ignore[attr-defined]
