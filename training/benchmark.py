"""Training throughput benchmark: a Llama causal LM from a config, random weights, random tokens.

    python training/benchmark.py [--preset tinyllama-1.1b|tiny] [--mode full|lora|both] [--seq N] [--batch N]
        [--steps N] [--warmup N] [--compile/--no-compile] [--json OUT] [--check]

Matches the shared GPU reference (``../shared/bench/gpu_finetune_baseline.py``) so that the numbers compare:
the same TinyLlama-shaped config (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632, vocab 32000,
untied embeddings, SDPA attention), sequence 2048, batch 8, every sequence full length (no padding, no
attention mask), labels = input ids, 4 warm-up steps then 16 timed steps with a device synchronize at both
ends of the timed window, tokens/s = batch × sequence / (seconds per step). Full fine-tuning keeps fp32
weights (the master copy) under bf16 autocast, lr 1e-5; LoRA (peft, r 16, alpha 32, dropout 0.05, q/k/v/o/
gate/up/down) has a frozen bf16 base and fp32 adapters under bf16 autocast, lr 2e-4. Both use our optimizer
and schedule (``fmops_training.loop.make_optimizer``: fused AdamW, no decay on biases and norms;
``lr_factor``: linear warm-up then cosine) and clip gradients at 1.0. On a CPU everything is fp32.

The speed-ups come from ``fmops_training.acceleration`` (the training loop uses the same functions):
regional compilation of the decoder layers (on CUDA by default), the chunked LM-head + cross-entropy that never
materialises the logits of all tokens, clipping folded into the fused AdamW kernel, TF32, no host syncs in the
timed window (losses stay on the device until the end).

Reports tokens/s, s/step, peak memory (``torch.cuda.max_memory_allocated``; peak RSS of the process on a CPU),
and MFU = FLOPs/token × tokens/s / peak, with FLOPs/token = 6·N + 12·L·H·S (full) or 4·N + 12·L·H·S (LoRA),
N all base-model parameters, against both a bf16 matmul peak measured on the same device in the same run and
the reference's 790e12. ``--check`` runs correctness checks on the tiny preset instead (exit status 1 on a
failure): the chunked loss equals the model's own loss (value and gradients), the loss falls on a repeated
batch (full and LoRA), and compiled layers give the eager losses.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `python -m training.benchmark` from the repository root
    sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from fmops_training import acceleration as acc  # noqa: E402
from fmops_training.loop import lr_factor, make_optimizer  # noqa: E402
from fmops_training.runtime import torch_threads  # noqa: E402

PRESETS: dict[str, dict[str, Any]] = {
    # The shared reference's model, sequence and batch.
    "tinyllama-1.1b": {
        "config": {
            "hidden_size": 2048,
            "num_hidden_layers": 22,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "intermediate_size": 5632,
            "vocab_size": 32000,
        },
        "seq": 2048,
        "batch": 8,
    },
    # The reference's --tiny config: runs in seconds on a CPU.
    "tiny": {
        "config": {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
            "vocab_size": 1000,
        },
        "seq": 64,
        "batch": 2,
    },
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LEARNING_RATE = {"full": 1e-5, "lora": 2e-4}
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
GIB = 2**30


def log(msg: str) -> None:
    print(f"[benchmark] {msg}", flush=True)


def llama_config(preset: str, seq: int, device: torch.device) -> Any:
    """The preset's ``LlamaConfig``: untied embeddings, no KV cache, SDPA attention."""
    from transformers import LlamaConfig

    return LlamaConfig(
        **PRESETS[preset]["config"],
        max_position_embeddings=max(seq, 2048),
        use_cache=False,
        tie_word_embeddings=False,
        attn_implementation=acc.attention_implementation(device),
    )


@dataclass
class Trainee:
    """A model ready to train, its optimizer and schedule, and ``step(input_ids) -> loss`` (a device tensor)."""

    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    n_params: int
    n_trainable: int
    compiled: bool
    fused_loss: bool
    step: Callable[[torch.Tensor], torch.Tensor]


