"""Training throughput: fmops' benchmark (training/benchmark.py) against the shared reference, same device, same run.

    python benchmarks/training_throughput.py [--preset auto|tiny|tinyllama-1.1b] [--out DIR] [--reference PATH]
        [--no-reference] [--no-write] [--deadline-s 480] [--check/--no-check] [--extras]
    python benchmarks/training_throughput.py --from-dir DIR      # rebuild the section from a run's files

With CUDA: runs the reference (``gpu_finetune_baseline.py``: HF Trainer full fine-tuning, HF Trainer + peft
LoRA, and its compiled hand loop) and then ours (full and LoRA) on the TinyLlama-shaped 1.1B model, sequence
2048, batch 8, each in its own process on the same card; then (time allowing) ``training/benchmark.py
--check`` and, with ``--extras``, variants of ours (cuDNN attention). Prints the ratios (ours full / Trainer
full, ours LoRA / Trainer + peft LoRA, ours full / the reference's compiled loop) and writes the
"Training throughput (GPU)" section of benchmarks/RESULTS.md with the card's name.

Without CUDA: the reference's ``--tiny`` config (it runs on a CPU in about 40 s) and ours with the same tiny
config, written as "Training throughput (CPU smoke test)": a check that everything runs, not a measurement of
GPU speed. GPU numbers are only ever written from a run whose JSON says it ran on CUDA.

The reference is looked for in ``bench-ref/`` (the copy carried to the GPU machine), ``shared/bench/`` and
``../shared/bench/``. Files under ``--out`` (default ``$OUT`` when set, else a temporary folder):
``ref/results.json`` (the reference's own), ``fmops.json``, ``fmops_extra_*.json``, ``throughput.json`` (both,
with the ratios) and ``section.md`` (the RESULTS.md section).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]

REFERENCE_NAME = "gpu_finetune_baseline.py"
REFERENCE_PEAK = 790e12
GOAL_FULL_MFU = 0.70
GOAL_LORA_RATIO = 2.0
HEADING_GPU = "Training throughput (GPU)"
HEADING_CPU = "Training throughput (CPU smoke test)"
HEADING_GPU_TINY = "Training throughput (GPU smoke test, tiny config)"
# The reference's variants, by the prefix of its variant names.
REFERENCE_ROWS = {
    "1": "reference: HF Trainer, full fine-tune, adamw_torch",
    "1f": "reference: HF Trainer, full fine-tune, adamw_torch_fused",
    "2": "reference: HF Trainer + peft LoRA r16 (all linear, dropout 0.05)",
    "3e": "reference: hand loop, fused AdamW, eager",
    "3": "reference: hand loop, fused AdamW, torch.compile per decoder layer",
}
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[training_throughput {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def find_reference(explicit: Path | None = None) -> Path | None:
    """The reference script: ``explicit``, else bench-ref/, shared/bench/ or ../shared/bench/."""
    candidates = [explicit] if explicit else []
    candidates += [ROOT / "bench-ref", ROOT / "shared" / "bench", ROOT.parent / "shared" / "bench"]
    for c in candidates:
        path = c / REFERENCE_NAME if c.is_dir() else c
        if path.is_file():
            return path
    return None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


CHILD_ENV: dict[str, str] = {"PYTHONUNBUFFERED": "1"}


def run_child(cmd: list[str], timeout: float) -> int:
    """Run ``cmd`` (output to ours), at most ``timeout`` seconds; its exit status (124 on time-out)."""
    log("$ " + " ".join(cmd))
    env = {**os.environ, **CHILD_ENV}
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env, timeout=max(1.0, timeout), check=False).returncode
    except subprocess.TimeoutExpired:
        log(f"stopped after {timeout:.0f} s")
        return 124


def load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ compose
def reference_by_key(reference: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The reference's result rows by variant key (``1``, ``2``, ``3``, ``3e``, ``1f``)."""
    rows = (reference or {}).get("results", [])
    return {str(r["variant"]).split("_", 1)[0]: r for r in rows}


