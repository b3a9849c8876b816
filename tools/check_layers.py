#!/usr/bin/env python3
"""Checks that each folder of src/ includes only the folders below it (docs/architecture.md).

Usage: tools/check_layers.py SRC_DIR   -- exits 1 naming every include that points up.
"""
import pathlib
import re
import sys

# Folder -> the folders its non-test code may include (besides itself and common/).
ALLOWED = {
    "api": {"schedule", "fleet", "queues", "workflows", "gateway", "alerts", "logs", "ui", "env", "control", "auth",
            "events", "coord", "http", "metrics", "runtime", "store"},
    "gateway": {"env", "events", "http", "metrics", "runtime", "store"},
    "workflows": {"queues", "client", "events", "http", "metrics", "runtime", "store"},
    "queues": {"events", "http", "metrics", "runtime", "store"},
    "schedule": {"env", "control", "coord", "cron", "events", "http", "metrics", "runtime",
                 "store"},
    "fleet": {"env", "control", "coord", "metrics", "runtime", "store"},
    "env": {"auth", "control", "events", "http", "runtime", "store"},
    "control": {"cron", "events", "http", "store"},
    "auth": {"events", "http", "store"},
    "events": {"http", "store"},
    "http": {"metrics", "runtime", "store"},
    "coord": {"runtime", "store"},
    "store": set(),
    "runtime": set(),
    "cron": set(),
    "metrics": set(),
    "logs": {"env", "events", "http", "metrics", "runtime", "store"},
    "alerts": {"client", "coord", "events", "http", "metrics", "runtime", "store"},
    "client": set(),
    "agent": {"client", "control"},
    "ui": {"gateway", "http", "metrics", "runtime", "store"},
    "common": set(),
}
INCLUDE = re.compile(r'^#include "([a-z_]+)/', re.M)


def main() -> int:
    src = pathlib.Path(sys.argv[1])
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc") or path.name.endswith(("_test.cc", "_bench.cc")):
            continue
        folder = path.relative_to(src).parts[0]
        if folder not in ALLOWED:
            continue  # cmd/ and anything new: not layered here
        for dep in INCLUDE.findall(path.read_text(errors="replace")):
            if dep in (folder, "common") or dep in ALLOWED[folder]:
                continue
            bad.append(f"{path.relative_to(src)} includes {dep}/ (above {folder}/)")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
