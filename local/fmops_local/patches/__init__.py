"""The project's gap fillers for moto (pinned at 5.2.5: these touch moto internals).

Each module fills one documented gap (see docs/LOCAL_AWS.md) and has an ``apply()`` that is safe to
call more than once.
"""

from __future__ import annotations

from fmops_local.patches import (
    bedrock,
    cloudformation,
    events,
    lambda_inprocess,
    sagemaker,
    sagemaker_tuning,
    sfn_services,
    stepfunctions,
)

MOTO_VERSION = "5.2.5"


def apply_all() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(f"fmops_local's gap fillers are written for moto {MOTO_VERSION}, found {moto.__version__}")
    lambda_inprocess.apply()
    sfn_services.apply()
    sagemaker.apply()
    sagemaker_tuning.apply()
    events.apply()
    cloudformation.apply()
    stepfunctions.apply()
    bedrock.apply()
