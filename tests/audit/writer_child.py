"""A writer process for the crash and PostgreSQL tests: appends from several threads and prints
each record id (with a flush) only after its append has returned."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from charter.audit import open_sink

from tests.audit.helpers import context, decision


def main() -> None:
    url, key, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sink = open_sink(url, key, checkpoint_every=int(sys.argv[5]) if len(sys.argv) > 5 else 50)
    out = threading.Lock()

    def work(t: int) -> None:
        for i in range(count):
            rid = sink.append(decision(t * 1_000_000 + i, deny=i % 3 == 0), context())
            with out:
                sys.stdout.write(rid + "\n")
                sys.stdout.flush()

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sink.close()


if __name__ == "__main__":
    main()
