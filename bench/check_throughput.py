"""Throughput of `charter check` and of the CEL/Rego baselines on one core.

    /tmp/venv/bin/python bench/check_throughput.py                # 10,000 manifests, ~2-3 minutes
    /tmp/venv/bin/python bench/check_throughput.py --quick        # 2,000 manifests, small samples
    /tmp/venv/bin/python bench/check_throughput.py --docs 5000 --write-results

What it measures (each engine in its own subprocess, pinned to one CPU; regopy and
cel-expr-python crash when loaded into one process):

* start-up: `python -c pass`, `import charter.engine`, `import charter.cli`, `charter --help`;
* charter on the shipped policies (`policies/`, or bench/policies/five.yaml while that
  holds no policy): policy loading, parse only (`read_documents`), evaluation only
  (`check_paths` over documents already read) and end to end (`check_paths`), then one
  `charter check --format json` whose per-policy verdict counts must equal the in-process run;
* the five benchmark policies (bench/policies/five.yaml, five.rego) over the same corpus,
  parsed once and JSON-serialised so parse cost is excluded, by
  - charter's Engine (cel-expr-python, compiled once; includes normalization, matching, exceptions),
  - charter's compiled programs alone over precomputed workload views (like for like with the baselines),
  - cel-python compiling every expression for every evaluation (the naive baseline), and compiled once,
  - OPA via regopy with the bundle built once.
  Every engine's verdicts (pass/deny/error/skip per policy and document) are compared with
  charter's before any rate is reported; disagreements are listed.

Results go to bench/out/results.json and bench/out/results.md; `--write-results` also
replaces the generated part of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
FIVE_YAML = BENCH / "policies" / "five.yaml"
FIVE_REGO = BENCH / "policies" / "five.rego"
SHIPPED = ROOT / "policies"
DEFAULT_CLUSTER = ROOT / "examples" / "clusters" / "aws-eu-central-1.yaml"
RESULTS_MD = BENCH / "RESULTS.md"
BEGIN, END = "<!-- generated:begin -->", "<!-- generated:end -->"

TARGET_E2E = 2_000.0  # manifests/s on one core, end to end
TARGET_RATIO = 20.0  # charter over the naive cel-python baseline

Verdicts = dict[str, dict[str, str]]  # document id -> policy -> pass|deny|error|skip

sys.path.insert(0, str(BENCH))


# --------------------------------------------------------------------------------------------------
# helpers shared by driver and workers


def pin_one_core(cpu: int | None) -> int | None:
    """Run on one CPU only; returns the CPU, or None where affinity is not supported."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu in cpus else cpus[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def doc_id(source: str, index: int, item: int | None, root: str) -> str:
    rel = os.path.relpath(source, root)
    return f"{rel}#{index}" + (f"[{item}]" if item is not None else "")


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def settle_gc() -> None:
    """What `charter check` and `charter serve` do after loading (charter.engine._internal.collector),
    applied in every measuring worker after its setup so that all engines run under the same
    collector settings. Written out here: the regopy worker must not import cel-expr-python."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The shortest wall time of `repeat` runs of fn, and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def sample_indexes(n: int, k: int) -> list[int]:
    """k indexes spread evenly over range(n), so every kind in the mix is represented."""
    if k >= n:
        return list(range(n))
    step = n / k
    return [int(i * step) for i in range(k)]


def policies_in(path: Path) -> int:
    """How many Policy / ValidatingAdmissionPolicy documents the YAML files under `path` hold."""
    count = 0
    files = [path] if path.is_file() else sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError:
            continue
        count += len(re.findall(r"(?m)^kind:\s*(?:Policy|ValidatingAdmissionPolicy)\s*$", text))
    return count


# --------------------------------------------------------------------------------------------------
# workers: each runs in its own process and prints one JSON object


def charter_verdicts(decisions: list[Any], root: str) -> Verdicts:
    out: Verdicts = {}
    for rd in decisions:
        d = rd.document
        out[doc_id(d.source, d.index, d.item, root)] = {o.policy: o.verdict for o in rd.decision.outcomes}
    return out


def worker_startup(args: dict[str, Any]) -> dict[str, Any]:
    """Wall time of fresh interpreters doing nothing, importing charter, and `charter --help`."""
    py = sys.executable
    charter_bin = str(Path(py).with_name("charter"))
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "import charter.engine": [py, "-c", "import charter.engine"],
        "import charter.cli": [py, "-c", "import charter.cli"],
        "charter --help": [charter_bin, "--help"],
    }
    out: dict[str, Any] = {}
    for name, cmd in cmds.items():
        times = []
        for _ in range(args["runs"]):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        out[name] = {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3}
    return out


def worker_charter_shipped(args: dict[str, Any]) -> dict[str, Any]:
    """The real `charter check` path on the shipped policies: load, parse, evaluate, end to end."""
    t0 = time.perf_counter()
    from charter.engine import offline
    from charter.engine._internal.collector import collector_paused
    from charter.engine.documents import read_documents

    from charter._internal.session import load_session

    import_s = time.perf_counter() - t0
    corpus, repeat = args["corpus"], args["repeat"]

    t0 = time.perf_counter()
    session = load_session([args["policies"]], cluster=args["cluster"])
    load_s = time.perf_counter() - t0
    if session.errors:
        return {"error": "; ".join(str(e) for e in session.errors)}
    n_policies = len(session.policies.policies)
    settle_gc()

    parse_corpus = args["parse_corpus"]

    def parse() -> Any:
        with collector_paused():  # inside `charter check`, parsing runs with the collector paused too
            return read_documents([parse_corpus])

    parse_s, parsed = best_of(repeat, parse)
    n_parsed = len(parsed.documents)
    del parsed
    read = read_documents([corpus])
    n_docs = len(read.documents)

    real_read = offline.read_documents

    def from_memory(paths: Any) -> Any:
        return read

    def check(batch_size: int | None = None) -> Any:
        with collector_paused():  # as `charter check` runs it
            return offline.check_paths(session.engine(), [corpus], batch_size=batch_size)

    offline.read_documents = from_memory  # check_paths over documents already read
    try:
        eval_s, run = best_of(repeat, check)
        # The same, one CEL activation per resource (as the webhook evaluates): what batching gains.
        single_s, _ = best_of(repeat, lambda: check(1))
    finally:
        offline.read_documents = real_read
    e2e_s, run2 = best_of(repeat, check)

    verdicts = charter_verdicts(run2.decisions, corpus)
    counts: Counter[str] = Counter()
    for per in verdicts.values():
        for policy, v in per.items():
            counts[f"{policy}:{v}"] += 1
    return {
        "policies": n_policies,
        "policy_digest": session.policies.digest,
        "documents": n_docs,
        "resources": len(run.decisions),
        "input_errors": len(run2.errors),
        "import_ms": import_s * 1e3,
        "load_policies_ms": load_s * 1e3,
        "parse_s": parse_s,
        "eval_s": eval_s,
        "e2e_s": e2e_s,
        "parse_documents": n_parsed,
        "parse_rate": rate(n_parsed, parse_s),
        "eval_rate": rate(n_docs, eval_s),
        "eval_single_rate": rate(n_docs, single_s),
        "e2e_rate": rate(n_docs, e2e_s),
        "verdict_counts": dict(sorted(counts.items())),
    }


def worker_profile(args: dict[str, Any]) -> dict[str, Any]:
    """cProfile of check_paths end to end (the shipped policies) over the corpus."""
    from charter.engine import offline

    from charter._internal.session import load_session

    session = load_session([args["policies"]], cluster=args["cluster"])
    engine = session.engine()
    offline.check_paths(engine, [args["corpus"]])  # warm caches as a real run would have them
    prof = cProfile.Profile()
    prof.enable()
    offline.check_paths(session.engine(), [args["corpus"]])
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(file)}:{line}({func})",
                "calls": nc,
                "tottime_s": tt,
                "cumtime_s": ct,
            }
        )
    by_tot = sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[: args["top"]]
    by_cum = sorted(rows, key=lambda r: r["cumtime_s"], reverse=True)[: args["top"] * 2]
    return {
        "total_s": total,
        "by_tottime": by_tot,
        "by_cumtime": by_cum,
        "policy_digest": session.policies.digest,
    }


def worker_breakdown(args: dict[str, Any]) -> dict[str, Any]:
    """Where check_paths spends its time: per policy, per CEL expression, activations per manifest."""
    from charter.engine import dispatcher, offline
    from charter.engine._internal.cel import program as cel_program
    from charter.engine.documents import read_documents

    from charter._internal.session import load_session

    session = load_session([args["policies"]], cluster=args["cluster"])
    names: dict[str, str] = {}  # program source (variables may be inlined with cel.bind) -> what it is
    for p in session.policies.policies:
        for n, c in p.match_conditions:
            names.setdefault(c.program.source, f"{p.name} matchCondition {n}")
        for v in p.validations:
            names.setdefault(v.expr.program.source, f"{p.name} validation {v.name or v.index}")
            if v.message_expr is not None:
                names.setdefault(v.message_expr.program.source, f"{p.name} messageExpression {v.index}")
        for n, var in p.variables.items():
            names.setdefault(var.program.source, f"{p.name} variables.{n}")
        for a in p.audit_annotations:
            names.setdefault(a.expr.program.source, f"{p.name} auditAnnotation {a.key}")
        combined = getattr(
            p, "all_validations", None
        )  # all validations as one program, when the engine has it
        if combined is not None:
            names.setdefault(combined.source, f"{p.name} all validations (one program)")
    per_policy: dict[str, float] = defaultdict(float)
    per_expr: dict[str, float] = defaultdict(float)
    expr_calls: Counter[str] = Counter()
    counters: dict[str, float] = defaultdict(float)
    clock = time.perf_counter

    real_policy = dispatcher.Engine._evaluate_policy
    real_normalize = dispatcher.normalize
    real_run = cel_program.Program.run
    real_activation = cel_program.new_activation

    def timed_policy(self: Any, policy: Any, *a: Any, **k: Any) -> Any:
        t0 = clock()
        try:
            return real_policy(self, policy, *a, **k)
        finally:
            per_policy[policy.name] += clock() - t0

    def timed_normalize(*a: Any, **k: Any) -> Any:
        t0 = clock()
        try:
            return real_normalize(*a, **k)
        finally:
            counters["normalize_s"] += clock() - t0

    def timed_run(self: Any, activation: Any) -> Any:
        t0 = clock()
        try:
            return real_run(self, activation)
        finally:
            per_expr[self.source] += clock() - t0
            expr_calls[self.source] += 1

    def counted_activation(data: dict[str, Any]) -> Any:
        counters["activations"] += 1
        t0 = clock()
        try:
            return real_activation(data)
        finally:
            counters["activation_s"] += clock() - t0

    t0 = clock()
    read = read_documents([args["corpus"]])
    parse_s = clock() - t0
    setattr(dispatcher.Engine, "_evaluate_policy", timed_policy)  # noqa: B010
    setattr(dispatcher, "normalize", timed_normalize)  # noqa: B010
    setattr(cel_program.Program, "run", timed_run)  # noqa: B010
    # Wherever the engine imported new_activation (the engine changes under us; count them all).
    for name, mod in list(sys.modules.items()):
        if name.startswith("charter.engine") and getattr(mod, "new_activation", None) is real_activation:
            mod.new_activation = counted_activation  # type: ignore[attr-defined]
    offline.read_documents = lambda paths: read
    t0 = clock()
    run = offline.check_paths(session.engine(), [args["corpus"]])
    eval_s = clock() - t0
    n = len(run.decisions)
    us = 1e6 / n
    top = args["top"]
    return {
        "documents": n,
        "policy_digest": session.policies.digest,
        "parse_us": parse_s * us,
        "eval_us": eval_s * us,
        "normalize_us": counters["normalize_s"] * us,
        "activations_per_doc": counters["activations"] / n,
        "activation_us": counters["activation_s"] * us,
        "evals_per_doc": sum(expr_calls.values()) / n,
        "cel_us": sum(per_expr.values()) * us,
        "policies": [{"policy": k, "us": v * us} for k, v in sorted(per_policy.items(), key=lambda x: -x[1])],
        "expressions": [
            {
                "what": names.get(src, src[:60]),
                "us": t * us,
                "calls_per_doc": expr_calls[src] / n,
                "us_per_call": 1e6 * t / expr_calls[src],
            }
            for src, t in sorted(per_expr.items(), key=lambda x: -x[1])[:top]
        ],
    }


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        i = file.find(marker)
        if i >= 0:
            return file[i + len(marker) :]
    return file


def worker_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """Parse the corpus once; write objects and their workload views as one JSON file."""
    from charter.engine.documents import read_documents
    from charter.engine.loader import classify
    from charter.engine.normalize import normalize

    read = read_documents([args["corpus"]])
    records = []
    for d in read.documents:
        if classify(d) != "resource":
            continue
        w = normalize(d.data)
        records.append(
            {
                "id": doc_id(d.source, d.index, d.item, args["corpus"]),
                "object": d.data,
                "workload": w,
                "applicable": bool(w.get("podTemplates")),
            }
        )
    Path(args["json"]).write_text(json.dumps(records))
    return {"documents": len(records), "applicable": sum(r["applicable"] for r in records)}


def _load_json(path: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(Path(path).read_text())
    return data


def _catalog_of_five() -> dict[str, Any]:
    import yaml

    for doc in yaml.safe_load_all(FIVE_YAML.read_text()):
        if doc and doc.get("kind") == "Catalog":
            spec: dict[str, Any] = doc["spec"]
            return spec
    raise SystemExit("five.yaml has no Catalog")


def _five_policies() -> list[tuple[str, str]]:
    """(policy name, its one validation expression) from five.yaml."""
    import yaml

    out = []
    for doc in yaml.safe_load_all(FIVE_YAML.read_text()):
        if doc and doc.get("kind") == "Policy":
            (v,) = doc["spec"]["validations"]
            out.append((doc["metadata"]["name"], v["expression"]))
    return out


def worker_charter_five(args: dict[str, Any]) -> dict[str, Any]:
    """charter's Engine on five.yaml over the JSON corpus, and its compiled programs alone."""
    from charter.engine import attributes_for_object
    from charter.engine._internal.cel.program import new_activation

    from charter._internal.session import load_session

    records = _load_json(args["json"])
    session = load_session([str(FIVE_YAML)])
    if session.errors:
        return {"error": "; ".join(str(e) for e in session.errors)}
    engine = session.engine()
    repeat = args["repeat"]
    settle_gc()

    def run_engine() -> Verdicts:
        out: Verdicts = {}
        for r in records:
            decision = engine.evaluate(attributes_for_object(r["object"]))
            out[r["id"]] = {o.policy: o.verdict for o in decision.outcomes}
        return out

    eval_s, verdicts = best_of(repeat, run_engine)

    programs = [(p.name, p.validations[0].expr.program) for p in session.policies.policies]
    catalog = session.context.catalog

    def run_core() -> Verdicts:
        out: Verdicts = {}
        for r in records:
            if not r["applicable"]:
                out[r["id"]] = {name: "skip" for name, _ in programs}
                continue
            act = new_activation({"workload": r["workload"], "catalog": catalog, "variables": {}})
            per = {}
            for name, prog in programs:
                value, err = prog.run(act)
                per[name] = "error" if err is not None else ("pass" if value is True else "deny")
            out[r["id"]] = per
        return out

    core_s, core_verdicts = best_of(repeat, run_core)
    Path(args["verdicts"]).write_text(json.dumps({"engine": verdicts, "core": core_verdicts}))
    n = len(records)
    return {
        "documents": n,
        "eval_s": eval_s,
        "eval_rate": rate(n, eval_s),
        "core_s": core_s,
        "core_rate": rate(n, core_s),
    }


