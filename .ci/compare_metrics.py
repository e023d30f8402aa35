"""Fails when a reproduced metrics.json differs from the committed one.

Scores are compared with an absolute tolerance; confusion-matrix counts as
fractions of the test set (so the same tolerance means the same thing), and
epoch numbers exactly.
"""
import json
import sys

from pipeline.commands.compare import flatten

TOLERANCE = 0.005


def differences(committed: dict, reproduced: dict) -> list[str]:
    old, new = flatten(committed), flatten(reproduced)
    if old.keys() != new.keys():
        return [f"keys differ: {sorted(old.keys() ^ new.keys())}"]
    total = sum(committed["test"]["confusion_matrix"].values())
    problems = []
    for key, was in old.items():
        now = new[key]
        if ".confusion_matrix." in key:
            gap = abs(now - was) / total
        elif isinstance(was, int):
            gap = 0 if now == was else float("inf")
        else:
            gap = abs(now - was)
        if gap > TOLERANCE:
            problems.append(f"{key}: committed {was}, reproduced {now}")
    return problems


if __name__ == "__main__":
    with open(sys.argv[1]) as a, open(sys.argv[2]) as b:
        problems = differences(json.load(a), json.load(b))
    for problem in problems:
        print(f"metrics differ: {problem}")
    if problems:
        sys.exit(1)
    print(f"reproduced metrics match the committed ones (tolerance {TOLERANCE})")
