"""Summarize a connectconformance log: passes, failures by suite, and each failure's reasons.

A failure whose only complaint is "server echoed back a timeout ... but none was expected" is
counted apart: the gateway gives every call a deadline on purpose (the backend's timeout_s),
so the suite's server sees one the client did not send. That is policy, not a wire fault.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

DEADLINE_BY_DESIGN = re.compile(r"server echoed back a timeout \(\d+ ms\) but none was expected")


def main(path: str) -> None:
    text = Path(path).read_text(errors="replace")
    failures: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("FAILED: "):
            name = line[len("FAILED: "):].rstrip(":")
            failures[name] = []
        elif name is not None and line.startswith("\t"):
            failures[name].append(line.strip())
        else:
            name = None
    totals = re.search(r"Total cases: (\d+)\n(\d+) passed, (\d+) failed", text)
    if totals is None:
        print(f"no totals in {path} (did the run finish?); {len(failures)} failures so far")
        return
    total, passed, failed = map(int, totals.groups())
    by_design = [n for n, reasons in failures.items()
                 if reasons and all(DEADLINE_BY_DESIGN.fullmatch(r) for r in reasons)]
    applicable = total - len(by_design)
    print(f"total {total}, passed {passed}, failed {failed}")
    print(f"failed only because the gateway sets a deadline on every call: {len(by_design)}")
    print(f"applicable {applicable}: {passed}/{applicable} = {100 * passed / applicable:.1f} %")
    suites = Counter(n.split("/")[0] for n in failures if n not in by_design)
    print("other failures by suite:")
    for suite, count in suites.most_common():
        print(f"  {count:4d}  {suite}")
    reasons = Counter(re.sub(r"\d+", "N", r)[:110] for n, rs in failures.items()
                      if n not in by_design for r in rs)
    print("their reasons (numbers as N):")
    for reason, count in reasons.most_common(25):
        print(f"  {count:4d}  {reason}")


if __name__ == "__main__":
    main(sys.argv[1])
