"""postwire against Postfix, the MTA a user would pick instead, in one run.

    .venv/bin/python bench/compare.py                 # the full comparison (~5 minutes)
    .venv/bin/python bench/compare.py --quick         # fewer messages, no split run

It runs, one after the other on this machine:

1. ``../shared/bench/postfix_relay.sh``: Postfix relaying 2 KB messages through its
   fsync'd queue into ``smtp-sink`` (installs Debian's postfix if missing, rewrites its
   configuration: development and CI machines only);
2. ``bench/e2e.py`` saturated, one recipient per request, ``postwire run all``;
3. the same at 50 % of the rate postwire delivered in 2, for latencies below saturation;
4. the same saturated as four processes (``--split``);
5. the same saturated with ten recipients per request;

and prints each side's end-to-end rate, the ratios against Postfix, the latencies and
the peak RSS of every postwire process. Rates are messages (one recipient each) per
second from the first byte sent to the last message at the sink.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
POSTFIX = HERE.parent.parent / "shared" / "bench" / "postfix_relay.sh"


def postfix(messages: int, size: int, trials: int) -> tuple[float, float]:
    """Postfix's median (as its script reports it) and best end-to-end rate."""
    print(f"== Postfix: {messages} messages of {size} bytes, {trials} trial(s)", flush=True)
    done = subprocess.run(  # noqa: S603
        ["bash", str(POSTFIX), str(messages), str(size), str(trials)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    print(done.stdout.rstrip())
    found = re.search(r"^postfix_e2e_msgs_per_s (\d+(?:\.\d+)?)$", done.stdout, re.MULTILINE)
    if not found:
        raise SystemExit(f"postfix_relay.sh printed no rate:\n{done.stdout}\n{done.stderr}")
    trials_found = re.findall(r"^t\d+ \S+ \S+ \S+ (\d+)$", done.stdout, re.MULTILINE)
    best = max((float(t) for t in trials_found), default=float(found.group(1)))
    return float(found.group(1)), best


def postwire(title: str, *options: str) -> dict[str, object]:
    print(f"== postwire: {title}", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(  # noqa: S603
            [sys.executable, str(HERE / "e2e.py"), *options, "--json", out.name],
            check=True,
            timeout=1800,
        )
        figures: dict[str, object] = json.loads(Path(out.name).read_text())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="postwire against Postfix, in one run")
    parser.add_argument("--messages", type=int, default=10000, help="messages per run")
    parser.add_argument("--size", type=int, default=2048, help="message size in bytes")
    parser.add_argument("--trials", type=int, default=2, help="Postfix trials (median)")
    parser.add_argument("--quick", action="store_true", help="4000 messages, no split run")
    args = parser.parse_args()
    messages = 4000 if args.quick else args.messages
    common = ["--size", str(args.size), "--concurrency", "32"]

    reference, best = postfix(messages, args.size, 1 if args.quick else args.trials)
    one = postwire("run all, 1 recipient/request", "--messages", str(messages), *common)
    half = float(one["delivered_per_s"]) / 2  # type: ignore[arg-type]
    paced = postwire(
        f"run all at 50 % ({half:.0f} requests/s)",
        "--messages",
        str(max(2000, int(half * 10))),
        "--rate",
        f"{half:.1f}",
        *common,
    )
    split = (
        None
        if args.quick
        else postwire("split, 1 recipient/request", "--messages", str(messages), "--split", *common)
    )
    ten = postwire(
        "run all, 10 recipients/request", "--messages", str(messages), "--recipients", "10", *common
    )

    def rate(figures: dict[str, object]) -> float:
        return float(figures["delivered_per_s"])  # type: ignore[arg-type]

    print()
    print(f"postwire vs Postfix, {args.size}-byte messages, {messages} per run")
    print(f"  Postfix relay (smtp-source -> postfix -> smtp-sink)   {reference:8.0f} msgs/s")
    print(f"  Postfix, best trial                                   {best:8.0f} msgs/s")
    rows = [("run all, 1 rcpt/request", one), ("run all, 10 rcpts/request", ten)]
    if split is not None:
        rows.insert(1, ("split, 1 rcpt/request", split))
    for name, figures in rows:
        print(
            f"  postwire {name:<27} {rate(figures):8.0f} msgs/s   "
            f"ratio {rate(figures) / reference:5.2f}, to the best trial {rate(figures) / best:5.2f}"
        )
    print(f"  at 50 % load ({half:.0f}/s, run all, 1 rcpt/request):")
    print(
        f"    accept             p50 {paced['accept_p50_ms']:7.1f} ms   "
        f"p99 {paced['accept_p99_ms']:7.1f} ms"
    )
    print(
        f"    accept->delivered  p50 {paced['to_delivery_p50_ms']:7.1f} ms   "
        f"p99 {paced['to_delivery_p99_ms']:7.1f} ms"
    )
    print("  peak RSS")
    for name, figures in [*rows, ("at 50 %", paced)]:
        for process, mb in dict(figures["peak_rss_mb"]).items():  # type: ignore[call-overload]
            print(f"    {name:<27} {process:<10} {mb:7.1f} MB")


if __name__ == "__main__":
    main()
