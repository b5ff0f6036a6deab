"""Summarize a connectconformance log: passes by protocol, failures by suite and by reason.

A failure whose only complaint is "server echoed back a timeout ... but none was expected" is
counted apart: it means the gateway gave a call its default deadline (T-16), which serve.py
switches off with default_deadline: false; a count above 0 says that did not take.
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
    runs = {m.group(2): int(m.group(1)) for m in re.finditer(
        r"Running (\d+) tests with \S+ for server config #\d+ \{HTTP_VERSION_\d, "
        r"PROTOCOL_(\w+), TLS", text)}
    grpc_cases = sum(int(m) for m in re.findall(
        r"Running (\d+) tests with \S+ for server config #\d+ \{HTTP_VERSION_2, PROTOCOL_GRPC,",
        text))
    runs["GRPC"] = grpc_cases
    for protocol, cases in runs.items():
        marker = {"CONNECT": ("Protocol:PROTOCOL_CONNECT/", "Connect "),
                  "GRPC_WEB": ("Protocol:PROTOCOL_GRPC_WEB/", "gRPC-Web "),
                  "GRPC": ("Protocol:PROTOCOL_GRPC/", "gRPC ")}[protocol]
        bad = sum(1 for n in failures if marker[0] in n or n.startswith(marker[1]))
        print(f"  {protocol:<9} {cases - bad}/{cases} = {100 * (cases - bad) / cases:.1f} %")
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
