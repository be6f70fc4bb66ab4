#!/usr/bin/env python3
"""Count test results from a meson testlog.json: Criterion programs report
'Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N'; any other
test program counts as one test. Prints '<suite> <passed> <failed>'."""
import json
import re
import sys

suite, path = sys.argv[1], sys.argv[2]
passed = failed = 0
syn = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
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
    if m:
        tested, passing, failing, crashing = map(int, m[-1])
        passed += passing
        failed += tested - passing
        if not ok and tested == passing:
            failed += 1  # the program failed outside any test (leak report, sanitizer)
    else:
        passed += ok
        failed += not ok
print(f"{suite} {passed} {failed}")
