"""Reading template.yaml: intrinsic tags, functions with Globals, state machines, local rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudlocal.emulators.asl import load_state_machine, run_state_machine
from fraudlocal.emulators.template import Template, TemplateError, load_template, load_yaml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sam" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(FIXTURE)


def test_short_form_tags_read_as_their_long_form() -> None:
    text = """
    a: !Ref Stage
    b: !GetAtt Fn.Arn
    c: !GetAtt [Fn, Arn]
    d: !Sub "x-${Stage}"
    e: !Sub ["${A}-${B}", {A: !Ref Stage, B: b}]
    f: !If [IsProd, !Join ["", [a, b]], !Ref "AWS::NoValue"]
    g: !Equals [!Ref Stage, prod]
    h: !Condition IsProd
    i: !GetAtt Table.StreamArn.Label
    """
    assert load_yaml(text) == {
        "a": {"Ref": "Stage"},
        "b": {"Fn::GetAtt": ["Fn", "Arn"]},
        "c": {"Fn::GetAtt": ["Fn", "Arn"]},
        "d": {"Fn::Sub": "x-${Stage}"},
        "e": {"Fn::Sub": ["${A}-${B}", {"A": {"Ref": "Stage"}, "B": "b"}]},
        "f": {"Fn::If": ["IsProd", {"Fn::Join": ["", ["a", "b"]]}, {"Ref": "AWS::NoValue"}]},
        "g": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "h": {"Condition": "IsProd"},
        "i": {"Fn::GetAtt": ["Table", "StreamArn.Label"]},
    }


def test_the_loader_stays_safe() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("x: !!python/object/apply:os.system ['echo unsafe']")


def test_functions_merge_globals_as_sam_does(template: Template) -> None:
    functions = template.functions()

    assert sorted(functions) == ["FlagEntityFunction", "RecordCaseFunction", "RingAnalysisFunction"]
    flag = functions["FlagEntityFunction"]
    assert (flag.code_uri, flag.handler, flag.runtime) == (
        "functions/flag_entity/",
        "app.lambda_handler",
        "python3.12",
    )
    # Maps merge key by key and the function's own value wins.
    assert flag.environment == {
        "GRAPH_BACKEND": "neptune",
        "GRAPH_ENDPOINT": {"Ref": "GraphEndpoint"},
        "EVENT_BUS_NAME": {"Ref": "CaseEventBus"},
        "LOG_LEVEL": {"Fn::If": ["IsProd", "INFO", "DEBUG"]},
        "FLAG_TABLE": {"Fn::GetAtt": ["CaseTable", "Arn"]},
    }
    # Lists concatenate: the Globals layer first, then the function's own.
    assert flag.properties["Layers"] == [{"Ref": "CommonLayer"}, {"Ref": "ExtraLayer"}]
    ring = functions["RingAnalysisFunction"]
    assert ring.properties["Timeout"] == 120
    assert functions["RecordCaseFunction"].properties["Timeout"] == 30
    assert ring.environment["GRAPH_BACKEND"] == "embedded"


def test_local_environment_renders_intrinsics(template: Template) -> None:
    assert template.local_environment("FlagEntityFunction") == {
        "GRAPH_BACKEND": "neptune",
        "GRAPH_ENDPOINT": "ws://127.0.0.1:8182/gremlin",
        "EVENT_BUS_NAME": "CaseEventBus",
        "LOG_LEVEL": "DEBUG",
        "FLAG_TABLE": "arn:aws:dynamodb:us-east-1:123456789012:table/CaseTable",
    }
    prod = load_template(FIXTURE, parameters={"Stage": "prod"})
    assert prod.local_environment("RingAnalysisFunction")["LOG_LEVEL"] == "INFO"


def test_state_machines(template: Template) -> None:
    machines = template.state_machines()

    assert list(machines) == ["InvestigationStateMachine"]
    spec = machines["InvestigationStateMachine"]
    assert spec.definition_uri == "statemachines/investigation.asl.json"
    assert spec.substitutions["FlagEntityFunctionArn"] == {"Fn::GetAtt": ["FlagEntityFunction", "Arn"]}
    assert spec.properties["Tracing"] == {"Enabled": True}


@pytest.mark.parametrize(
    ("value", "logical_id"),
    [
        ({"Fn::GetAtt": ["FlagEntityFunction", "Arn"]}, "FlagEntityFunction"),
        ({"Ref": "RingAnalysisFunction"}, "RingAnalysisFunction"),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:x:function:${RecordCaseFunction}"},
            "RecordCaseFunction",
        ),
        ({"Fn::Sub": "${FlagEntityFunction.Arn}"}, "FlagEntityFunction"),
        ({"Ref": "Stage"}, None),
        ("plain text", None),
    ],
)
def test_referenced_logical_id(template: Template, value: Any, logical_id: str | None) -> None:
    assert template.referenced_logical_id(value) == logical_id


def test_loaded_state_machine_points_each_task_at_its_function(template: Template) -> None:
    loaded = load_state_machine(template, "InvestigationStateMachine")

    assert loaded.substitutions == {
        "FlagEntityFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:FlagEntityFunction",
        "RingAnalysisFunctionName": "RingAnalysisFunction",
        "RecordCaseFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:RecordCaseFunction",
        "CaseEventBusName": "CaseEventBus",
        "CaseSource": "fraud.dev",
    }
    assert loaded.functions == {
        "FlagEntityFunctionArn": "FlagEntityFunction",
        "RingAnalysisFunctionName": "RingAnalysisFunction",
        "RecordCaseFunctionArn": "RecordCaseFunction",
    }
    states = loaded.definition["States"]
    assert states["Flag entity"]["Resource"].endswith(":function:FlagEntityFunction")
    assert "${" not in str(loaded.definition)
    assert "${FlagEntityFunctionArn}" in str(loaded.raw)


def test_run_state_machine_from_the_template_dispatches_by_logical_id() -> None:
    calls: list[str] = []

    def invoke(logical_id: str, event: Any) -> Any:
        calls.append(logical_id)
        if logical_id == "FlagEntityFunction":
            return {"flagged": event["entity_id"]}
        if logical_id == "RingAnalysisFunction":
            return {"members": [event["entity_id"], "a2"]}
        return {"case_id": "case-1", "members": event["ring"]["members"], "flag": event["flag"]}

    published: list[Any] = []
    execution = run_state_machine(
        FIXTURE,
        "InvestigationStateMachine",
        {"entity_type": "account", "entity_id": "a1"},
        invoke,
        "manual-a1",
        put_events=published.extend,
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert calls == ["FlagEntityFunction", "RingAnalysisFunction", "RecordCaseFunction"]
    assert execution.output == {"case_id": "case-1", "members": ["a1", "a2"], "flag": {"flagged": "a1"}}
    assert execution.state_machine == "InvestigationStateMachine"
    assert published == execution.published_events
    assert published == [
        {
            "EventBusName": "CaseEventBus",
            "Source": "fraud.dev",
            "DetailType": "FraudCaseOpened",
            "Detail": {"case_id": "case-1", "members": ["a1", "a2"], "flag": {"flagged": "a1"}},
        }
    ]


def test_errors_name_what_is_missing(tmp_path: Path, template: Template) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_template(tmp_path / "template.yaml")
    with pytest.raises(TemplateError, match="not a state machine"):
        template.state_machine("NoSuchMachine")
    with pytest.raises(TemplateError, match="not a function"):
        template.function("NoSuchFunction")
    (tmp_path / "template.yaml").write_text("Resources: {}\nParameters: {Stage: {Type: String}}\n")
    with pytest.raises(TemplateError, match="'Stage' has no Default"):
        load_template(tmp_path / "template.yaml").resolve_local({"Ref": "Stage"})
    (tmp_path / "bad.yaml").write_text("Description: only\n")
    with pytest.raises(TemplateError, match="no Resources"):
        load_template(tmp_path / "bad.yaml")


def test_ref_renders_arns_and_urls_where_cloudformation_does(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  Machine: {Type: AWS::Serverless::StateMachine, Properties: {DefinitionUri: x.json}}\n"
        "  Queue: {Type: AWS::SQS::Queue}\n"
        "  Bus: {Type: AWS::Events::EventBus, Properties: {Name: bus}}\n"
    )
    template = load_template(tmp_path / "template.yaml")

    assert (
        template.resolve_local({"Ref": "Machine"})
        == "arn:aws:states:us-east-1:123456789012:stateMachine:Machine"
    )
    assert (
        template.resolve_local({"Ref": "Queue"}) == "https://sqs.us-east-1.amazonaws.com/123456789012/Queue"
    )
    assert template.resolve_local({"Ref": "Bus"}) == "Bus"
    assert template.resolve_local({"Fn::Sub": "${!Literal}-${AWS::Region}"}) == "${Literal}-us-east-1"
