"""Training speed-ups shared by the training loop and ``training/benchmark.py``; importable without CUDA.

What each piece buys on a Hopper GPU (H100/H200) for a Llama-shaped 1.1B model at sequence 2048 (bf16 autocast,
fp32 master weights), and what it costs on a CPU:

- ``compile_layers``: regional ``torch.compile`` of each decoder layer. Fuses RMSNorm, RoPE, SiLU·mul, the
  residual adds and autocast's casts into a few Triton kernels around the cuBLAS/flash-attention calls. The
  shared reference measured 67 % MFU against 46 % for the same loop in eager mode. Every layer has the same
  code, so one graph serves all of them (two with LoRA: the first layer's input needs no gradient).
- ``attention_implementation``: PyTorch SDPA. With no attention mask (every sequence full length) transformers
  calls it with ``is_causal=True`` and ``enable_gqa=True``, which the flash (and cuDNN) kernels take without
  repeating K/V. ``attention_backend`` prefers one SDPA kernel; ``sdpa_backend_in_use`` says which one runs.
- ``linear_cross_entropy`` / ``causal_lm_loss``: the LM head and the loss in token chunks. The model's own loss
  materialises the logits of every token ([B, S, 32000]: 1 GiB in bf16, 2 GiB more as the fp32 copy that the
  loss is computed on, and the same again for their gradients) and passes over them several times; here only
  one chunk's bf16 logits exist at a time, and one compiled kernel turns them into the chunk's loss and the
  logits' gradient (fp32 inside, never written out).
- ``clip_grad_norm_and_step``: gradient clipping folded into the fused AdamW kernel (it divides every gradient
  by ``grad_scale`` as it reads it), which saves a read and a write of all fp32 gradients (8.8 GB per step
  for 1.1B parameters) and never copies the norm to the host.
- ``enable_tf32``: TF32 for any fp32 matrix product left outside autocast.
- ``measure_matmul_peak``: the MFU denominator, measured on the card that ran the benchmark.

Things the loop should also keep doing (each one a host sync or wasted pass that the benchmark avoids):
``optimizer.zero_grad(set_to_none=True)`` (no memset of 4.4 GB of gradients), fused AdamW with its step count
on the device, no ``loss.item()`` per step (accumulate ``loss.detach()`` in a device tensor and read it when
logging), data moved to the device once (or with ``non_blocking=True`` from pinned memory).
"""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

# The shared GPU reference's MFU denominator: the bf16 matrix-product ceiling measured on its H200.
REFERENCE_PEAK_FLOPS = 790e12
IGNORE_INDEX = -100