def build(
    preset: str,
    mode: str,
    device: torch.device,
    seq: int,
    total_steps: int,
    *,
    compile_: bool | None = None,
    compile_mode: str | None = None,
    fused_loss: bool = True,
    chunk_tokens: int | None = None,
    lora_dropout: float = 0.05,
    lr: float | None = None,
    seed: int = 0,
) -> Trainee:
    """Build the model (random init, seeded), LoRA adapters in ``lora`` mode, compile, optimizer, schedule.

    ``compile_``: None compiles on CUDA only; True compiles on the CPU too. The base weights are bf16 for LoRA
    on a bf16 GPU (frozen), fp32 otherwise.
    """
    from transformers import LlamaForCausalLM

    if mode not in ("full", "lora"):
        raise ValueError(f"mode must be full or lora, not {mode!r}")
    cfg = llama_config(preset, seq, device)
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    if mode == "lora" and acc.bf16_supported(device):
        model = model.to(torch.bfloat16)
    n_params = acc.count_parameters(model)
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=lora_dropout,  # 0: peft puts nn.Identity there, no dropout pass at all
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=LORA_TARGETS,
        )
        model = get_peft_model(model, lora)  # adapters in fp32 (peft's autocast_adapter_dtype)
    model.train()
    if compile_ is not False:
        acc.compile_layers(model, force=bool(compile_), mode=compile_mode, echo=log)
    compiled = acc.layers_compiled(model)
    optimizer, _fused = make_optimizer(model, lr if lr is not None else LEARNING_RATE[mode], WEIGHT_DECAY)
    warmup = max(1, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, total_steps))

    def step(input_ids: torch.Tensor) -> torch.Tensor:
        with acc.autocast(device):
            if fused_loss:
                loss = acc.causal_lm_loss(model, input_ids, chunk_tokens=chunk_tokens, compiled=compiled)
            else:
                loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        acc.clip_grad_norm_and_step(optimizer, MAX_GRAD_NORM)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return Trainee(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        n_params=n_params,
        n_trainable=acc.count_parameters(model, trainable_only=True),
        compiled=compiled,
        fused_loss=fused_loss,
        step=step,
    )


