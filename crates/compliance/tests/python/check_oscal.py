"""Loads OSCAL documents with compliance-trestle (IBM's OSCAL library, pydantic models generated
from NIST's OSCAL schema) and prints what it read, so the Rust test can compare.

usage: check_oscal.py ASSESSMENT_RESULTS.json POAM.json
"""
import json
import sys

from trestle.oscal import OSCAL_VERSION
from trestle.oscal.assessment_results import AssessmentResults
from trestle.oscal.poam import PlanOfActionAndMilestones



def text(value):
    """The plain value of a trestle enum or root model."""
    for attr in ("value", "root"):
        if hasattr(value, attr):
            return text(getattr(value, attr))
    return str(value)


def check_schema(paths):
    """Validates each document against NIST's official OSCAL JSON schema (v1.2.3's complete
    schema, installed and checked by its SHA-256 by scripts/setup-python); exits 1 naming the
    first errors."""
    import os
    import jsonschema

    schema_path = os.path.join(sys.prefix, "share", "oscal", "oscal_complete_schema.json")
    if not os.path.exists(schema_path):
        sys.exit(f"NIST's OSCAL schema is missing at {schema_path}: run scripts/setup-python")
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)

    def python_regex(node):
        # The schema's one token pattern uses \p{L} and \p{N}, which Python's re lacks:
        # [^\W\d_] is exactly a Unicode letter, \d a Unicode decimal digit.
        if isinstance(node, dict):
            return {k: (v.replace("\\p{L}", "[^\\W\\d_]").replace("\\p{N}", "\\d")
                        if k == "pattern" and isinstance(v, str) else python_regex(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [python_regex(x) for x in node]
        return node

    validator = jsonschema.Draft7Validator(python_regex(schema))
    for path in paths:
        with open(path, encoding="utf-8") as f:
            errors = list(validator.iter_errors(json.load(f)))
        if errors:
            def leaves(err):
                if not err.context:
                    yield err
                for sub in err.context or []:
                    yield from leaves(sub)
            detail = [f"{list(e.absolute_path)}: {e.message[:200]}"
                      for err in errors for e in leaves(err)
                      if not (e.validator == "additionalProperties" and not list(e.absolute_path))
                      and e.validator != "required"]
            sys.exit(f"{path} is not valid against NIST's OSCAL schema: " + "; ".join(detail[:5]))


check_schema(sys.argv[1:3])
ar = AssessmentResults.oscal_read(__import__("pathlib").Path(sys.argv[1]))
poam = PlanOfActionAndMilestones.oscal_read(__import__("pathlib").Path(sys.argv[2]))
result = ar.results[0]
states = {}
for finding in result.findings or []:
    state = text(finding.target.status.state)
    states[state] = states.get(state, 0) + 1
print(json.dumps({
    "trestle_oscal_version": OSCAL_VERSION,
    "oscal_version": text(ar.metadata.oscal_version),
    "reviewed_controls": len(result.reviewed_controls.control_selections[0].include_controls),
    "observations": len(result.observations or []),
    "findings": states,
    "poam_items": len(poam.poam_items),
    "risks": sorted(text(r.status) for r in (poam.risks or [])),
}, sort_keys=True))