def worker_celpy(args: dict[str, Any]) -> dict[str, Any]:
    """cel-python: every expression compiled for every evaluation (naive), and compiled once."""
    import importlib

    celpy: Any = importlib.import_module("celpy")  # untyped re-exports

    records = _load_json(args["json"])
    picked = [records[i] for i in sample_indexes(len(records), args["sample"])]
    policies = _five_policies()
    catalog = celpy.json_to_cel(_catalog_of_five())
    env = celpy.Environment()
    settle_gc()

    def outcome(prog: Any, act: dict[str, Any]) -> str:
        try:
            value = prog.evaluate(act)
        except celpy.CELEvalError:
            return "error"
        if isinstance(value, celpy.CELEvalError):
            return "error"
        return "pass" if bool(value) is True and isinstance(value, celpy.celtypes.BoolType) else "deny"

    def run(compiled: dict[str, Any] | None) -> Verdicts:
        out: Verdicts = {}
        for r in picked:
            if not r["applicable"]:
                out[r["id"]] = {name: "skip" for name, _ in policies}
                continue
            act = {"workload": celpy.json_to_cel(r["workload"]), "catalog": catalog}
            per = {}
            for name, expr in policies:
                prog = compiled[name] if compiled is not None else env.program(env.compile(expr))
                per[name] = outcome(prog, act)
            out[r["id"]] = per
        return out

    naive_s, verdicts = best_of(1, lambda: run(None))
    compiled = {name: env.program(env.compile(expr)) for name, expr in policies}
    once_s, verdicts_once = best_of(1, lambda: run(compiled))
    Path(args["verdicts"]).write_text(json.dumps({"naive": verdicts, "once": verdicts_once}))
    n = len(picked)
    return {
        "documents": n,
        "naive_s": naive_s,
        "naive_rate": rate(n, naive_s),
        "once_s": once_s,
        "once_rate": rate(n, once_s),
    }