# ----------------------------------------------------------------------------------------------- device
def as_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_name(device: torch.device | str | None = None) -> str:
    """The card's name (``NVIDIA H200``) or ``cpu (<machine>, N threads)``."""
    device = as_device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {threads} torch thread{'' if threads == 1 else 's'})"


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """Whether training on ``device`` should use bf16 autocast: CUDA cards with bf16 (Ampere and newer).

    The CPU answers False: CPU training stays in fp32 (bf16 matmuls on CPUs without AMX are slower, and the
    CPU runs here are correctness checks).
    """
    device = as_device(device)
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast(device: torch.device | str | None = None) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where ``bf16_supported``; otherwise a no-op (fp32)."""
    device = as_device(device)
    if bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def enable_tf32() -> bool:
    """Let fp32 matrix products use TF32 tensor cores (``matmul precision "high"``) on CUDA; True if set.

    Under bf16 autocast almost every product is bf16 already; this covers what autocast leaves in fp32.
    A no-op on the CPU (returns False), so CPU results stay exact fp32.
    """
    if not torch.cuda.is_available():
        return False
    torch.set_float32_matmul_precision("high")  # the one setting that works alike from torch 2.0 to 2.13
    return True


def attention_implementation(device: torch.device | str | None = None) -> str:
    """The ``attn_implementation`` to build models with: ``"sdpa"`` (PyTorch's scaled_dot_product_attention).

    On CUDA, SDPA dispatches to the flash (or memory-efficient / cuDNN) kernels; on the CPU to a fused C++
    kernel. ``"eager"`` only where this torch has no SDPA. (transformers 5.x also accepts
    ``"flash_attention_2"``/``"flash_attention_3"``, which need the separate flash-attn packages, and
    ``"flex_attention"``; SDPA needs nothing more and is what the reference used.)
    """
    del device  # the same answer everywhere today; kept so callers state where the model will run
    return "sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager"


@contextlib.contextmanager
def attention_backend(preferred: str | None = None) -> Iterator[None]:
    """Prefer one SDPA backend (``"cudnn"``, ``"flash"``, ``"efficient"``) while inside; ``None``: torch's order.

    The others stay allowed as fall-backs (a backend that cannot take a call, e.g. cuDNN for some GQA shapes,
    is skipped). Enter it before the first (compiling) step: torch.compile fixes the kernel when it traces.
    """
    if not preferred or preferred == "auto":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }
    if preferred not in names:
        raise ValueError(f"unknown attention backend {preferred!r}; one of {sorted(names)} or 'auto'")
    order = [names[preferred]] + [b for k, b in names.items() if k != preferred]
    try:
        ctx = sdpa_kernel(order, set_priority=True)
    except TypeError:  # torch < 2.6: no priorities, only a set of allowed backends
        ctx = sdpa_kernel(order)
    with ctx:
        yield


def sdpa_backend_in_use(
    device: torch.device | str | None = None,
    *,
    batch: int = 1,
    heads: int = 32,
    kv_heads: int = 4,
    seq: int = 2048,
    head_dim: int = 64,
    dtype: torch.dtype | None = None,
) -> str:
    """Which SDPA kernel a causal GQA call of this shape runs on ``device`` now (the sdpa_kernel context in
    force included): ``cudnn``, ``flash``, ``efficient``, ``math``, ``flash_cpu`` or ``unknown``.

    Read from the aten op that one forward and backward call dispatches to (a CPU-side profile, no device
    counters). Recent torch puts cuDNN first on Hopper when cuDNN is new enough, flash otherwise.
    """
    device = as_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if bf16_supported(device) else torch.float32
    q = torch.randn(batch, heads, seq, head_dim, device=device, dtype=dtype, requires_grad=True)
    k = torch.randn(batch, kv_heads, seq, head_dim, device=device, dtype=dtype, requires_grad=True)
    v = torch.randn(batch, kv_heads, seq, head_dim, device=device, dtype=dtype, requires_grad=True)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv_heads != heads).sum().backward()
    synchronize(device)
    names = {event.key for event in prof.key_averages()}
    for op, label in (
        ("aten::_scaled_dot_product_cudnn_attention", "cudnn"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", "flash_cpu"),
        ("aten::_scaled_dot_product_flash_attention", "flash"),
        ("aten::_scaled_dot_product_efficient_attention", "efficient"),
        ("aten::_scaled_dot_product_attention_math", "math"),
    ):
        if op in names:
            return label
    return "unknown"


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    device = as_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device | str | None = None) -> None:
    """Start a new peak-memory window on CUDA (the CPU's peak RSS cannot be reset)."""
    device = as_device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device | str | None = None) -> int:
    """Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; the process's peak RSS on the CPU."""
    device = as_device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


# ---------------------------------------------------------------------------------------------- compile
def compile_available() -> tuple[bool, str]:
    """(whether ``torch.compile`` can run here, why not)."""
    if not hasattr(torch, "compile") or not hasattr(torch.nn.Module, "compile"):
        return False, f"torch {torch.__version__} has no torch.compile"
    try:
        from torch import _dynamo

        if not _dynamo.is_dynamo_supported():
            return False, f"torch.compile is not supported on Python {sys.version.split()[0]} with this torch"
    except Exception as exc:  # noqa: BLE001 - any import failure means no compile
        return False, f"torch._dynamo unavailable: {exc}"
    return True, ""


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (``PeftModel.get_base_model()``), else ``model``."""
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The repeated decoder blocks of a transformers model (peft-wrapped or not): ``model.model.layers`` for
    Llama, found as the largest ``ModuleList`` named ``layers``/``h``/``blocks``/``layer`` for others."""
    base = unwrap_model(model)
    inner = getattr(base, "base_model", base)
    layers = getattr(inner, "layers", None)
    if isinstance(layers, torch.nn.ModuleList):
        return layers
    best: torch.nn.ModuleList | None = None
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layers", "h", "blocks", "layer"):
            if best is None or len(module) > len(best):
                best = module
    if best is None:
        raise ValueError(f"no decoder layers found in {type(base).__name__}")
    return best


def compile_layers(
    model: torch.nn.Module,
    *,
    force: bool = False,
    mode: str | None = None,
    dynamic: bool | None = None,
    fullgraph: bool = False,
    echo: Callable[[str], Any] = print,
) -> torch.nn.Module:
    """``torch.compile`` each decoder layer in place (regional compilation) and return ``model``.

    Compiling the repeated block instead of the whole model compiles one graph (all layers share the code and,
    with parameters as graph inputs, the graph) in seconds instead of minutes, and runs as fast as a
    whole-model compile: the work outside the layers (embedding, final norm, loss) is a few kernels.
    ``nn.Module.compile`` keeps the module objects, so ``state_dict`` keys, checkpoints, ``save_pretrained`` and
    peft adapters are unchanged (``torch.compile(module)`` would wrap them in ``_orig_mod``).

    A no-op (with a message through ``echo``) when torch.compile is unavailable, or on the CPU unless
    ``force``: for the small CPU runs compile time exceeds what it saves. ``dynamic=None`` lets torch mark
    the sequence length dynamic after the first padded batch of a new width instead of recompiling each time.
    ``mode`` is torch.compile's (``None``; ``"max-autotune-no-cudagraphs"`` tunes matmul kernels, minutes more).
    """
    ok, why = compile_available()
    if not ok:
        echo(f"compile_layers: not compiling: {why}")
        return model
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if device.type != "cuda" and not force:
        echo(f"compile_layers: not compiling on {device.type} (pass force=True to compile there)")
        return model
    layers = decoder_layers(model)
    kwargs: dict[str, Any] = {"dynamic": dynamic, "fullgraph": fullgraph}
    if mode:
        kwargs["mode"] = mode
    for layer in layers:
        layer.compile(**kwargs)
    return model


def layers_compiled(model: torch.nn.Module) -> bool:
    """Whether ``compile_layers`` compiled ``model``'s decoder layers (``nn.Module.compile`` was applied)."""
    try:
        layers = decoder_layers(model)
    except ValueError:
        return False
    return len(layers) > 0 and all(getattr(layer, "_compiled_call_impl", None) is not None for layer in layers)


def compile_stats() -> dict[str, int]:
    """torch.compile's counters since the last reset: graphs compiled, graph breaks, recompilations.

    One graph (two with LoRA) and no graph breaks is what ``compile_layers`` should give for a Llama.
    """
    try:
        from torch._dynamo.utils import counters
    except Exception:  # noqa: BLE001 - no dynamo, no counters
        return {}
    return {
        "unique_graphs": int(counters["stats"].get("unique_graphs", 0)),
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "recompiles": int(sum(counters["recompiles"].values())) if "recompiles" in counters else 0,
    }


# -------------------------------------------------------------------------------------------- accounting
def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); ``trainable_only``: those with ``requires_grad``."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def flops_per_token(n_params: int, n_layers: int, hidden: int, seq: int, lora: bool = False) -> int:
    """Training FLOPs per token: ``6·N + 12·L·H·S`` for full fine-tuning, ``4·N + 12·L·H·S`` for LoRA.

    ``N`` all base-model parameters (embeddings and LM head included): 2·N for the forward pass, 2·N for the
    activations' gradients, 2·N more for the weights' gradients when they are trained (LoRA skips those, its
    adapters' FLOPs being negligible). ``12·L·H·S``: attention scores and values, forward and backward,
    counted as full (non-causal) attention, as in the shared reference (``STACK.md``).
    """
    return (4 if lora else 6) * int(n_params) + 12 * int(n_layers) * int(hidden) * int(seq)


