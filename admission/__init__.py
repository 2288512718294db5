"""The validating admission webhook: `charter serve` and `charter webhook-config`.

A thin shell over charter.engine: an AdmissionReview becomes `Attributes`, `Engine.evaluate`
decides, and the `Decision` is rendered back as an AdmissionResponse in the apiserver's wording.
"""
