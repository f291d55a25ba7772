"""Microsoft Presidio's pattern recognizers as an independent PHI detector.

Usage: presidio_check.py FILE.json — FILE holds {"texts": [...]}; prints, per text, every entity
found with score >= 0.4 (the phone recognizer's score for a well-formed US number) as [entity_type, text, score]. Only offline recognizers are used (the
name recognizer needs a spaCy language model that is not installed; names are covered by our
corpus test). The URL recognizer is left out: it fetches the public suffix list from the network.
"""

import json
import sys

from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MedicalLicenseRecognizer,
    PhoneRecognizer,
    UsBankRecognizer,
    UsItinRecognizer,
    UsLicenseRecognizer,
    UsPassportRecognizer,
    UsSsnRecognizer,
)

recognizers = [
    CreditCardRecognizer(),
    DateRecognizer(),
    EmailRecognizer(),
    IbanRecognizer(),
    IpRecognizer(),
    MedicalLicenseRecognizer(),
    PhoneRecognizer(),
    UsBankRecognizer(),
    UsItinRecognizer(),
    UsLicenseRecognizer(),
    UsPassportRecognizer(),
    UsSsnRecognizer(),
]
texts = json.load(open(sys.argv[1]))["texts"]
found = []
for text in texts:
    hits = []
    for recognizer in recognizers:
        for result in recognizer.analyze(text, recognizer.supported_entities, None):
            if result.score >= 0.4:
                hits.append([result.entity_type, text[result.start : result.end], round(result.score, 2)])
    found.append(hits)
print(json.dumps(found))
