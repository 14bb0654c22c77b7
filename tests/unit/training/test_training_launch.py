"""torchrun launch from the SageMaker environment, and how a global batch is split over ranks."""

from __future__ import annotations

import pytest

from fmops_training.contract import ContractError, TrainingEnv
from fmops_training.distributed import Dist, launch_command, shard
from fmops_training.metrics_log import METRIC_DEFINITIONS, format_metric, parse_metric_line


def _env(hosts: str, current: str, gpus: str = "0") -> TrainingEnv:
    return TrainingEnv.from_environ(
        {"SM_CHANNEL_TRAIN": "/tmp/t", "SM_HOSTS": hosts, "SM_CURRENT_HOST": current, "SM_NUM_GPUS": gpus}
    )


def test_one_gpu_one_host_runs_in_process() -> None:
    assert launch_command(_env('["algo-1"]', "algo-1", "1"), "train.py", [], {}) is None


def test_several_gpus_launch_one_process_each() -> None:
    command = launch_command(_env('["algo-1"]', "algo-1", "8"), "/code/train.py", ["--epochs", "2"], {})
    assert command is not None
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=1" in command and "--node_rank=0" in command and "--nproc_per_node=8" in command
    assert "--master_addr=algo-1" in command and command[-3:] == ["/code/train.py", "--epochs", "2"]


def test_several_hosts_rendezvous_at_the_first_and_overrides_apply() -> None:
    env = _env('["algo-1", "algo-2", "algo-3"]', "algo-3")
    command = launch_command(env, "train.py", [], {"FMOPS_MASTER_ADDR": "127.0.0.1", "FMOPS_MASTER_PORT": "31000"})
    assert command is not None
    assert "--nnodes=3" in command and "--node_rank=2" in command and "--nproc_per_node=1" in command
    assert "--master_addr=127.0.0.1" in command and "--master_port=31000" in command


def test_inside_torchrun_nothing_is_launched_again() -> None:
    env = _env('["algo-1", "algo-2"]', "algo-1")
    assert launch_command(env, "train.py", [], {"LOCAL_RANK": "0", "WORLD_SIZE": "2"}) is None


def test_a_bad_process_count_is_a_clear_error() -> None:
    with pytest.raises(ContractError, match="FMOPS_NPROC_PER_NODE must be an integer, got 'two'"):
        launch_command(_env('["algo-1"]', "algo-1"), "train.py", [], {"FMOPS_NPROC_PER_NODE": "two"})


@pytest.mark.parametrize(("n", "world"), [(8, 2), (7, 2), (5, 3), (2, 2)])
def test_shards_are_contiguous_cover_the_batch_and_differ_by_at_most_one(n: int, world: int) -> None:
    items = list(range(100, 100 + n))
    parts = [shard(items, Dist(rank=r, world=world)) for r in range(world)]
    assert sum(parts, []) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_rank_lines_are_read_by_the_same_metric_definitions() -> None:
    import re

    line = format_metric("rank_train_loss", 0.5, 10, rank=3)
    assert line == "fmops-metric name=rank_train_loss value=0.5 step=10 rank=3"
    assert parse_metric_line(line) == ("rank_train_loss", 0.5, 10)
    regex = next(d["Regex"] for d in METRIC_DEFINITIONS if d["Name"] == "rank_train_loss")
    assert re.search(regex, line).group(1) == "0.5"  # type: ignore[union-attr]
    # train_loss's definition does not read rank_train_loss lines
    plain = next(d["Regex"] for d in METRIC_DEFINITIONS if d["Name"] == "train_loss")
    assert re.search(plain, line) is None