def worker_regopy(args: dict[str, Any]) -> dict[str, Any]:
    """OPA via regopy: five.rego built into a bundle once, queried per document."""
    import regopy

    records = _load_json(args["json"])
    catalog = _catalog_of_five()
    builder = regopy.Interpreter()
    builder.add_module("five.rego", FIVE_REGO.read_text())
    t0 = time.perf_counter()
    bundle = builder.build("x = data.charter.bench.violations")
    build_ms = (time.perf_counter() - t0) * 1e3
    if not bundle.ok():
        return {"error": "the bundle did not build"}
    runner = regopy.Interpreter()
    names = [name for name, _ in _five_policies()]
    # The corpus is serialised once, outside the timing, as an input term per document.
    inputs = [(r["id"], json.dumps({"workload": r["workload"], "catalog": catalog})) for r in records]
    settle_gc()

    def run() -> tuple[Verdicts, list[str]]:
        out: Verdicts = {}
        raw: list[str] = []
        for doc, term in inputs:
            runner.set_input_term(term)
            raw.append(str(runner.query_bundle(bundle)))
            out[doc] = {}
        return out, raw

    eval_s, (verdicts, raw) = best_of(args["repeat"], run)
    errors = 0
    for (doc, _), text in zip(inputs, raw, strict=True):
        try:
            x = json.loads(text)["bindings"]["x"]
        except (ValueError, KeyError, TypeError):
            verdicts[doc] = {name: "error" for name in names}
            errors += 1
            continue
        verdicts[doc] = (
            {name: ("deny" if x.get(name) else "pass") for name in names}
            if x
            else {name: "skip" for name in names}
        )
    Path(args["verdicts"]).write_text(json.dumps({"regopy": verdicts}))
    n = len(inputs)
    return {
        "documents": n,
        "bundle_build_ms": build_ms,
        "eval_s": eval_s,
        "eval_rate": rate(n, eval_s),
        "errors": errors,
        "version": getattr(regopy, "rego_version", lambda: "?")(),
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "startup": worker_startup,
    "charter-shipped": worker_charter_shipped,
    "profile": worker_profile,
    "breakdown": worker_breakdown,
    "prepare": worker_prepare,
    "charter-five": worker_charter_five,
    "celpy": worker_celpy,
    "regopy": worker_regopy,
}


