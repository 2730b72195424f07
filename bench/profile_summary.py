#!/usr/bin/python3
"""Totals a LibTorch profiler trace (chrome://tracing JSON, as linquant_bench_train_step writes
with LINQUANT_BENCH_TRACE=FILE) per operator: calls, total time and self time (time not spent
in nested operators), largest self time first.

Usage: bench/profile_summary.py TRACE.json [--top N]
"""
import argparse
import collections
import json


def summarize(events):
    by_thread = collections.defaultdict(list)
    for event in events:
        if event.get("ph") == "X":
            by_thread[event.get("tid")].append(event)
    calls = collections.Counter()
    total = collections.Counter()
    self_time = collections.Counter()
    for thread_events in by_thread.values():
        # Parents start no later and end no earlier than their children.
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for event in thread_events:
            end = event["ts"] + event["dur"]
            while stack and stack[-1][1] <= event["ts"]:
                stack.pop()
            if stack:
                self_time[stack[-1][0]["name"]] -= event["dur"]
            name = event["name"]
            calls[name] += 1
            total[name] += event["dur"]
            self_time[name] += event["dur"]
            stack.append((event, end))
    return calls, total, self_time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--steps", type=int, default=1, help="divide the totals by this")
    args = parser.parse_args()
    with open(args.trace) as source:
        calls, total, self_time = summarize(json.load(source))
    for counter in (total, self_time):
        for name in counter:
            counter[name] /= args.steps
    print(f"{'operator (per step)':48} {'calls':>6} {'total ms':>10} {'self ms':>10}")
    for name, spent in self_time.most_common(args.top):
        print(f"{name[:48]:48} {calls[name] // args.steps:6d} {total[name] / 1e3:10.2f} "
              f"{spent / 1e3:10.2f}")
    print(f"{'all operators (self)':48} {sum(calls.values()) // args.steps:6d} {'':>10} "
          f"{sum(self_time.values()) / 1e3:10.2f}")


if __name__ == "__main__":
    main()
