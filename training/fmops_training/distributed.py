"""Distributed training from the SageMaker environment: torchrun launch, process group, DDP or FSDP.

A job with several GPUs (``SM_NUM_GPUS`` > 1) or several hosts (``SM_HOSTS``) re-launches ``train.py`` under
``torch.distributed.run`` (torchrun): one process per GPU (one per host on CPUs), ``--nnodes`` = the hosts,
``--node_rank`` = this host's index, the first host as the rendezvous address. The processes then join a
process group (NCCL on GPUs, gloo on CPUs) and train one model:

- **DDP** (``distributed=auto|ddp``): each rank holds the whole model and a slice of every global batch;
  gradients are averaged by all-reduce.
- **FSDP** (``distributed=fsdp``): parameters, gradients and optimizer state are sharded across ranks per
  decoder layer (``fully_shard``), for models that do not fit one GPU.

Losses are normalised by the *global* count of targets (samples or completion tokens), so a step on N ranks
equals a single-process step on the same global batch. Rank 0 alone writes the model and checkpoints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fmops_training.contract import TrainingEnv
from fmops_training.errors import ContractError

DEFAULT_PORT = 29500


def under_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside a process started by torchrun (it sets ``LOCAL_RANK`` and ``WORLD_SIZE``)."""
    return "LOCAL_RANK" in environ and "WORLD_SIZE" in environ


def launch_command(
    env: TrainingEnv, script: str, argv: Sequence[str], environ: Mapping[str, str] = os.environ
) -> list[str] | None:
    """The torchrun command that runs ``script`` on every GPU of every host, or None for a one-process job.

    ``FMOPS_MASTER_ADDR``/``FMOPS_MASTER_PORT`` override the rendezvous address (the local executor runs its
    "hosts" on 127.0.0.1); ``FMOPS_NPROC_PER_NODE`` the processes per host (default: the GPUs, else 1).
    """
    if under_torchrun(environ):
        return None
    nproc_text = environ.get("FMOPS_NPROC_PER_NODE") or str(max(1, env.num_gpus))
    try:
        nproc = int(nproc_text)
    except ValueError:
        raise ContractError(f"FMOPS_NPROC_PER_NODE must be an integer, got {nproc_text!r}") from None
    if nproc < 1:
        raise ContractError(f"FMOPS_NPROC_PER_NODE must be >= 1, got {nproc}")
    if nproc == 1 and len(env.hosts) == 1:
        return None
    master = environ.get("FMOPS_MASTER_ADDR") or env.hosts[0]
    port = environ.get("FMOPS_MASTER_PORT") or str(DEFAULT_PORT)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={len(env.hosts)}",
        f"--node_rank={env.hosts.index(env.current_host)}",
        f"--nproc_per_node={nproc}",
        f"--master_addr={master}",
        f"--master_port={port}",
        script,
        *argv,
    ]


@dataclass
class Dist:
    """This process's place in the job; a one-process job is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    strategy: str = "single"  # single | ddp | fsdp

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, values: Sequence[float], device: Any) -> list[float]:
        """Element-wise sum over ranks (float64); the values themselves in a one-process job."""
        if not self.active:
            return [float(v) for v in values]
        import torch
        import torch.distributed as td

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        td.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def any(self, flag: bool, device: Any) -> bool:
        """True when any rank says so (e.g. a SIGTERM seen by one host stops all of them at the same step)."""
        return self.all_sum([1.0 if flag else 0.0], device)[0] > 0 if self.active else flag

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def init_distributed(strategy: str, environ: Mapping[str, str] = os.environ) -> tuple[Dist, Any]:
    """Join the process group when started by torchrun; returns (Dist, the device of this rank)."""
    import torch

    if not under_torchrun(environ):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return Dist(), device
    import torch.distributed as td

    rank, world, local = int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not td.is_initialized():
        td.init_process_group(backend=backend)
    chosen = "fsdp" if strategy == "fsdp" else "ddp"
    return Dist(rank=rank, world=world, local_rank=local, strategy=chosen), device


def shard(indices: Sequence[int], dist: Dist) -> list[int]:
    """This rank's contiguous part of a global batch (sizes differ by at most one across ranks)."""
    n, world = len(indices), dist.world
    base, extra = divmod(n, world)
    start = dist.rank * base + min(dist.rank, extra)
    return list(indices[start : start + base + (1 if dist.rank < extra else 0)])


def wrap_model(module: Any, dist: Dist, device: Any, layer_types: tuple[type, ...] = ()) -> Any:
    """The module as this job trains it: itself (one process), DDP, or FSDP sharded per ``layer_types``."""
    if not dist.active:
        return module
    if dist.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for sub in module.modules():
            if layer_types and isinstance(sub, layer_types):
                fully_shard(sub)
        fully_shard(module)
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if getattr(device, "type", "cpu") == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def full_state_dict(model: Any, dist: Dist) -> dict[str, Any]:
    """The whole model's weights on the CPU (gathered from the shards under FSDP; every rank must call it)."""
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return dict(get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)))
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
