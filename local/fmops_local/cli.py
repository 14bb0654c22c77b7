"""The ``fmops`` command line.

Exit codes: 0 success, 1 the operation failed (a failed run, a refused decision), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from fmops_local import data_cli, eval_cmd, hpo_cmd, models_cmd, train_cmd


def _local_env() -> dict[str, str]:
    """Settings written by ``fmops local up`` / ``fmops demo --interactive`` for other terminals."""
    path = Path(os.environ.get("FMOPS_LOCAL_DIR", ".fmops-local")) / "env.json"
    if path.is_file():
        return dict(json.loads(path.read_text()))
    return {}


def _api_client(args: argparse.Namespace) -> Any:
    import boto3

    from fmops_local.api_client import ApiClient

    local = _local_env()
    url = args.api_url or os.environ.get("FMOPS_API_URL") or local.get("FMOPS_API_URL")
    if not url:
        raise SystemExit("fmops: no API URL: pass --api-url, set FMOPS_API_URL, or start `fmops local up`")
    session = None
    if not os.environ.get("AWS_ACCESS_KEY_ID") and local.get("AWS_ACCESS_KEY_ID"):
        session = boto3.Session(
            aws_access_key_id=local["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=local["AWS_SECRET_ACCESS_KEY"],
            region_name=local.get("AWS_DEFAULT_REGION"),
        )
    region = args.region or os.environ.get("AWS_DEFAULT_REGION") or local.get("AWS_DEFAULT_REGION", "us-east-1")
    return ApiClient(url, region=region, session=session)


def cmd_demo(args: argparse.Namespace) -> int:
    from fmops_local.demo import DemoConfig, run_demo

    cfg = DemoConfig.for_task(
        args.task,
        records=args.records,
        epochs=args.epochs,
        interactive=args.interactive,
        out_dir=Path(args.out),
        server_port=args.port if args.interactive else None,
        api_port=args.api_port,
    )
    summary = run_demo(cfg)
    return 0 if summary["execution_status"] == "SUCCEEDED" else 1


def cmd_local_up(args: argparse.Namespace) -> int:
    from fmops_local.aws import LocalAws
    from fmops_local.demo import _write_local_env

    aws = LocalAws(server_port=args.port)
    aws.start()
    try:
        stack = aws.deploy()
        api = aws.start_api(port=args.api_port)
        _write_local_env(aws, api.url)
        print(f"local AWS on http://127.0.0.1:{args.port}  (stack {stack.name})")
        print(f"API: {api.url}")
        print("In another shell:")
        print(f"  export AWS_ENDPOINT_URL=http://127.0.0.1:{args.port} AWS_DEFAULT_REGION={aws.region}")
        outputs = dict(stack.outputs, ApiUrl=api.url)  # the template's URL is API Gateway's; locally it is the front
        for key, value in sorted(outputs.items()):
            print(f"  {key} = {value}")
        print("Ctrl-C stops it.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        aws.stop()


def cmd_decide(args: argparse.Namespace) -> int:
    from fmops_local.api_client import ApiError

    client = _api_client(args)
    try:
        result = client.decide(args.run_id, args.command, args.reason)
    except ApiError as exc:
        print(f"fmops {args.command}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    print(json.dumps(_api_client(args).approvals(), indent=2, default=str))
    return 0


def cmd_run_show(args: argparse.Namespace) -> int:
    print(json.dumps(_api_client(args).run(args.run_id), indent=2, default=str))
    return 0


def cmd_code_publish(args: argparse.Namespace) -> int:
    import boto3

    from fmops_local.deploy import publish_training_code

    uri = publish_training_code(boto3.client("s3"), args.bucket)
    print(uri)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmops", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="group", required=True)

    demo = sub.add_parser("demo", help="run the whole lifecycle on the local AWS")
    demo.add_argument("--interactive", action="store_true", help="wait for a person to approve")
    demo.add_argument(
        "--task",
        choices=("classification", "chat"),
        default="classification",
        help="classification: MiniLM learns review sentiment; chat: SmolLM2 learns to route tickets (LoRA)",
    )
    demo.add_argument("--records", type=int, default=None, help="default: 2400 (classification), 400 (chat)")
    demo.add_argument("--epochs", type=int, default=1)
    demo.add_argument("--out", default="demo-output")
    demo.add_argument("--port", type=int, default=5000, help="local AWS port (interactive mode)")
    demo.add_argument("--api-port", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    local = sub.add_parser("local", help="the local AWS").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="start the local AWS on 127.0.0.1 and deploy the stack")
    up.add_argument("--port", type=int, default=5000)
    up.add_argument("--api-port", type=int, default=8787)
    up.set_defaults(func=cmd_local_up)

    for name, helptext in (("approve", "approve a pending model"), ("reject", "reject a pending model")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run_id")
        p.add_argument("--reason", required=True)
        p.add_argument("--api-url")
        p.add_argument("--region")
        p.set_defaults(func=cmd_decide, command=name)

    approvals = sub.add_parser("approvals", help="list pending approvals")
    approvals.add_argument("--api-url")
    approvals.add_argument("--region")
    approvals.set_defaults(func=cmd_approvals)

    runs = sub.add_parser("runs", help="workflow runs").add_subparsers(dest="action", required=True)
    show = runs.add_parser("show")
    show.add_argument("run_id")
    show.add_argument("--api-url")
    show.add_argument("--region")
    show.set_defaults(func=cmd_run_show)

    data_cli.add_parser(sub)
    eval_cmd.add_parser(sub)
    models_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    hpo_cmd.add_parser(sub)

    code = sub.add_parser("code", help="training code").add_subparsers(dest="action", required=True)
    publish = code.add_parser("publish", help="upload training/ as sourcedir.tar.gz to the artifacts bucket")
    publish.add_argument("--bucket", required=True)
    publish.set_defaults(func=cmd_code_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