def mfu(tokens_per_second: float, flops_per_token_: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: ``flops_per_token × tokens/s / peak`` (a fraction, 0.67 = 67 %)."""
    if peak_flops <= 0:
        raise ValueError("peak_flops must be positive")
    return float(flops_per_token_) * float(tokens_per_second) / float(peak_flops)


def measure_matmul_peak(
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    size: int | None = None,
    iters: int | None = None,
    warmup: int = 3,
) -> float:
    """FLOP/s of a square matrix product on ``device``: the MFU denominator measured on the card that ran.

    CUDA: bf16 (default) 8192³ products on random data (zeros run faster), after ``warmup`` products, timed
    with CUDA events over ``iters`` (20). CPU: fp32 512³ products (``dtype`` bf16 is replaced by fp32 there),
    10 timed. Each product is 2·n³ FLOPs.
    """
    device = as_device(device)
    cuda = device.type == "cuda"
    if dtype is None or not cuda:
        dtype = torch.bfloat16 if cuda else torch.float32
    n = size or (8192 if cuda else 512)
    iters = iters or (20 if cuda else 10)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((n, n), device=device, dtype=dtype, generator=gen)
    b = torch.randn((n, n), device=device, dtype=dtype, generator=gen)
    out = torch.empty((n, n), device=device, dtype=dtype)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(iters):
            torch.mm(a, b, out=out)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3
    else:
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.mm(a, b, out=out)
        seconds = time.perf_counter() - t0
    del a, b, out
    return 2.0 * n**3 * iters / max(seconds, 1e-12)


# ------------------------------------------------------------------------------------------------- loss
def _ce_chunk(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int, grad_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the chunk's token losses, ``grad_scale`` × d(sum)/d(logits) in the logits' dtype).

    fp32 arithmetic inside; compiled, the fp32 copy of the logits is never written out. ``grad_scale`` (1 / the
    number of counted tokens) is applied in fp32 before the gradient is rounded to the logits' dtype. Ignored
    tokens contribute 0 to the loss and get zero gradient rows.
    """
    x = logits.float()
    valid = targets != ignore_index
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    lse = torch.logsumexp(x, dim=-1)
    target_logit = x.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = torch.where(valid, lse - target_logit, torch.zeros_like(lse)).sum()
    probs = torch.exp(x - lse.unsqueeze(1))
    one_hot = torch.arange(x.shape[1], device=x.device).unsqueeze(0) == safe.unsqueeze(1)
    row_scale = valid.to(probs.dtype) * grad_scale
    grad = (probs - one_hot.to(probs.dtype)) * row_scale.unsqueeze(1)
    return loss, grad.to(logits.dtype)


_COMPILED_CE: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None


def _ce_kernel(compiled: bool) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    global _COMPILED_CE
    if not compiled:
        return _ce_chunk
    if _COMPILED_CE is None:
        _COMPILED_CE = torch.compile(_ce_chunk, dynamic=None)
    return _COMPILED_CE


def default_chunk_tokens(vocab_size: int) -> int:
    """Tokens per chunk: about 2²⁷ logits (256 MiB in bf16) per chunk, at least 256 tokens."""
    return max(256, (1 << 27) // max(1, vocab_size))


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, computed chunk by chunk.

    The gradients are computed in the forward pass, chunk by chunk (the chunk's logits are needed for both and
    are dropped right after), and the backward pass only scales them by the incoming gradient.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        ignore_index: int,
        chunk_tokens: int,
        compute_dtype: torch.dtype,
        compiled: bool,
        need_hidden_grad: bool,
        need_weight_grad: bool,
    ) -> torch.Tensor:
        kernel = _ce_kernel(compiled)
        n_tokens = hidden.shape[0]
        w = weight.to(compute_dtype)
        grad_hidden = torch.empty_like(hidden) if need_hidden_grad else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight_grad else None
        loss_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        inv_count = 1.0 / (targets != ignore_index).sum().clamp_min(1).float()  # stays on the device
        n_chunks = max(1, math.ceil(n_tokens / chunk_tokens))
        step = math.ceil(n_tokens / n_chunks)  # equal chunks: one compiled shape
        for start in range(0, n_tokens, step):
            h = hidden[start : start + step].to(compute_dtype)
            logits = h @ w.t()
            loss_c, dlogits = kernel(logits, targets[start : start + step], ignore_index, inv_count)
            loss_sum += loss_c
            if grad_hidden is not None:
                grad_hidden[start : start + step] = dlogits @ w
            if grad_weight is not None:
                grad_weight += (dlogits.t() @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return loss_sum * inv_count

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_hidden, grad_weight = ctx.saved_tensors  # already d(mean loss)/d(input); scale by the incoming grad
        gh = grad_hidden * grad_output.to(grad_hidden.dtype) if grad_hidden is not None else None
        gw = (grad_weight * grad_output.float()).to(ctx.weight_dtype) if grad_weight is not None else None
        return gh, gw, None, None, None, None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    chunk_tokens: int | None = None,
    compute_dtype: torch.dtype | None = None,
    compiled: bool = False,
) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T, targets, ignore_index=...)`` (the mean over non-ignored tokens)
    without materialising the logits of all tokens: at most ``chunk_tokens`` rows of logits exist at a time.

    ``hidden`` [..., H], ``weight`` [V, H] (the LM head's), ``targets`` [...] of class ids. The products run
    in ``compute_dtype`` (default: the autocast dtype when autocast is on, else ``weight``'s dtype); the
    softmax, the loss and the weight-gradient accumulation are fp32. ``compiled``: run the per-chunk
    softmax/loss/gradient with ``torch.compile`` (one fused kernel on a GPU). A frozen ``weight`` gets no
    gradient work. Under ``torch.no_grad`` only the loss is computed.
    """
    h2 = hidden.reshape(-1, hidden.shape[-1])
    t1 = targets.reshape(-1)
    if h2.shape[0] != t1.shape[0]:
        raise ValueError(f"hidden has {h2.shape[0]} tokens but targets has {t1.shape[0]}")
    if compute_dtype is None:
        device_type = hidden.device.type
        if torch.is_autocast_enabled(device_type):
            compute_dtype = torch.get_autocast_dtype(device_type)
        else:
            compute_dtype = weight.dtype
    chunk = int(chunk_tokens or default_chunk_tokens(weight.shape[0]))
    if chunk < 1:
        raise ValueError("chunk_tokens must be at least 1")
    grad_on = torch.is_grad_enabled()
    need_h = grad_on and hidden.requires_grad
    need_w = grad_on and weight.requires_grad
    with torch.autocast(hidden.device.type, enabled=False):
        return _LinearCrossEntropy.apply(h2, weight, t1, ignore_index, chunk, compute_dtype, compiled, need_h, need_w)


def causal_lm_loss(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    chunk_tokens: int | None = None,
    compiled: bool = False,
) -> torch.Tensor:
    """Next-token loss of a transformers causal LM (peft-wrapped or not), equal to ``model(input_ids,
    labels=labels).loss`` (mean over the shifted, non-ignored labels; ``labels`` default to ``input_ids``)
    but through ``linear_cross_entropy``: the decoder runs, then the LM head and the loss go chunk by chunk.

    Models whose head does more than a matrix product (logit soft-capping, logit scaling) fall back to the
    model's own loss. Pass no ``attention_mask`` for full-length sequences: transformers then lets SDPA use
    its causal flash path; padding positions should be ``-100`` in ``labels``.
    """
    base = unwrap_model(model)
    config = getattr(base, "config", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if labels is None:
        labels = input_ids
    special_head = any(
        getattr(config, name, None) not in (None, 1, 1.0) for name in ("final_logit_softcapping", "logits_scaling")
    )
    if head is None or not isinstance(head, torch.nn.Linear) or head.bias is not None or special_head:
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    decoder = getattr(base, "base_model", base)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    targets = F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)
    return linear_cross_entropy(hidden, head.weight, targets, chunk_tokens=chunk_tokens, compiled=compiled)


# -------------------------------------------------------------------------------------------- optimizer
def clip_grad_norm_and_step(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Clip the gradients of ``optimizer``'s parameters to a total L2 norm of ``max_norm``, then step.

    Same result as ``torch.nn.utils.clip_grad_norm_(params, max_norm)`` followed by ``optimizer.step()``.
    With a fused optimizer (``fused=True`` AdamW/Adam, ``_step_supports_amp_scaling``) the clip coefficient is
    handed to the fused kernel as ``grad_scale`` (the GradScaler mechanism: the kernel divides each gradient
    by it as it reads it) instead of a separate multiply pass over every gradient. Returns the total norm as a
    device tensor (no host sync); read it only when logging.
    """
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        optimizer.step()
        return torch.zeros(())
    device = grads[0].device
    norms = [n.to(device) for n in torch._foreach_norm(grads, 2.0)]
    total = torch.linalg.vector_norm(torch.stack(norms).float(), 2.0)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    if getattr(optimizer, "_step_supports_amp_scaling", False) and not hasattr(optimizer, "grad_scale"):
        optimizer.grad_scale = (1.0 / coef).float()  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.grad_scale  # type: ignore[attr-defined]
    else:
        torch._foreach_mul_(grads, coef)
        optimizer.step()
    return total
