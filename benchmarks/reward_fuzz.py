"""Fuzz the reward path with a million random completions (issue #20).

Each completion (``spatialrl.answers.fuzz.random_completion``: tags, numbers, units, letters,
negations, hedges, LaTeX, invisible and random characters) is scored alone by the TRL reward
callables, exactly as GRPO calls them, against a random row of any answer type. Prints:

- exceptions (must be 0), with the first few inputs that raised;
- slow calls: one completion's accuracy + format reward taking more than ``--slow-ms`` (1 ms);
- out-of-range rewards: anything not ``None`` and not a finite number in [0, 1].

Timing is per call on a shared machine, so a slow call can be the machine's hiccup; the script
re-times each slow input once and reports the ones that are slow again.

Usage: python benchmarks/reward_fuzz.py [--strings 1000000] [--seed 0] [--slow-ms 1.0]
"""

from __future__ import annotations

import argparse
import math
import random
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strings", type=int, default=1_000_000, help="completions to score (default 1000000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--slow-ms", type=float, default=1.0, help="a call slower than this is reported (default 1)")
    args = parser.parse_args()

    from tqdm import tqdm

    import spatialrl.answers as answers
    from spatialrl.answers.fuzz import random_completion, row_for
    from spatialrl.rewards import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward, format_reward_func

    answers._RAISE_INTERNAL_ERRORS = True  # a parser bug must show here, not hide as None
    accuracy, fmt = accuracy_reward(SharpnessSchedule.paper()), format_reward_func()
    rng = random.Random(args.seed)
    limit = args.slow_ms / 1000.0

    def score(completion: str, row: dict) -> tuple[float | None, float]:
        columns = {key: [value] for key, value in row.items()}
        reward = accuracy(completions=[completion], **columns)[0]
        return reward, fmt(completions=[completion])[0]

    accuracy(completions=["<answer>3 m</answer>"], answer_type=["numerical"], answer_value=[3.0],
             dimension=["length"], options=[[]], answer_index=[-1], answer=["3"], bbox=[[]])  # load pint
    exceptions: list[tuple[str, str]] = []
    slow: list[tuple[float, str, dict]] = []
    out_of_range: list[tuple[str, object]] = []
    start = time.perf_counter()
    for _ in tqdm(range(args.strings), desc="fuzz", unit="str", mininterval=2.0):
        completion, row = random_completion(rng), row_for(rng)
        t0 = time.perf_counter()
        try:
            reward, fmt_reward = score(completion, row)
        except Exception as exc:  # noqa: BLE001 - counting them is the point
            exceptions.append((completion, f"{type(exc).__name__}: {exc}"))
            continue
        elapsed = time.perf_counter() - t0
        if elapsed > limit:
            slow.append((elapsed, completion, row))
        for value in (reward, fmt_reward):
            if value is not None and not (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0):
                out_of_range.append((completion, value))
    total = time.perf_counter() - start

    again = []
    for elapsed, completion, row in slow:
        t0 = time.perf_counter()
        score(completion, row)
        if time.perf_counter() - t0 > limit:
            again.append((elapsed, completion))
    print(f"{args.strings:,} completions in {total:.1f} s ({args.strings / total:,.0f}/s, one process)")
    print(f"exceptions: {len(exceptions)}")
    for completion, error in exceptions[:5]:
        print(f"  {error}  <- {completion[:120]!r}")
    print(f"slow calls (> {args.slow_ms:g} ms): {len(slow)} on the first pass, {len(again)} slow again when re-timed")
    for elapsed, completion in sorted(again, reverse=True)[:5]:
        print(f"  {elapsed * 1000:.2f} ms  <- {completion[:120]!r}")
    print(f"out-of-range rewards: {len(out_of_range)}")
    for completion, value in out_of_range[:5]:
        print(f"  {value!r}  <- {completion[:120]!r}")
    if exceptions or out_of_range:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
