"""The training throughput benchmark on the CPU: tiny full and LoRA runs, the FLOPs/MFU arithmetic, the chunked
LM-head loss, clipping folded into fused AdamW, regional compilation, and the RESULTS.md section it writes.
No wall-clock assertions: timings on a shared CPU are noise."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

import torch.nn.functional as F  # noqa: E402, N812

from fmops_training import acceleration as acc  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CPU = torch.device("cpu")

# TinyLlama-1.1B shape: hidden 2048, 22 layers, 32 heads, 4 KV heads (head dim 64), intermediate 5632, vocab 32000.
H, L, KV, FF, V, S = 2048, 22, 4 * 64, 5632, 32000, 2048
TINYLLAMA_PARAMS = 2 * V * H + L * (2 * H * H + 2 * H * KV + 3 * H * FF + 2 * H) + H
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning"),
]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


benchmark = _load("fmops_training_benchmark", ROOT / "training" / "benchmark.py")
throughput = _load("fmops_training_throughput", ROOT / "benchmarks" / "training_throughput.py")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------- arithmetic
def test_tinyllama_has_1_100_048_384_parameters_with_untied_embeddings() -> None:
    from transformers import LlamaForCausalLM

    assert TINYLLAMA_PARAMS == 1_100_048_384
    cfg = benchmark.llama_config("tinyllama-1.1b", 2048, CPU)
    assert cfg.tie_word_embeddings is False
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    assert acc.count_parameters(model) == 1_100_048_384
    assert acc.count_parameters(model, trainable_only=True) == 1_100_048_384


def test_flops_per_token_matches_the_hand_computation() -> None:
    attention = 12 * L * H * S
    assert attention == 1_107_296_256
    assert acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S) == 6 * 1_100_048_384 + attention == 7_707_586_560
    assert acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S, lora=True) == 4 * 1_100_048_384 + attention
    assert acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S, lora=True) == 5_507_489_792


def test_mfu_reproduces_the_reference_table() -> None:
    full = acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S)
    lora = acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S, lora=True)
    peak = acc.REFERENCE_PEAK_FLOPS
    # STACK.md, one H200: Trainer full 45,066 tok/s = 44.0 %, compiled loop 68,698 = 67.0 %, LoRA 39,229 = 27.3 %.
    assert acc.mfu(45_066, full, peak) == pytest.approx(0.440, abs=5e-4)
    assert acc.mfu(68_698, full, peak) == pytest.approx(0.670, abs=5e-4)
    assert acc.mfu(39_229, lora, peak) == pytest.approx(0.273, abs=5e-4)
    # The goals: 70 % MFU for full fine-tuning is 71,748 tokens/s; 2x the Trainer + peft LoRA is 78,458.
    assert acc.mfu(71_748, full, peak) == pytest.approx(0.70, abs=1e-4)
    assert acc.mfu(2.0, 3.0, 4.0) == 1.5
    with pytest.raises(ValueError):
        acc.mfu(1.0, 1.0, 0.0)


def test_matmul_peak_is_measured_in_fp32_on_the_cpu() -> None:
    flops = acc.measure_matmul_peak(CPU, dtype=torch.bfloat16, size=64, iters=2, warmup=1)
    assert math.isfinite(flops) and flops > 0


def test_device_helpers_on_the_cpu() -> None:
    assert acc.attention_implementation(CPU) == "sdpa"
    assert acc.bf16_supported(CPU) is False
    with acc.autocast(CPU):
        assert not torch.is_autocast_enabled("cpu")
    if not torch.cuda.is_available():
        assert acc.enable_tf32() is False
    assert acc.peak_memory_bytes(CPU) > 10 * 2**20
    assert acc.sdpa_backend_in_use(CPU, heads=4, kv_heads=2, seq=16, head_dim=8) != "unknown"
    with pytest.raises(ValueError):
        with acc.attention_backend("nonsense"):
            pass


# ------------------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("chunk", [1, 5, 16, 37, 1000])
def test_chunked_cross_entropy_equals_torch_value_and_gradients(chunk: int) -> None:
    gen = torch.Generator().manual_seed(chunk)
    hidden = (0.5 * torch.randn(3, 13, 24, generator=gen)).requires_grad_()
    weight = (0.5 * torch.randn(50, 24, generator=gen)).requires_grad_()
    targets = torch.randint(0, 50, (3, 13), generator=gen)
    targets[0, 4] = targets[2, 12] = acc.IGNORE_INDEX

    ref = F.cross_entropy((hidden @ weight.t()).reshape(-1, 50), targets.reshape(-1), ignore_index=-100)
    ref_h, ref_w = torch.autograd.grad(ref, (hidden, weight))
    loss = acc.linear_cross_entropy(hidden, weight, targets, chunk_tokens=chunk)
    got_h, got_w = torch.autograd.grad(loss, (hidden, weight))

    assert loss.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-6)
    assert (got_h - ref_h).abs().max().item() < 1e-6
    assert (got_w - ref_w).abs().max().item() < 1e-6
    # Scaling by the incoming gradient, as when the loss is part of a larger objective.
    (2.5 * acc.linear_cross_entropy(hidden, weight, targets, chunk_tokens=chunk)).backward()
    assert (hidden.grad - 2.5 * ref_h).abs().max().item() < 1e-5


def test_chunked_cross_entropy_frozen_weight_and_no_grad() -> None:
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(20, 8, generator=gen, requires_grad=True)
    weight = torch.randn(30, 8, generator=gen)  # frozen: no weight-gradient work
    targets = torch.randint(0, 30, (20,), generator=gen)
    ref = F.cross_entropy(hidden @ weight.t(), targets)
    loss = acc.linear_cross_entropy(hidden, weight, targets, chunk_tokens=6)
    loss.backward()
    assert loss.item() == pytest.approx(ref.item(), abs=1e-6)
    (ref_h,) = torch.autograd.grad(F.cross_entropy(hidden @ weight.t(), targets), (hidden,))
    assert (hidden.grad - ref_h).abs().max().item() < 1e-6
    with torch.no_grad():
        value = acc.linear_cross_entropy(hidden, weight, targets, chunk_tokens=6)
    assert not value.requires_grad and value.item() == pytest.approx(ref.item(), abs=1e-6)
    with pytest.raises(ValueError):
        acc.linear_cross_entropy(hidden, weight, targets[:5])


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_causal_lm_loss_equals_the_models_own_loss_and_gradients(mode: str) -> None:
    passed, detail = benchmark.check_chunked_loss(CPU, mode)
    assert passed, detail


# -------------------------------------------------------------------------------------------- optimizer
@pytest.mark.parametrize("fused", [True, False])
def test_clip_folded_into_the_optimizer_equals_clip_grad_norm(fused: bool) -> None:
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3))
    b = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3))
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.AdamW(a.parameters(), lr=0.05, fused=fused)
    opt_b = torch.optim.AdamW(b.parameters(), lr=0.05, fused=fused)
    for step in range(4):
        x = torch.randn(5, 6) * (10 if step % 2 else 0.01)  # norms above and below the limit
        (a(x) ** 2).sum().backward()
        (b(x) ** 2).sum().backward()
        norm_a = torch.nn.utils.clip_grad_norm_(a.parameters(), 1.0)
        opt_a.step()
        opt_a.zero_grad(set_to_none=True)
        norm_b = acc.clip_grad_norm_and_step(opt_b, 1.0)
        opt_b.zero_grad(set_to_none=True)
        assert norm_b.item() == pytest.approx(norm_a.item(), rel=1e-6)
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert (pa - pb).abs().max().item() < 1e-6
    assert not hasattr(opt_b, "grad_scale")


# --------------------------------------------------------------------------------------------- training
def test_tiny_preset_runs_full_and_lora_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "ours.json"
    argv = ["--preset", "tiny", "--mode", "both", "--seq", "16", "--steps", "2", "--warmup", "1", "--json", str(out)]
    assert benchmark.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["preset"] == "tiny" and not report["failures"]
    on_cpu = report["device"] == "cpu"
    assert report["measured_peak_flops"] > 0 and report["reference_peak_flops"] == 790e12
    rows = {r["mode"]: r for r in report["results"]}
    assert set(rows) == {"full", "lora"}
    for mode, row in rows.items():
        assert row["tokens_per_s"] > 0 and row["s_per_step"] > 0 and row["peak_mem_gib"] > 0
        assert row["batch"] == 2 and row["seq"] == 16 and len(row["losses"]) == 3
        assert all(math.isfinite(x) for x in row["losses"])
        assert row["compiled_layers"] is not on_cpu  # no compile on a CPU unless asked
        n = row["n_params"]
        assert n == 202_048  # embeddings, 2 layers, norm and LM head of the tiny config
        assert row["flops_per_token"] == acc.flops_per_token(n, 2, 64, 16, lora=mode == "lora")
        assert row["mfu_measured_peak"] == pytest.approx(
            row["flops_per_token"] * row["tokens_per_s"] / report["measured_peak_flops"]
        )
        assert row["mfu_reference_peak"] == pytest.approx(row["flops_per_token"] * row["tokens_per_s"] / 790e12)
    assert rows["lora"]["trainable_params"] < rows["full"]["trainable_params"] == 202_048


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_loss_falls_on_a_repeated_batch(mode: str) -> None:
    passed, detail = benchmark.check_loss_falls(CPU, mode)
    assert passed, detail


def test_compile_layers_is_a_no_op_on_the_cpu_unless_forced() -> None:
    t = benchmark.build("tiny", "full", CPU, 16, 4, compile_=None)
    assert not t.compiled and not acc.layers_compiled(t.model)
    messages: list[str] = []
    acc.compile_layers(t.model, echo=messages.append)
    assert messages and "not compiling" in messages[0] and not acc.layers_compiled(t.model)


@pytest.mark.slow  # ~20 s of CPU for the first compile (seconds with a warm inductor cache)
def test_compile_layers_keeps_outputs_gradients_and_state_dict_keys() -> None:
    available, why = acc.compile_available()
    if not available:
        pytest.skip(f"torch.compile cannot run here: {why}")
    from transformers import LlamaForCausalLM

    cfg = benchmark.llama_config("tiny", 32, CPU)
    torch.manual_seed(0)
    eager = LlamaForCausalLM(cfg)
    compiled = LlamaForCausalLM(cfg)
    compiled.load_state_dict(eager.state_dict())
    keys = list(compiled.state_dict())
    assert acc.compile_layers(compiled, force=True) is compiled
    assert acc.layers_compiled(compiled) and list(compiled.state_dict()) == keys
    x = benchmark.random_batches(1, 2, 32, 1000, CPU)[0]
    try:
        le = acc.causal_lm_loss(eager, x)
        lc = acc.causal_lm_loss(compiled, x, compiled=True)
        le.backward()
        lc.backward()
        assert lc.item() == pytest.approx(le.item(), rel=1e-5)
        for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters(), strict=True):
            assert torch.allclose(pe.grad, pc.grad, rtol=1e-4, atol=1e-6), name
        stats = acc.compile_stats()
        assert stats["graph_breaks"] == 0 and stats["unique_graphs"] >= 1
    finally:
        benchmark.reset_compiler()


# ------------------------------------------------------------------------------------------ the report
def _reference(device: str, trainer_full: float, trainer_lora: float, loop: float | None) -> dict[str, Any]:
    fpt_full = acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S)
    fpt_lora = acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S, lora=True)
    rows = [
        {"variant": "1_trainer_full", "tokens_per_s": trainer_full, "flops_per_token": fpt_full},
        {"variant": "2_trainer_lora", "tokens_per_s": trainer_lora, "flops_per_token": fpt_lora},
    ]
    if loop is not None:
        rows.append({"variant": "3_loop_fused_compiled", "tokens_per_s": loop, "flops_per_token": fpt_full})
    for r in rows:
        r.update(batch=8, seq=S, s_per_step=8 * S / r["tokens_per_s"], peak_mem_gib=float("nan"))
    return {"device": device, "results": rows, "failures": []}


def _ours(device: str, full: float, lora: float) -> dict[str, Any]:
    rows = []
    for mode, tps in (("full", full), ("lora", lora)):
        fpt = acc.flops_per_token(TINYLLAMA_PARAMS, L, H, S, lora=mode == "lora")
        rows.append(
            {
                "mode": mode,
                "variant": f"fmops_{mode}",
                "batch": 8,
                "seq": S,
                "tokens_per_s": tps,
                "s_per_step": 8 * S / tps,
                "peak_mem_gib": 30.0,
                "flops_per_token": fpt,
                "n_params": TINYLLAMA_PARAMS,
                "mfu_reference_peak": acc.mfu(tps, fpt, 790e12),
                "mfu_measured_peak": acc.mfu(tps, fpt, 800e12),
                "sdpa_kernel": "flash",
                "warmup_step_s": [40.0, 0.3],
            }
        )
    return {
        "device": device,
        "device_name": "NVIDIA H200" if device == "cuda" else "cpu (x86_64, 2 torch threads)",
        "gpu_memory_gib": 139.8,
        "torch": "2.11.0",
        "transformers": "5.17.0",
        "peft": "0.18.0",
        "preset": "tinyllama-1.1b",
        "config": benchmark.PRESETS["tinyllama-1.1b"]["config"],
        "seq": S,
        "batch": 8,
        "warmup_steps": 4,
        "timed_steps": 16,
        "measured_peak_flops": 800e12,
        "reference_peak_flops": 790e12,
        "date": "2026-01-01",
        "results": rows,
        "failures": [],
    }


def test_ratios_and_goals_of_a_gpu_report() -> None:
    ours, ref = _ours("cuda", 75_000, 90_000), _reference("NVIDIA H200", 45_000, 40_000, 68_000)
    r = throughput.ratios(ours, ref)
    assert r["full_vs_trainer"] == pytest.approx(75_000 / 45_000)
    assert r["lora_vs_trainer_peft"] == pytest.approx(90_000 / 40_000)
    assert r["full_vs_compiled_loop"] == pytest.approx(75_000 / 68_000)
    heading, body, summary = throughput.compose(ours, ref)
    assert heading == throughput.HEADING_GPU and summary["device_name"] == "NVIDIA H200"
    assert "**NVIDIA H200**" in body and "75,000" in body and "[flash attention]" in body
    assert "Goals: full fine-tuning ≥ 70 % MFU (of 7.9e+14): 73.2 %, met;" in body
    assert "LoRA ≥ 2× the Trainer + peft tokens/s: 2.25×, met." in body
    _, slow, _ = throughput.compose(_ours("cuda", 60_000, 70_000), ref)
    assert "NOT met" in slow and "2.25" not in slow


def test_a_cpu_report_never_claims_gpu_numbers(tmp_path: Path) -> None:
    ours, ref = _ours("cpu", 1_000, 800), _reference("cpu", 900, 600, None)
    heading, body, _ = throughput.compose(ours, ref, command="python benchmarks/training_throughput.py")
    assert heading == throughput.HEADING_CPU
    assert "GPU numbers are not measured here" in body and "Goals" not in body and "H200" not in body
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    out = tmp_path / "out"
    out.mkdir()
    throughput.write_outputs(out, heading, body, {"ratios": {}}, results)
    text = results.read_text()
    assert "## Other\n\nkept" in text and f"## {throughput.HEADING_CPU}" in text
    assert json.loads((out / "throughput.json").read_text()) == {"ratios": {}}
    assert (out / "section.md").read_text().startswith(f"## {heading}")


def test_from_dir_rebuilds_the_section_from_a_runs_files(tmp_path: Path) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "fmops.json").write_text(json.dumps(_ours("cuda", 75_000, 90_000)))
    (tmp_path / "ref" / "results.json").write_text(json.dumps(_reference("NVIDIA H200", 45_000, 40_000, 68_000)))
    results = tmp_path / "RESULTS.md"
    assert throughput.main(["--from-dir", str(tmp_path), "--results", str(results)]) == 0
    assert f"## {throughput.HEADING_GPU}" in results.read_text()
    assert throughput.main(["--from-dir", str(tmp_path / "missing"), "--no-write"]) == 1


def test_the_reference_is_found_in_bench_ref_or_shared(tmp_path: Path) -> None:
    script = tmp_path / throughput.REFERENCE_NAME
    script.write_text("# stand-in\n")
    assert throughput.find_reference(tmp_path) == script
    assert throughput.find_reference(script) == script
    found = throughput.find_reference(None)
    assert found is None or found.name == throughput.REFERENCE_NAME


def test_chunked_cross_entropy_in_bf16_stays_close_to_fp32() -> None:
    """The GPU path: bf16 products (autocast's dtype), fp32 softmax and accumulation."""
    gen = torch.Generator().manual_seed(3)
    hidden = (0.5 * torch.randn(64, 32, generator=gen)).requires_grad_()
    weight = (0.5 * torch.randn(100, 32, generator=gen)).requires_grad_()
    targets = torch.randint(0, 100, (64,), generator=gen)
    ref = F.cross_entropy(hidden @ weight.t(), targets)
    ref_h, ref_w = torch.autograd.grad(ref, (hidden, weight))
    loss = acc.linear_cross_entropy(hidden, weight, targets, chunk_tokens=16, compute_dtype=torch.bfloat16)
    got_h, got_w = torch.autograd.grad(loss, (hidden, weight))
    assert loss.dtype == torch.float32 and got_h.dtype == got_w.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-2)
    assert (got_h - ref_h).abs().max().item() < 2e-2 * ref_h.abs().max().item()
    assert (got_w - ref_w).abs().max().item() < 2e-2 * ref_w.abs().max().item()
    bf16_hidden = hidden.detach().bfloat16().requires_grad_()  # LoRA on a GPU: bf16 activations, frozen head
    value = acc.linear_cross_entropy(bf16_hidden, weight.detach().bfloat16(), targets, chunk_tokens=16)
    value.backward()
    assert bf16_hidden.grad is not None and bf16_hidden.grad.dtype == torch.bfloat16
    assert value.item() == pytest.approx(ref.item(), rel=2e-2)
