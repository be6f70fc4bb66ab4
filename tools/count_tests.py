#!/usr/bin/env python3
"""Count test results from a meson testlog.json: Criterion programs report
'Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N'; any other
test program counts as one test. A sanitizer report anywhere in a program's
output (UBSan's 'runtime error:', an AddressSanitizer or LeakSanitizer
ERROR) fails one more test, because UBSan only prints by default and a
report from a Criterion worker does not always reach its exit status: the
report is shown on stderr. Prints '<suite> <passed> <failed>'."""
import json
import re
import sys

suite, path = sys.argv[1], sys.argv[2]
passed = failed = 0
syn = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
san = re.compile(r"runtime error:|ERROR: (?:Address|Leak|Thread|Memory)Sanitizer")
try:
    lines = open(path).read().splitlines()
except OSError:
    print(f"{suite} 0 1")
    sys.exit(0)
for line in lines:
    t = json.loads(line)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    m = syn.findall(out)
    ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
    reports = [l for l in out.splitlines() if san.search(l)]
    if m:
        tested, passing, failing, crashing = map(int, m[-1])
        passed += passing
        failed += tested - passing
        if (not ok or reports) and tested == passing:
            failed += 1  # the program failed outside any test (leak report, sanitizer)
    else:
        passed += ok and not reports
        failed += not ok or bool(reports)
    if reports:
        print(f"{suite}: {t.get('name')}: {len(reports)} sanitizer report(s), first: "
              f"{reports[0].strip()[:300]}", file=sys.stderr)
print(f"{suite} {passed} {failed}")
