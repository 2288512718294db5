# The five benchmark policies of five.yaml in Rego, for the OPA (regopy) baseline.
#
# Input: {"workload": <charter's workload view>, "catalog": <the catalog of five.yaml>}.
# `data.charter.bench.violations` maps each policy name to its number of violations
# (0 or 1, one validation per policy), the figure compared with charter's verdicts.
# Every rule is stated as count(...) == 0 rather than with nested `every`/`not`
# (regopy 1.5.2 mis-evaluates some of those; see shared/research/benchmarking.md).
package charter.bench

import rego.v1

applicable if count(input.workload.podTemplates) > 0

required_labels := ["charter.dev/owner", "charter.dev/team"]

missing_labels contains k if {
	some k in required_labels
	not input.workload.labels[k]
}

unpinned contains i if {
	some i, c in input.workload.containers
	c.image != ""
	not contains(c.image, "@sha256:")
}

too_many_gpus contains i if {
	some i, r in input.workload.accelerators.requests
	r.resource == "nvidia.com/gpu"
	r.count > input.catalog.limits.gpus.maxPerContainer
}

default_sa contains i if {
	some i, t in input.workload.podTemplates
	t.serviceAccountName in {"", "default"}
}

digest_ok if regex.match(`^sha256:[a-f0-9]{64}$`, input.workload.annotations["charter.dev/model-digest"])

bad_model if {
	_ = input.workload.annotations["charter.dev/model-uri"]
	not digest_ok
}

bad_models := 1 if bad_model

else := 0

result := {
	"bench-required-labels": min([1, count(missing_labels)]),
	"bench-images-pinned": min([1, count(unpinned)]),
	"bench-gpu-limit": min([1, count(too_many_gpus)]),
	"bench-no-default-sa": min([1, count(default_sa)]),
	"bench-model-digest": bad_models,
}

violations := result if applicable

else := {}