def random_batches(n: int, batch: int, seq: int, vocab: int, device: torch.device, seed: int = 1) -> torch.Tensor:
    """``n`` batches of random token ids, [n, batch, seq], already on the device (no copies in the timed steps)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, batch, seq), generator=gen).to(device)


def reset_compiler() -> None:
    """Forget compiled graphs (between modes: a fresh start for the next model)."""
    from torch import _dynamo

    _dynamo.reset()


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_mode(args: argparse.Namespace, mode: str, device: torch.device, peak_flops: float) -> dict[str, Any]:
    """Build, warm up, time ``args.steps`` steps, and return the result row of one mode."""
    total = args.warmup + args.steps
    free_memory(device)
    acc.reset_peak_memory(device)
    t0 = time.perf_counter()
    trainee = build(
        args.preset,
        mode,
        device,
        args.seq,
        total,
        compile_=args.compile,
        compile_mode=args.compile_mode,
        fused_loss=args.fused_loss,
        chunk_tokens=args.chunk_tokens,
        lora_dropout=args.lora_dropout,
        seed=args.seed,
    )
    build_s = time.perf_counter() - t0
    n_params, n_trainable, compiled = trainee.n_params, trainee.n_trainable, trainee.compiled
    cfg = PRESETS[args.preset]["config"]
    log(
        f"{mode}: {n_params / 1e6:,.1f}M parameters ({n_trainable / 1e6:,.2f}M trained), built in {build_s:.1f} s, "
        f"compiled layers={compiled}, chunked loss={args.fused_loss}"
    )
    data = random_batches(min(total, 4), args.batch, args.seq, cfg["vocab_size"], device)
    losses: list[torch.Tensor] = []  # device tensors: read once, after the timed window
    warmup_s: list[float] = []
    try:
        with acc.attention_backend(args.attention_backend):
            heads = cfg["num_attention_heads"]
            sdpa = acc.sdpa_backend_in_use(
                device,
                heads=heads,
                kv_heads=cfg["num_key_value_heads"],
                seq=args.seq,
                head_dim=cfg["hidden_size"] // heads,
            )
            log(f"  SDPA kernel for this shape: {sdpa}")
            for i in range(args.warmup):
                started = time.perf_counter()
                losses.append(trainee.step(data[i % len(data)]))
                acc.synchronize(device)
                warmup_s.append(time.perf_counter() - started)
                log(f"  warm-up step {i + 1}: {warmup_s[-1]:.2f} s")
            acc.synchronize(device)
            start = time.perf_counter()
            for i in range(args.warmup, total):
                losses.append(trainee.step(data[i % len(data)]))
            acc.synchronize(device)
            elapsed = time.perf_counter() - start
        loss_values = torch.stack(losses).float().cpu().tolist()
    finally:
        del trainee, data, losses
        free_memory(device)
    s_per_step = elapsed / args.steps
    tokens_per_s = args.batch * args.seq / s_per_step
    lora = mode == "lora"
    fpt = acc.flops_per_token(n_params, cfg["num_hidden_layers"], cfg["hidden_size"], args.seq, lora=lora)
    bf16 = acc.bf16_supported(device)
    row = {
        "variant": f"fmops_{mode}",
        "mode": mode,
        "batch": args.batch,
        "seq": args.seq,
        "tokens_per_s": tokens_per_s,
        "s_per_step": s_per_step,
        "peak_mem_gib": acc.peak_memory_bytes(device) / GIB,
        "peak_mem_kind": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS of the process",
        "mfu_measured_peak": acc.mfu(tokens_per_s, fpt, peak_flops),
        "mfu_reference_peak": acc.mfu(tokens_per_s, fpt, args.reference_peak),
        "flops_per_token": fpt,
        "formula": "4*N+12*L*H*S" if lora else "6*N+12*L*H*S",
        "n_params": n_params,
        "trainable_params": n_trainable,
        "compiled_layers": compiled,
        "compile_mode": args.compile_mode,
        "chunked_loss": args.fused_loss,
        "attention_backend": args.attention_backend,
        "sdpa_kernel": sdpa,
        "compile_stats": acc.compile_stats() if compiled else {},
        "lora_dropout": args.lora_dropout if lora else None,
        "lr": LEARNING_RATE[mode],
        "weights": (
            ("bf16 frozen base + fp32 LoRA adapters, bf16 autocast" if lora else "fp32 weights/master, bf16 autocast")
            if bf16
            else "fp32 (no autocast)"
        ),
        "build_s": round(build_s, 2),
        "warmup_step_s": [round(x, 3) for x in warmup_s],
        "timed_s": elapsed,
        "losses": [round(x, 5) for x in loss_values],
    }
    log(
        f"RESULT fmops_{mode}: {tokens_per_s:,.0f} tokens/s, {s_per_step:.4f} s/step, peak "
        f"{row['peak_mem_gib']:.2f} GiB, MFU {100 * row['mfu_measured_peak']:.1f}% of the measured peak, "
        f"{100 * row['mfu_reference_peak']:.1f}% of {args.reference_peak:.3g}"
    )
    return row


def environment(device: torch.device) -> dict[str, Any]:
    """Device and library versions for the JSON and RESULTS.md."""
    import transformers

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    env: dict[str, Any] = {
        "device": device.type,
        "device_name": acc.device_name(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft_version,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "date": date.today().isoformat(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / GIB, 1)
        env["capability"] = list(torch.cuda.get_device_capability(device))
    return env


def table(rows: Sequence[dict[str, Any]], reference_peak: float) -> str:
    lines = [
        f"{'variant':<16} {'batch':>8} {'tokens/s':>12} {'s/step':>9} {'peak GiB':>9} {'MFU meas.':>9} "
        f"{'MFU ' + format(reference_peak, '.3g'):>10}"
    ]
    for r in rows:
        lines.append(
            f"{r['variant']:<16} {str(r['batch']) + 'x' + str(r['seq']):>8} {r['tokens_per_s']:>12,.0f} "
            f"{r['s_per_step']:>9.4f} {r['peak_mem_gib']:>9.2f} {100 * r['mfu_measured_peak']:>8.1f}% "
            f"{100 * r['mfu_reference_peak']:>9.1f}%"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ checks
CHECK_PRESET, CHECK_SEQ, CHECK_BATCH = "tiny", 32, 2


def _check_batches(n: int, device: torch.device, seed: int) -> torch.Tensor:
    return random_batches(n, CHECK_BATCH, CHECK_SEQ, PRESETS[CHECK_PRESET]["config"]["vocab_size"], device, seed)


def check_chunked_loss(device: torch.device, mode: str) -> tuple[bool, str]:
    """The chunked LM head + loss (7-token chunks) equals the model's own loss: value and every gradient."""
    x = _check_batches(1, device, seed=1)[0]
    a = build(CHECK_PRESET, mode, device, CHECK_SEQ, 10, compile_=False, lora_dropout=0.0)
    b = build(CHECK_PRESET, mode, device, CHECK_SEQ, 10, compile_=False, lora_dropout=0.0)
    with acc.autocast(device):
        la = acc.causal_lm_loss(a.model, x, chunk_tokens=7)
        lb = b.model(input_ids=x, labels=x).loss
    la.backward()
    lb.backward()
    grad_diff = max(
        ((pa.grad - pb.grad).abs().max() / pb.grad.abs().max().clamp_min(1e-12)).item()
        for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True)
        if pb.grad is not None
    )
    loss_diff = abs(la.item() - lb.item()) / abs(lb.item())
    tol = 2e-2 if acc.bf16_supported(device) else 1e-5
    detail = (
        f"loss {la.item():.6f} vs {lb.item():.6f} (relative difference {loss_diff:.2e}), largest relative "
        f"gradient difference {grad_diff:.2e} (tolerance {tol:g})"
    )
    return loss_diff <= tol and grad_diff <= tol, detail