def ratios(ours: dict[str, Any] | None, reference: dict[str, Any] | None) -> dict[str, float | None]:
    """tokens/s ratios: ours full / Trainer full, ours full / compiled loop, ours LoRA / Trainer + peft."""
    ref = reference_by_key(reference)
    mine = {r["mode"]: r for r in (ours or {}).get("results", [])}

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        if not a or not b or not b.get("tokens_per_s"):
            return None
        return float(a["tokens_per_s"]) / float(b["tokens_per_s"])

    return {
        "full_vs_trainer": ratio(mine.get("full"), ref.get("1")),
        "full_vs_trainer_fused": ratio(mine.get("full"), ref.get("1f")),
        "full_vs_compiled_loop": ratio(mine.get("full"), ref.get("3")),
        "lora_vs_trainer_peft": ratio(mine.get("lora"), ref.get("2")),
    }


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)


def _flops(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value / 1e12:,.1f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:,.1f} GFLOP/s"


def _kernel(data: dict[str, Any] | None) -> str:
    """`` [flash attention]``: the SDPA kernel a row of ours ran (empty when unknown)."""
    kernel = (data or {}).get("sdpa_kernel")
    return f" [{kernel} attention]" if kernel else ""


def _pct(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"


def compose(
    ours: dict[str, Any] | None,
    reference: dict[str, Any] | None,
    extras: list[dict[str, Any]] | None = None,
    command: str = "bash benchmarks/gpu/run.sh",
    notes: list[str] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """(heading, markdown body, summary) of the RESULTS.md section. The GPU heading only for a CUDA run."""
    if not ours:
        raise ValueError("no results of ours to write")
    gpu = ours.get("device") == "cuda"
    heading = HEADING_CPU if not gpu else HEADING_GPU if ours.get("preset") == "tinyllama-1.1b" else HEADING_GPU_TINY
    measured = float(ours.get("measured_peak_flops") or float("nan"))
    ref_peak = float(ours.get("reference_peak_flops") or REFERENCE_PEAK)
    r = ratios(ours, reference)
    mine = {row["mode"]: row for row in ours.get("results", [])}
    ref = reference_by_key(reference)
    cfg = ours.get("config", {})
    n_params = next((row["n_params"] for row in ours.get("results", [])), None)
    when = ours.get("date") or date.today().isoformat()

    lines: list[str] = []
    if gpu:
        lines.append(
            f"`{command}`: one **{ours.get('device_name')}** ({ours.get('gpu_memory_gib', '?')} GiB), torch "
            f"{ours.get('torch')}, transformers {ours.get('transformers')}, peft {ours.get('peft')}, {when}. "
            "The reference (`../shared/bench/gpu_finetune_baseline.py`) and ours ran in the same job on this card."
        )
    else:
        lines.append(
            f"`{command}` on {ours.get('device_name')}, torch {ours.get('torch')}, transformers "
            f"{ours.get('transformers')}, peft {ours.get('peft')}, {when}. **CPU smoke test: GPU numbers are not "
            "measured here** (no CUDA device). Tiny config; ours runs fp32 on a CPU while the reference uses bf16 "
            "autocast there; at this size a step is mostly Python overhead, and a shared 2-core machine makes the "
            "timings noise. These ratios say nothing about GPU speed: `bash benchmarks/gpu/run.sh` on a GPU "
            "machine writes the GPU section."
        )
    lines.append("")
    lines.append(
        f"Model: Llama, hidden {cfg.get('hidden_size')}, {cfg.get('num_hidden_layers')} layers, "
        f"{cfg.get('num_attention_heads')} heads, {cfg.get('num_key_value_heads')} KV heads, intermediate "
        f"{cfg.get('intermediate_size')}, vocab {cfg.get('vocab_size')}, untied embeddings, N = {_num(n_params, ',')} "
        f"parameters; random init, random tokens, sequence {ours.get('seq')}, batch {ours.get('batch')}, no padding, "
        f"{ours.get('warmup_steps')} warm-up + {ours.get('timed_steps')} timed steps (device synchronized at both "
        "ends of the timed window)."
    )
    lines.append(
        "MFU = FLOPs/token × tokens/s / peak; FLOPs/token = 6·N + 12·L·H·S (full), 4·N + 12·L·H·S (LoRA). "
        f"Peaks: the reference's {ref_peak:.3g} FLOP/s, and {_flops(measured)} measured on this device in this run "
        f"({ours.get('measured_peak_kind', 'matmul')})."
    )
    if gpu and ours.get("preset") == "tinyllama-1.1b":
        full_mfu = mine.get("full", {}).get("mfu_reference_peak")
        lora_ratio = r["lora_vs_trainer_peft"]
        met_full = "met" if full_mfu is not None and full_mfu >= GOAL_FULL_MFU else "NOT met"
        met_lora = "met" if lora_ratio is not None and lora_ratio >= GOAL_LORA_RATIO else "NOT met"
        lines.append(
            f"Goals: full fine-tuning ≥ 70 % MFU (of {ref_peak:.3g}): {_pct(full_mfu)}, {met_full}; LoRA ≥ 2× the "
            f"Trainer + peft tokens/s: {_num(lora_ratio, '.2f')}×, {met_lora}."
        )
    lines.append("")
    lines.append(
        "| variant | tokens/s | s/step | peak GiB | MFU (ref. peak) | MFU (measured peak) | vs Trainer, same mode |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")

    def row(name: str, data: dict[str, Any] | None, mfu_ref: Any, mfu_meas: Any, vs: str) -> None:
        if data is None:
            lines.append(f"| {name} | not run | | | | | |")
            return
        lines.append(
            f"| {name} | {_num(data.get('tokens_per_s'), ',.0f')} | {_num(data.get('s_per_step'), '.4f')} | "
            f"{_num(data.get('peak_mem_gib'), '.1f')} | {_pct(mfu_ref)} | {_pct(mfu_meas)} | {vs} |"
        )

    def ref_mfu_measured(data: dict[str, Any] | None) -> float | None:
        if not data or not measured or math.isnan(measured):
            return None
        return float(data["flops_per_token"]) * float(data["tokens_per_s"]) / measured

    if reference is None:
        lines.append("| reference | not run (script not found or failed) | | | | | |")
    else:
        for key in ("1", "1f", "2", "3e", "3"):
            if key in ref:
                data = ref[key]
                ref_mfu = data["flops_per_token"] * data["tokens_per_s"] / ref_peak
                row(REFERENCE_ROWS[key], data, ref_mfu, ref_mfu_measured(data), "1.00" if key in ("1", "2") else "")
        for failure in reference.get("failures", []):
            lines.append(f"| reference {failure.get('variant')} | failed: {str(failure.get('error'))[:80]} | | | | | |")
    titles = {
        "full": "**fmops full fine-tune** (fp32 master, bf16 autocast, compiled layers, chunked loss)",
        "lora": "**fmops LoRA r16** (bf16 base, fp32 adapters, compiled layers, chunked loss)",
    }
    if not gpu:
        titles = {"full": "**fmops full fine-tune** (fp32)", "lora": "**fmops LoRA r16** (fp32)"}
    for mode in ("full", "lora"):
        data = mine.get(mode)
        vs = r["full_vs_trainer"] if mode == "full" else r["lora_vs_trainer_peft"]
        row(
            titles[mode] + _kernel(data),
            data,
            data and data.get("mfu_reference_peak"),
            data and data.get("mfu_measured_peak"),
            _num(vs, ".2f"),
        )
    for failure in ours.get("failures", []):
        lines.append(f"| fmops {failure.get('variant')} | failed: {str(failure.get('error'))[:80]} | | | | | |")
    for extra in extras or []:
        for data in extra.get("results", []):
            label = extra.get("label", "variant")
            base = ref.get("1") if data["mode"] == "full" else ref.get("2")
            vs = _num(data["tokens_per_s"] / base["tokens_per_s"], ".2f") if base else "n/a"
            row(
                f"fmops {data['mode']}, {label}" + _kernel(data),
                data,
                data.get("mfu_reference_peak"),
                data.get("mfu_measured_peak"),
                vs,
            )
    lines.append("")
    if r["full_vs_compiled_loop"] is not None:
        lines.append(f"Ours full / the reference's compiled hand loop: {r['full_vs_compiled_loop']:.2f}×.")
    compile_s = {m: (d.get("warmup_step_s") or [None])[0] for m, d in mine.items()}
    if gpu:
        lines.append(
            "First warm-up step (includes compilation): "
            + ", ".join(f"{m} {_num(s, '.1f')} s" for m, s in compile_s.items())
            + ". Peak memory: `torch.cuda.max_memory_allocated`."
        )
    else:
        lines.append("Peak memory of ours on a CPU: the process's peak RSS; the reference reports none there.")
    for note in notes or []:
        lines.append(note)
    summary = {
        "heading": heading,
        "device": ours.get("device"),
        "device_name": ours.get("device_name"),
        "ratios": r,
        "measured_peak_flops": measured,
        "reference_peak_flops": ref_peak,
        "ours": ours,
        "reference": reference,
        "extras": extras or [],
        "notes": list(notes or []),
    }
    return heading, "\n".join(lines), summary


def write_outputs(out: Path, heading: str, body: str, summary: dict[str, Any], results_md: Path | None) -> None:
    (out / "throughput.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (out / "section.md").write_text(f"## {heading}\n\n{body}\n")
    if results_md is not None:
        from _results import write_section

        write_section(heading, body, results_md)
        log(f"wrote the '{heading}' section of {results_md}")


def print_summary(heading: str, summary: dict[str, Any]) -> None:
    r = summary["ratios"]
    print(f"\n{heading} on {summary['device_name']}", flush=True)
    for name, value in r.items():
        print(f"  {name:<24} {_num(value, '.2f')}", flush=True)


def collect(out: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """(ours, reference, extras) from a run's files under ``out``."""
    ours = load_json(out / "fmops.json")
    reference = load_json(out / "ref" / "results.json")
    extras = [e for p in sorted(out.glob("fmops_extra_*.json")) if (e := load_json(p))]
    return ours, reference, extras


# ---------------------------------------------------------------------------------------------------- run
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="folder for the JSON files (default $OUT, else a temp dir)")
    p.add_argument("--reference", type=Path, default=None, help="path of gpu_finetune_baseline.py (or its folder)")
    p.add_argument("--no-reference", action="store_true", help="run ours only")
    p.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--deadline-s", type=float, default=480.0, help="stop starting new stages after this long")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA only")
    p.add_argument("--extras", action="store_true", help="time allowing, also run variants of ours (cuDNN attention)")
    p.add_argument(
        "--preset",
        choices=("auto", "tiny", "tinyllama-1.1b"),
        default="auto",
        help="auto: tinyllama-1.1b with CUDA, tiny without (the reference's --tiny config)",
    )
    p.add_argument(
        "--cpu-threads",
        type=int,
        default=1,
        help="without CUDA: torch threads of both benchmarks (1: steadier beside busy neighbours)",
    )
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--from-dir", type=Path, default=None, help="only compose the section from a run's files")
    p.add_argument("--command", default=None, help="the command named in the section")
    args = p.parse_args(argv)
    results_md = None if args.no_write else args.results

    if args.from_dir:
        ours, reference, extras = collect(args.from_dir)
        if ours is None:
            log(f"no fmops.json under {args.from_dir}")
            return 1
        gpu_run = ours.get("device") == "cuda"
        default = "bash benchmarks/gpu/run.sh" if gpu_run else "python benchmarks/training_throughput.py"
        notes = (load_json(args.from_dir / "throughput.json") or {}).get("notes") or []
        heading, body, summary = compose(ours, reference, extras, command=args.command or default, notes=notes)
        if results_md is not None:
            from _results import write_section

            write_section(heading, body, results_md)
            log(f"wrote the '{heading}' section of {results_md}")
        print(f"## {heading}\n\n{body}")
        print_summary(heading, summary)
        return 0

    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(tempfile.mkdtemp(prefix="tt_")))
    out.mkdir(parents=True, exist_ok=True)
    gpu = cuda_available()
    notes: list[str] = []
    tiny = args.preset == "tiny" or (args.preset == "auto" and not gpu)
    if not gpu:
        threads = str(max(1, args.cpu_threads))
        CHILD_ENV.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, FMOPS_TORCH_THREADS=threads)
        notes.append(f"Both benchmarks ran with {threads} torch thread(s) (OMP_NUM_THREADS).")
    deadline = T0 + args.deadline_s
    python = sys.executable
    bench = [python, str(ROOT / "training" / "benchmark.py")]
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    log(f"CUDA: {gpu}; results under {out}")

    # 1. The reference (its own process; it has its own time budget and writes results.json as it goes).
    reference_path = None if args.no_reference else find_reference(args.reference)
    if reference_path is None and not args.no_reference:
        log("reference script not found (bench-ref/, shared/bench/, ../shared/bench/): ours only")
        notes.append("The reference script was not found: ours only.")
    if reference_path is not None:
        budget = 300.0 if gpu else 150.0
        budget = min(budget, deadline - time.monotonic() - (200.0 if gpu else 30.0))
        variants = "1,2,3" if gpu else "1,2,3e"
        cmd = [python, str(reference_path), "--variants", variants, "--budget", f"{budget:.0f}"]
        cmd += ["--out", str(out / "ref"), *timing]
        if tiny:
            cmd.append("--tiny")
        rc = run_child(cmd, budget + 60)
        if rc:
            notes.append(f"The reference exited with status {rc}; rows it did not finish are missing.")

    # 2. Ours: full and LoRA in one process.
    ours_cmd = [*bench, "--mode", "both", "--json", str(out / "fmops.json"), *timing]
    ours_cmd += ["--preset", "tiny" if tiny else "tinyllama-1.1b"]
    rc = run_child(ours_cmd, max(60.0, deadline - time.monotonic()))
    if rc:
        notes.append(f"training/benchmark.py exited with status {rc}.")

    # 3. Correctness on this device (GPU: bf16, compiled), then variants, while time remains.
    if args.check if args.check is not None else gpu:
        if deadline - time.monotonic() > 90:
            rc = run_child([*bench, "--check"], deadline - time.monotonic())
            notes.append(
                "`training/benchmark.py --check` on this device: "
                + ("passed." if rc == 0 else f"FAILED (status {rc}).")
            )
        else:
            notes.append("`training/benchmark.py --check` skipped: out of time.")
    if args.extras and gpu:
        first = load_json(out / "fmops.json") or {}
        used = next((r.get("sdpa_kernel") for r in first.get("results", [])), None)
        other = "flash" if used == "cudnn" else "cudnn"  # the attention kernel the main run did not use
        for label, extra_args in ((f"{other} attention preferred", ["--attention-backend", other]),):
            if deadline - time.monotonic() < 120:
                log(f"skipping extra '{label}': out of time")
                break
            path = out / f"fmops_extra_{extra_args[-1]}.json"
            run_child(
                [*bench, "--mode", "full", "--json", str(path), *timing, *extra_args], deadline - time.monotonic()
            )
            data = load_json(path)
            if data:
                data["label"] = label
                path.write_text(json.dumps(data, indent=1, default=str) + "\n")

    ours, reference, extras = collect(out)
    if ours is None or not ours.get("results"):
        log("no results of ours: nothing written")
        return 1
    command = args.command or ("bash benchmarks/gpu/run.sh" if gpu else "python benchmarks/training_throughput.py")
    heading, body, summary = compose(ours, reference, extras, command=command, notes=notes)
    write_outputs(out, heading, body, summary, results_md)
    print(f"\n## {heading}\n\n{body}", flush=True)
    print_summary(heading, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
