"""A writer process for the crash and PostgreSQL tests: appends from several threads and prints
each record id (with a flush) only after its append has returned.

argv: URL KEY COUNT THREADS [CHECKPOINT_EVERY [WRITER | spool=DIR]]"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from charter.audit import AuditUnavailable, open_sink

from tests.audit.helpers import context, decision


def main() -> None:
    url, key, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    every = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    mode = sys.argv[6] if len(sys.argv) > 6 else None
    spool = mode[len("spool=") :] if mode and mode.startswith("spool=") else None
    sink = open_sink(url, key, checkpoint_every=every, writer=None if spool else mode, spool=spool)
    out = threading.Lock()

    def work(t: int) -> None:
        for i in range(count):
            try:
                rid = sink.append(decision(t * 1_000_000 + i, deny=i % 3 == 0), context())
            except AuditUnavailable as e:  # not acknowledged: the caller would deny
                sys.stderr.write(f"unavailable: {e}\n")
                continue
            with out:
                sys.stdout.write(rid + "\n")
                sys.stdout.flush()

    if len(sys.argv) > 6:  # the writer (or applier) process, if any, is up: say which
        proc = getattr(sink, "_proc", None) or getattr(sink, "_applier", None)
        sys.stderr.write(f"writer-pid {proc.proc.pid if proc else 0}\n")
        sys.stderr.flush()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sink.close()


if __name__ == "__main__":
    main()