def check_loss_falls(device: torch.device, mode: str, steps: int = 30) -> tuple[bool, str]:
    """Training on one repeated batch lowers the loss by at least 10 %."""
    x = _check_batches(1, device, seed=1)[0]
    t = build(CHECK_PRESET, mode, device, CHECK_SEQ, steps, compile_=False, lr=3e-3 if mode == "full" else 1e-2)
    losses = torch.stack([t.step(x) for _ in range(steps)]).float().cpu().tolist()
    return losses[-1] < 0.9 * losses[0], f"{losses[0]:.3f} -> {losses[-1]:.3f} in {steps} steps"


def check_compiled_matches_eager(device: torch.device, mode: str, steps: int = 3) -> tuple[bool, str]:
    """Compiled layers and the compiled loss kernel give the eager losses over ``steps`` training steps."""
    batches = _check_batches(steps, device, seed=2)
    runs = []
    try:
        for compile_ in (False, True):
            t = build(CHECK_PRESET, mode, device, CHECK_SEQ, 10, compile_=compile_, lora_dropout=0.0, lr=1e-3)
            if compile_ and not t.compiled:
                return False, "compile_layers did not compile"
            runs.append(torch.stack([t.step(b) for b in batches]).float().cpu().tolist())
    finally:
        reset_compiler()
    tol = 2e-2 if acc.bf16_supported(device) else 1e-4
    diff = max(abs(e - c) / abs(e) for e, c in zip(runs[0], runs[1], strict=True))
    detail = (
        f"{steps} training steps, losses eager {[round(v, 6) for v in runs[0]]} compiled "
        f"{[round(v, 6) for v in runs[1]]} (largest relative difference {diff:.2e}, tolerance {tol:g})"
    )
    return diff <= tol, detail


def check(device: torch.device, echo: Callable[[str], Any] = log, compile_modes: Sequence[str] = ("full",)) -> bool:
    """All correctness checks on the tiny preset; True when all pass. ``compile_modes``: the modes whose
    compiled run is compared with eager (each compile takes ~20 s on a 2-core CPU with an empty cache)."""
    results: list[tuple[str, bool, str]] = []
    for mode in ("full", "lora"):
        results.append((f"chunked loss = model loss ({mode})", *check_chunked_loss(device, mode)))
    for mode in ("full", "lora"):
        results.append((f"loss falls on a repeated batch ({mode})", *check_loss_falls(device, mode)))
    available, why = acc.compile_available()
    for mode in compile_modes:
        if available:
            results.append((f"compiled = eager ({mode})", *check_compiled_matches_eager(device, mode)))
        else:
            echo(f"SKIP compiled = eager ({mode}): {why}")
    for name, passed, detail in results:
        echo(f"{'PASS' if passed else 'FAIL'} {name}: {detail}")
    return all(passed for _, passed, _ in results)


