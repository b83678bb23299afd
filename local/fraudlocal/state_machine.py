"""The investigation state machine as the local tools see it: its logical id in
``template.yaml`` and the state whose input and output hold the recorded case."""

from __future__ import annotations

STATE_MACHINE = "InvestigationStateMachine"
RECORD_CASE_STATE = "Score the evidence and record the case"
