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