# -------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="default: tinyllama-1.1b on CUDA, else tiny")
    p.add_argument("--mode", choices=("full", "lora", "both"), default="both")
    p.add_argument("--seq", type=int, default=None, help="default: the preset's (2048; tiny: 64)")
    p.add_argument("--batch", type=int, default=None, help="default: the preset's (8; tiny: 2)")
    p.add_argument("--steps", type=int, default=16, help="timed steps")
    p.add_argument("--warmup", type=int, default=4, help="untimed steps first (compilation happens in the first)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile each decoder layer (default: on CUDA only; --compile forces it on a CPU)",
    )
    p.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    p.add_argument(
        "--fused-loss",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="chunked LM head + cross-entropy (default); --no-fused-loss uses the model's own loss",
    )
    p.add_argument("--chunk-tokens", type=int, default=None, help="tokens per loss chunk (default: ~2^27 logits)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (reference: 0.05)")
    p.add_argument(
        "--attention-backend",
        choices=("auto", "flash", "cudnn", "efficient"),
        default="auto",
        help="preferred SDPA backend (auto: torch's order)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-peak", type=float, default=acc.REFERENCE_PEAK_FLOPS, help="the reference's peak")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--check", action="store_true", help="run the correctness checks (tiny preset) instead")
    p.add_argument(
        "--check-compile",
        default="full,lora",
        help="with --check: modes whose compiled run is compared with eager (comma-separated; '' for none)",
    )
    args = p.parse_args(argv)
    device = acc.as_device(None)
    if args.preset is None:
        args.preset = "tinyllama-1.1b" if device.type == "cuda" else "tiny"
    args.seq = args.seq or PRESETS[args.preset]["seq"]
    args.batch = args.batch or PRESETS[args.preset]["batch"]
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be at least 1 and --warmup at least 0")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the matmul peak, then each mode; the whole report as a dict (also written to ``--json``)."""
    device = acc.as_device(None)
    if device.type == "cpu":
        torch.set_num_threads(torch_threads())
    tf32 = acc.enable_tf32()
    env = environment(device)
    log(f"device {env['device_name']}; torch {env['torch']}, transformers {env['transformers']}, peft {env['peft']}")
    peak = acc.measure_matmul_peak(device)
    peak_kind = "bf16 8192^3 torch.mm, CUDA events" if device.type == "cuda" else "fp32 512^3 torch.mm"
    log(f"measured matmul peak: {peak / 1e12:,.3f} TFLOP/s ({peak_kind})")
    report: dict[str, Any] = {
        **env,
        "preset": args.preset,
        "config": PRESETS[args.preset]["config"],
        "seq": args.seq,
        "batch": args.batch,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "tf32": tf32,
        "measured_peak_flops": peak,
        "measured_peak_kind": peak_kind,
        "reference_peak_flops": args.reference_peak,
        "mfu_formula": {
            "full": "6*N + 12*L*H*S",
            "lora": "4*N + 12*L*H*S",
            "mfu": "flops_per_token * tokens_per_s / peak",
        },
        "command": " ".join(sys.argv),
        "results": [],
        "failures": [],
    }
    modes = ("full", "lora") if args.mode == "both" else (args.mode,)
    for mode in modes:
        try:
            report["results"].append(run_mode(args, mode, device, peak))
        except Exception as exc:  # noqa: BLE001 - one mode's failure (OOM) is recorded, the next one still runs
            log(f"{mode} FAILED: {type(exc).__name__}: {str(exc)[:500]}")
            report["failures"].append({"variant": f"fmops_{mode}", "error": f"{type(exc).__name__}: {str(exc)[:500]}"})
        if args.json:
            write_json(args.json, report)
        reset_compiler()
    return report


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # peft asks transformers a deprecated question on every forward pass; the answer is still right.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    if args.check:
        device = acc.as_device(None)
        if device.type == "cpu":
            torch.set_num_threads(torch_threads())
        acc.enable_tf32()
        modes = [m for m in args.check_compile.split(",") if m]
        passed = check(device, compile_modes=modes)
        log("all checks passed" if passed else "some checks FAILED")
        return 0 if passed else 1
    import transformers

    transformers.logging.set_verbosity_error()
    report = run(args)
    print(table(report["results"], args.reference_peak), flush=True)
    for failure in report["failures"]:
        print(f"{failure['variant']:<16} FAILED: {failure['error'][:200]}", flush=True)
    if args.json:
        write_json(args.json, report)
        log(f"wrote {args.json}")
    return 0 if report["results"] and not report["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
