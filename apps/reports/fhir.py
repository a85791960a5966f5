"""A report version as an HL7 FHIR R4 ``DiagnosticReport`` with one ``Observation`` per counted
class, built with the ``fhir.resources`` package's R4B models (R4B is the R4-compatible release
that fhir.resources 8 ships; DiagnosticReport and Observation are the same there as in R4).

Each Observation holds the class's share as ``valueQuantity`` in UCUM ``%`` and its 95% Wilson
interval as a ``component`` with a ``valueRange``. The Observations are ``contained`` in the
report, so one JSON document is the whole result a LIS receives. No LOINC code is claimed:
codes are text under a project system, as no LOINC term names these 16 classes.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from .document import dcc_lines
from .models import ReportVersion
from .selectors import report_body

SYSTEM = "https://bmadcc.example/fhir/CodeSystem/marrow-cell-class"
UCUM = "http://unitsofmeasure.org"


def _percent(value: float) -> dict[str, Any]:
    return {"value": round(100 * value, 3), "unit": "%", "system": UCUM, "code": "%"}


def _status(body: dict[str, Any]) -> str:
    if body["signature"] is None:
        return "preliminary"
    return "amended" if body["amended"] else "final"


def _observation(row: dict[str, Any], status: str, total: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"dcc-{row['key'].replace('_', '-')}",
        "status": status,
        "code": {"coding": [{"system": SYSTEM, "code": row["key"]}], "text": row["name"]},
        "valueQuantity": _percent(row["proportion"]),
        "note": [{"text": f"{row['count']} of {total} counted cells"}],
        "component": [
            {
                "code": {"text": "95% Wilson confidence interval"},
                "valueRange": {"low": _percent(row["ci_low"]), "high": _percent(row["ci_high"])},
            }
        ],
    }


def diagnostic_report(version: ReportVersion) -> dict[str, Any]:
    """The FHIR JSON of ``version``, validated by the R4B models before it is returned."""
    body = report_body(version)
    doc, status = body["document"], _status(body)
    total = doc["dcc"]["total_counted"]
    observations = [_observation(r, status, total) for r in dcc_lines(doc["dcc"])]
    data: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"run-{doc['run']}-v{doc['version']}",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:sha256:{body['sha256']}"}],
        "status": status,
        "code": {"text": "Bone marrow differential cell count"},
        "contained": observations,
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "conclusion": "; ".join(a["message"] for a in doc["alerts"]) or None,
    }
    signature = body["signature"]
    if signature is not None:
        data["issued"] = signature["at"]
        data["resultsInterpreter"] = [{"display": signature["name"]}]
    resource = DiagnosticReport.model_validate({k: v for k, v in data.items() if v is not None})
    return json.loads(resource.model_dump_json())
