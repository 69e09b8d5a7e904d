"""Print pytest's counts per tox environment from its JUnit XML reports.

    python .ci/summarize_junit.py ENV REPORT [ENV REPORT ...]

prints `ENV: N passed, N failed, N skipped` for each pair and, for more than
one pair, a `total:` line. tox runs it after each environment's tests (whether
they passed or not) and .ci/run once more at the end for all three backends.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(report: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped); errors count as failed."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def main(argv: list[str]) -> int:
    if not argv or len(argv) % 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pairs = list(zip(argv[::2], argv[1::2], strict=True))
    totals = [0, 0, 0]
    for env, report in pairs:
        if not Path(report).is_file():
            print(f"{env}: no JUnit report at {report} (pytest did not finish)")
            continue
        passed, failed, skipped = counts(Path(report))
        totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
        print(f"{env}: {passed} passed, {failed} failed, {skipped} skipped")
    if len(pairs) > 1:
        print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