def run_worker(name: str, args: dict[str, Any]) -> None:
    cpu = pin_one_core(args.get("cpu"))
    result = WORKERS[name](args)
    result["cpu"] = cpu
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------------
# driver


def spawn(name: str, args: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    log(f"  {name} ...")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--worker-args", json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise SystemExit(f"worker {name}: {result['error']}")
    result["wall_s"] = time.perf_counter() - t0
    log(f"  {name} done in {result['wall_s']:.1f}s")
    return result


def compare(reference: Verdicts, other: Verdicts, label: str) -> dict[str, Any]:
    """Documents of `other` whose per-policy verdicts differ from `reference`."""
    mismatches: list[dict[str, Any]] = []
    missing = 0
    for doc, verdicts in other.items():
        ref = reference.get(doc)
        if ref is None:
            missing += 1
            continue
        diff = {p: (ref.get(p), v) for p, v in verdicts.items() if ref.get(p) != v}
        if diff:
            mismatches.append({"document": doc, "diff": diff})
    per_policy: Counter[str] = Counter()
    for m in mismatches:
        for p in m["diff"]:
            per_policy[p] += 1
    return {
        "engine": label,
        "documents": len(other),
        "agree": len(other) - len(mismatches) - missing,
        "mismatches": len(mismatches),
        "missing": missing,
        "by_policy": dict(per_policy),
        "examples": mismatches[:5],
    }


def violation_counts(verdicts: Verdicts) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for per in verdicts.values():
        for policy, v in per.items():
            out.setdefault(policy, Counter())[v] += 1
    return {p: dict(sorted(c.items())) for p, c in sorted(out.items())}


def cli_check(corpus: str, policies: str, cluster: str | None, out_json: Path) -> dict[str, Any]:
    """`charter check --format json` once; per-policy verdict counts from its report."""
    charter_bin = str(Path(sys.executable).with_name("charter"))
    cmd = [
        charter_bin,
        "check",
        corpus,
        "--policies",
        policies,
        "--format",
        "json",
        "--output",
        str(out_json),
    ]
    if cluster:
        cmd += ["--cluster", cluster]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - t0
    report = json.loads(out_json.read_text())
    counts: Counter[str] = Counter()
    for res in report["resources"]:
        for policy, v in res["verdicts"].items():
            counts[f"{policy}:{v}"] += 1
    return {
        "exit_code": proc.returncode,
        "wall_s": wall,
        "summary": report["summary"],
        "verdict_counts": dict(sorted(counts.items())),
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions: dict[str, str] = {}
    from importlib import metadata

    for pkg in ("charter", "cel-expr-python", "cel-python", "regopy", "PyYAML", "pydantic"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    import yaml

    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "engine", "charter", "policies"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split("\n")
    return {
        "dirty": sorted(line[3:] for line in dirty if line.strip()),
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
        "packages": versions,
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=None, help="corpus size (default 10000; 2000 with --quick)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="small corpus, one repetition, small samples")
    ap.add_argument("--repeat", type=int, default=None, help="timed repetitions, best kept (default 2)")
    ap.add_argument(
        "--shipped-docs",
        type=int,
        default=None,
        help="manifests for the shipped-policy evaluation and the CLI run (default 2000; 1000 quick; 0: all)",
    )
    ap.add_argument(
        "--naive-docs", type=int, default=None, help="documents for cel-python (default 1000; 100 quick)"
    )
    ap.add_argument("--policies", default=None, help="policies for the end-to-end run (default: shipped)")
    ap.add_argument(
        "--cluster",
        default=None,
        help="ClusterProfile for the end-to-end run (default examples/clusters/aws-eu-central-1.yaml; 'none')",
    )
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin workers to (default: the last one)")
    ap.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile charter end to end (auto: when it misses the target)",
    )
    ap.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        run_worker(a.worker, json.loads(a.worker_args))
        return 0

    from corpus import DEFAULT_OUT, generate

    docs = a.docs or (2_000 if a.quick else 10_000)
    repeat = a.repeat or (1 if a.quick else 2)
    naive_docs = a.naive_docs or (100 if a.quick else 600)
    shipped_docs = a.shipped_docs if a.shipped_docs is not None else (1_000 if a.quick else 2_000)
    shipped_docs = docs if shipped_docs <= 0 else min(shipped_docs, docs)
    cpu = a.cpu if a.cpu is not None else (os.cpu_count() or 1) - 1
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731

    OUT.mkdir(parents=True, exist_ok=True)
    corpus_dir = DEFAULT_OUT if docs == 10_000 and a.seed == 7 else OUT / f"corpus-{docs}-{a.seed}"
    t0 = time.perf_counter()
    corpus = str(generate(corpus_dir, docs, a.seed))
    log(f"corpus: {docs} manifests under {corpus} ({time.perf_counter() - t0:.1f}s)")
    # The same generator and seed: the smaller corpora are prefixes of the full one.
    sub_corpus = (
        corpus
        if shipped_docs == docs
        else str(generate(OUT / f"corpus-{shipped_docs}-{a.seed}", shipped_docs, a.seed))
    )
    prof_docs = min(docs, 1_000)
    prof_corpus = (
        corpus
        if prof_docs == docs
        else str(generate(OUT / f"corpus-{prof_docs}-{a.seed}", prof_docs, a.seed))
    )
    load_before = os.getloadavg()

    if a.policies:
        shipped, shipped_note = a.policies, "given with --policies"
    elif policies_in(SHIPPED):
        shipped, shipped_note = str(SHIPPED), "the shipped policies in policies/"
    else:
        shipped, shipped_note = str(FIVE_YAML), "policies/ holds no Policy yet: bench/policies/five.yaml"
    log(f"end-to-end policies: {shipped} ({shipped_note})")
    if a.cluster == "none":
        cluster = None
    elif a.cluster:
        cluster = a.cluster
    else:
        cluster = str(DEFAULT_CLUSTER) if DEFAULT_CLUSTER.is_file() else None

    base = {"corpus": corpus, "cpu": cpu, "repeat": repeat}
    res: dict[str, Any] = {
        "machine": machine(),
        "params": {
            "docs": docs,
            "seed": a.seed,
            "repeat": repeat,
            "naive_docs": naive_docs,
            "shipped_docs": shipped_docs,
            "profile_docs": prof_docs,
            "cpu": cpu,
        },
        "command": "/tmp/venv/bin/python bench/check_throughput.py" + (" " + " ".join(argv or sys.argv[1:])),
        "shipped_policies": {"path": os.path.relpath(shipped, ROOT), "note": shipped_note},
        "cluster": os.path.relpath(cluster, ROOT) if cluster else None,
    }
    res["startup"] = spawn("startup", {"cpu": cpu, "runs": 3 if a.quick else 5}, log)
    shipped_args = {
        **base,
        "corpus": sub_corpus,
        "parse_corpus": corpus,
        "policies": shipped,
        "cluster": cluster,
    }
    res["charter_shipped"] = spawn("charter-shipped", shipped_args, log)
    log("  charter check --format json (sanity check) ...")
    res["cli"] = cli_check(sub_corpus, shipped, cluster, OUT / "charter-check.json")
    res["cli"]["agrees"] = res["cli"]["verdict_counts"] == res["charter_shipped"]["verdict_counts"]

    corpus_json = OUT / f"corpus-{docs}-{a.seed}.json"
    res["prepare"] = spawn("prepare", {**base, "json": str(corpus_json)}, log)
    common = {**base, "json": str(corpus_json)}
    v_charter, v_celpy, v_rego = (
        OUT / "verdicts-charter.json",
        OUT / "verdicts-celpy.json",
        OUT / "verdicts-regopy.json",
    )
    res["charter_five"] = spawn("charter-five", {**common, "verdicts": str(v_charter)}, log)
    res["celpy"] = spawn("celpy", {**common, "sample": naive_docs, "verdicts": str(v_celpy)}, log)
    res["regopy"] = spawn("regopy", {**common, "repeat": 1, "verdicts": str(v_rego)}, log)

    charter_v = json.loads(v_charter.read_text())
    celpy_v = json.loads(v_celpy.read_text())
    rego_v = json.loads(v_rego.read_text())
    ref: Verdicts = charter_v["engine"]
    res["agreement"] = [
        compare(ref, charter_v["core"], "charter compiled programs on precomputed workload views"),
        compare(ref, celpy_v["naive"], "cel-python, compiled per evaluation"),
        compare(ref, celpy_v["once"], "cel-python, compiled once"),
        compare(ref, rego_v["regopy"], "OPA via regopy"),
    ]
    res["five_verdict_counts"] = violation_counts(ref)

    e2e = res["charter_shipped"]["e2e_rate"]
    want_profile = a.profile == "always" or (a.profile == "auto" and e2e < TARGET_E2E)
    if want_profile:
        prof_args = {"corpus": prof_corpus, "cpu": cpu, "policies": shipped, "cluster": cluster, "top": 15}
        res["profile"] = spawn("profile", prof_args, log)
        res["profile"]["documents"] = prof_docs
        res["breakdown"] = spawn("breakdown", prof_args, log)
    res["loadavg"] = {"before": load_before, "after": os.getloadavg()}

    (OUT / "results.json").write_text(json.dumps(res, indent=1))
    md = render(res)
    (OUT / "results.md").write_text(md)
    if a.write_results:
        write_results_md(md)
    print(md)
    disagreements = sum(x["mismatches"] + x["missing"] for x in res["agreement"])
    return 0 if disagreements == 0 and res["cli"]["agrees"] else 1


# --------------------------------------------------------------------------------------------------
# report


def _n(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _rows(rows: list[list[str]]) -> Iterator[str]:
    yield "| " + " | ".join(rows[0]) + " |"
    yield "|" + "|".join("---" if i == 0 else "---:" for i in range(len(rows[0]))) + "|"
    for r in rows[1:]:
        yield "| " + " | ".join(r) + " |"


def render(res: dict[str, Any]) -> str:
    m, p = res["machine"], res["params"]
    sh, five, cel, rego = res["charter_shipped"], res["charter_five"], res["celpy"], res["regopy"]
    e2e = sh["e2e_rate"]
    vs_naive = five["eval_rate"] / cel["naive_rate"]
    vs_once = five["eval_rate"] / cel["once_rate"]
    vs_opa = five["eval_rate"] / rego["eval_rate"]
    lines: list[str] = []
    add = lines.append
    add(f"Generated by `{res['command'].strip()}` at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    add("")
    add("### Machine")
    add("")
    add(
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; every engine ran in its own process pinned to CPU {p['cpu']}"
    )
    add(f"- Python {m['python']} ({m['platform']}); PyYAML with libyaml: {m['libyaml']}")
    add("- " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()))
    dirty = m.get("dirty") or []
    add(
        f"- charter at commit {m['git_commit']}"
        + (
            f", working tree with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}"
            if dirty
            else ""
        )
    )
    add(
        f"- corpus: {p['docs']:,} manifests (seed {p['seed']}); shipped-policy evaluation, end to end and the CLI "
        f"run on its first {p['shipped_docs']:,} manifests (a prefix: same generator and seed); "
        f"cel-python on an evenly spread sample of {cel['documents']} documents; best of {p['repeat']} timed runs "
        "for charter, one for cel-python and regopy"
    )
    digests = {res[k]["policy_digest"] for k in ("charter_shipped", "profile", "breakdown") if k in res}
    if len(digests) > 1:
        add(
            "- **the shipped policies changed during this run** (other engineers commit to `policies/`): "
            "the throughput rows, the breakdown and the profile did not all see the same policies; rerun"
        )
    la = res["loadavg"]
    add(
        f"- load average (1/5/15 min) before {la['before'][0]:.2f}/{la['before'][1]:.2f}/{la['before'][2]:.2f}, "
        f"after {la['after'][0]:.2f}/{la['after'][1]:.2f}/{la['after'][2]:.2f} (other work shares this machine)"
    )
    add("")
    add("### Targets")
    add("")
    met_e2e = e2e >= TARGET_E2E
    met_ratio = vs_naive >= TARGET_RATIO
    add(
        f"- **>= {TARGET_E2E:,.0f} manifests/s end to end on one core: {'MET' if met_e2e else 'NOT MET'}** "
        f"({_n(e2e)}/s with {sh['policies']} policies from `{res['shipped_policies']['path']}`, "
        f"{res['shipped_policies']['note']}; cluster profile `{res['cluster']}`)."
    )
    like = five["core_rate"] / cel["naive_rate"]
    add(
        f"- **>= {TARGET_RATIO:.0f}x the naive cel-python baseline: {'MET' if met_ratio else 'NOT MET'}** "
        f"({vs_naive:,.1f}x on the five benchmark policies, charter's whole Engine, normalization included, "
        f"against cel-python compiling per evaluation over precomputed workload views; "
        f"like for like, charter's compiled CEL alone is {like:,.0f}x)."
    )
    add("")
    add("### Throughput (manifests/s, one core)")
    add("")
    rows = [
        ["measurement", "policies", "manifests/s", "µs/manifest"],
        ["charter `check_paths` end to end (parse + evaluate)", f"shipped ({sh['policies']})", _n(e2e), _n(1e6 / e2e)],
        [f"charter parse only (`read_documents`, C loader; {sh['parse_documents']:,} manifests)", "-", _n(sh["parse_rate"]), _n(1e6 / sh["parse_rate"])],
        ["charter evaluation only (`check_paths`, documents read)", f"shipped ({sh['policies']})", _n(sh["eval_rate"]), _n(1e6 / sh["eval_rate"])],
        ["same, one CEL activation per resource (`batch_size=1`, as the webhook)", f"shipped ({sh['policies']})", _n(sh["eval_single_rate"]), _n(1e6 / sh["eval_single_rate"])],
        ["charter Engine, eval only (normalize + match + CEL + exceptions)", "five", _n(five["eval_rate"]), _n(1e6 / five["eval_rate"])],
        ["charter compiled CEL alone, workload views precomputed", "five", _n(five["core_rate"]), _n(1e6 / five["core_rate"])],
        ["naive cel-python (compile per evaluation)", "five", _n(cel["naive_rate"]), _n(1e6 / cel["naive_rate"])],
        ["cel-python, compiled once", "five", _n(cel["once_rate"]), _n(1e6 / cel["once_rate"])],
        ["OPA via regopy, bundle built once", "five", _n(rego["eval_rate"]), _n(1e6 / rego["eval_rate"])],
    ]  # fmt: skip
    lines.extend(_rows(rows))
    add("")
    add("Ratios (same run, same documents):")
    add("")
    add(f"- charter Engine / naive cel-python: **{vs_naive:,.0f}x**")
    add(f"- charter Engine / cel-python compiled once: {vs_once:,.1f}x")
    add(f"- charter Engine / OPA (regopy): **{vs_opa:,.1f}x**")
    add(
        f"- shipped policies, evaluation in batches / one activation per resource: "
        f"{sh['eval_rate'] / sh['eval_single_rate']:,.2f}x"
    )
    add(
        f"- charter compiled CEL alone / OPA (regopy), like for like: {five['core_rate'] / rego['eval_rate']:,.1f}x"
    )
    add("")
    add(
        "The baselines read charter's workload view, computed once before timing (by `normalize`), "
        "so they do not pay for normalization, kind matching or exceptions; the charter Engine rows do. "
        "The corpus was parsed once and JSON-serialised; regopy received each document as a JSON input "
        "term prepared before timing."
    )
    add("")
    add("### Start-up (wall time of a fresh process, median)")
    add("")
    st = res["startup"]
    srows = [["command", "median ms", "min ms"]] + [
        [f"`{k}`", _n(v["median_ms"]), _n(v["min_ms"])] for k, v in st.items() if k != "cpu" and k != "wall_s"
    ]
    lines.extend(_rows(srows))
    add("")
    add(
        f"In-process: importing the engine took {sh['import_ms']:.0f} ms, loading and compiling "
        f"{sh['policies']} policies {sh['load_policies_ms']:.0f} ms. "
        f"`charter check --format json` over the {p['shipped_docs']:,} manifests took {res['cli']['wall_s']:.1f} s wall "
        f"(start-up, load, parse, evaluate and the JSON report) = {_n(p['shipped_docs'] / res['cli']['wall_s'])} manifests/s."
    )
    add("")
    add("### Correctness checks (before any rate is trusted)")
    add("")
    cli = res["cli"]
    add(
        f"- `charter check --format json` (exit {cli['exit_code']}): {cli['summary']['resources']:,} resources, "
        f"{cli['summary']['evaluations']:,} evaluations, {cli['summary']['denied']:,} denials, "
        f"{cli['summary']['errors']} errors, {cli['summary']['inputErrors']} input errors; per-policy verdict counts "
        f"{'equal' if cli['agrees'] else '**DIFFER FROM**'} the in-process `check_paths` run."
    )
    for ag in res["agreement"]:
        status = (
            "agree on every document"
            if ag["mismatches"] == 0 and ag["missing"] == 0
            else f"**{ag['mismatches']} documents disagree** (by policy: {ag['by_policy']}; missing {ag['missing']})"
        )
        add(f"- {ag['engine']}: {ag['documents']:,} documents, per-policy verdicts {status}.")
        for ex in ag["examples"]:
            add(f"  - `{ex['document']}`: {ex['diff']} (charter, other)")
    add("")
    add("Verdicts of the five benchmark policies over the corpus (charter Engine):")
    add("")
    vrows = [["policy", "pass", "deny", "error", "skip"]] + [
        [k, *(str(c.get(x, 0)) for x in ("pass", "deny", "error", "skip"))]
        for k, c in res["five_verdict_counts"].items()
    ]
    lines.extend(_rows(vrows))
    add("")
    add(
        f"Verdicts of the shipped policies over the corpus (in-process `check_paths`, cluster `{res['cluster']}`):"
    )
    add("")
    shipped_counts: dict[str, Counter[str]] = {}
    for key, c in sh["verdict_counts"].items():
        policy, verdict = key.rsplit(":", 1)
        shipped_counts.setdefault(policy, Counter())[verdict] += c
    kinds = ("pass", "deny", "warn", "audit", "error", "skip")
    srows2 = [["policy", *kinds]] + [
        [k, *(str(c.get(x, 0)) for x in kinds)] for k, c in sorted(shipped_counts.items())
    ]
    lines.extend(_rows(srows2))
    if "breakdown" in res:
        bd = res["breakdown"]
        add("")
        add(
            f"### Where the end-to-end time goes ({bd['documents']:,} manifests, shipped policies, timers, no profiler)"
        )
        add("")
        add(
            f"Per manifest: parse {_n(bd['parse_us'])} µs; evaluation {_n(bd['eval_us'])} µs, of which "
            f"normalize {_n(bd['normalize_us'])} µs and CEL program runs {_n(bd['cel_us'])} µs "
            f"({bd['evals_per_doc']:.0f} runs per manifest); {bd['activations_per_doc']:.0f} fresh CEL activations "
            f"per manifest ({_n(bd['activation_us'])} µs to create them; converting their Python dicts to CEL "
            "happens lazily inside the runs)."
        )
        add("")
        prow2 = [["policy", "µs per manifest"]] + [[x["policy"], _n(x["us"])] for x in bd["policies"]]
        lines.extend(_rows(prow2))
        add("")
        add("Most expensive expressions:")
        add("")
        erow = [["expression", "µs per manifest", "runs per manifest", "µs per run"]] + [
            [x["what"], _n(x["us"]), f"{x['calls_per_doc']:.2f}", _n(x["us_per_call"])]
            for x in bd["expressions"]
        ]
        lines.extend(_rows(erow))
    if "profile" in res:
        pr = res["profile"]
        add("")
        add(
            f"### Profile of `check_paths` end to end ({pr['documents']:,} manifests, cProfile, "
            f"{pr['total_s']:.2f} s profiled)"
        )
        add("")
        add("Top by own time:")
        add("")
        prow = [["function", "calls", "own s", "own %", "cumulative s"]] + [
            [
                f"`{r['function']}`",
                f"{r['calls']:,}",
                f"{r['tottime_s']:.3f}",
                f"{100 * r['tottime_s'] / pr['total_s']:.1f}",
                f"{r['cumtime_s']:.3f}",
            ]
            for r in pr["by_tottime"]
        ]
        lines.extend(_rows(prow))
        add("")
        add("Top by cumulative time:")
        add("")
        crow = [["function", "calls", "cumulative s", "cumulative %"]] + [
            [f"`{r['function']}`", f"{r['calls']:,}", f"{r['cumtime_s']:.3f}", f"{100 * r['cumtime_s'] / pr['total_s']:.1f}"]
            for r in pr["by_cumtime"]
        ]  # fmt: skip
        lines.extend(_rows(crow))
    return "\n".join(lines) + "\n"


def write_results_md(generated: str) -> None:
    """Replace the generated block of bench/RESULTS.md; other sections (other benchmarks) are kept."""
    block = f"{BEGIN}\n{generated}{END}"
    text = RESULTS_MD.read_text() if RESULTS_MD.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        RESULTS_MD.write_text(head + block + tail)
    else:  # first run: append a section, never rewrite the file
        sep = "\n" if text.endswith("\n") or not text else "\n\n"
        RESULTS_MD.write_text(f"{text}{sep}## charter check throughput\n\n{block}\n")


if __name__ == "__main__":
    sys.exit(main())
