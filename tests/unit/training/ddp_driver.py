"""Run by the distributed tests, under torchrun or alone: one training step of a tiny causal LM on a fixed
global batch, then each rank's weights saved as ``<out>/rank<R>.pt``.

``python ddp_driver.py OUT STRATEGY PER_RANK_BATCH [EPOCHS CHECKPOINT_DIR STOP]`` (STRATEGY: ddp | fsdp;
PER_RANK_BATCH × ranks = global batch; STOP=1: ask to stop, as SIGTERM does, at the first check, exit 143).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from tiny_models import tiny_llama  # noqa: E402

from fmops_training.contract import Hyperparameters  # noqa: E402
from fmops_training.distributed import full_state_dict, init_distributed  # noqa: E402
from fmops_training.errors import TrainingInterrupted  # noqa: E402
from fmops_training.loop import train_model  # noqa: E402
from fmops_training.metrics_log import MetricLogger  # noqa: E402
from fmops_training.modeling import decoder_layer_types  # noqa: E402
from fmops_training.tasks import CausalLMData, Encoded  # noqa: E402

GLOBAL_ITEMS = 8


def examples() -> list[Encoded]:
    """Examples of different lengths and completion sizes, so ranks see different token counts."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for i in range(GLOBAL_ITEMS):
        n = 6 + 3 * i
        ids = torch.randint(4, 100, (n,), generator=gen).tolist()
        prompt = 2 + i % 4
        out.append(Encoded(ids, [False] * prompt + [True] * (n - prompt)))
    return out


def main() -> None:
    out, strategy, per_rank = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    checkpoints = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    stop = len(sys.argv) > 6 and sys.argv[6] == "1"
    torch.set_num_threads(1)
    dist, device = init_distributed(strategy)
    model = tiny_llama(seed=0)
    data = CausalLMData.build(examples(), [], max_length=64, packing=False, pad_id=0)
    hps = Hyperparameters(
        task="chat",
        epochs=epochs,
        batch_size=per_rank,
        learning_rate=1e-2,
        warmup_ratio=0.0,
        weight_decay=0.0,
        distributed=strategy,
    )
    echoed: list[str] = []
    try:
        result = train_model(
            model,
            data,
            hps,
            device,
            MetricLogger(open("/dev/null", "w")),
            lambda text, **_: echoed.append(text),
            dist=dist,
            layer_types=decoder_layer_types(model),
            checkpoint_dir=checkpoints,
            stop_requested=lambda: stop,
        )
    except TrainingInterrupted:
        dist.barrier()
        dist.close()
        _leave(143)
    assert result.steps == epochs, result.steps
    state = full_state_dict(model, dist)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "train_loss": result.train_loss, "echoed": echoed}, out / f"rank{dist.rank}.pt")
    dist.barrier()  # leave together
    dist.close()
    _leave(0)


def _leave(code: int) -> None:
    # As train.py does under torchrun: skip interpreter teardown, where gloo's threads sometimes abort the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
