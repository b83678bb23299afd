"""The SAM template keeps the promises the deployment makes: encryption everywhere, bounded
failure handling on the stream, an observable investigation workflow, IAM auth on Neptune and
least-privilege roles.

The template is read twice: as written (with SAM's own YAML loader, which understands the
CloudFormation tags) and as CloudFormation sees it after the SAM transform (so the roles SAM
generates and the policy templates it expands are checked too).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_conditions import sam_transform, with_parameters
from samtranslator.yaml_helper import yaml_parse

from fraudcore.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"

FUNCTIONS = {
    "IngestTimeseriesFunction": "functions/ingest_timeseries/",
    "IngestGraphFunction": "functions/ingest_graph/",
    "MicroAnalysisFunction": "functions/micro_analysis/",
    "FlagEntityFunction": "functions/flag_entity/",
    "RingAnalysisFunction": "functions/ring_analysis/",
    "SharedDeviceAnalysisFunction": "functions/shared_device_analysis/",
    "MoneyFlowAnalysisFunction": "functions/money_flow_analysis/",
    "RecordCaseFunction": "functions/record_case/",
}
INVESTIGATION_TASKS = [
    "FlagEntityFunction",
    "RingAnalysisFunction",
    "SharedDeviceAnalysisFunction",
    "MoneyFlowAnalysisFunction",
    "RecordCaseFunction",
]
INGEST_FUNCTIONS = ["IngestTimeseriesFunction", "IngestGraphFunction"]
GRAPH_FUNCTIONS = ["IngestGraphFunction", *INVESTIGATION_TASKS]

# Actions that may be allowed on Resource "*", each because the API has no resource type to
# name (the IAM service authorization reference lists none for it).
STAR_RESOURCE_ALLOWED = {
    "timestream:DescribeEndpoints": "endpoint discovery has no resource type",
    # What SAM adds for a state machine's X-Ray tracing and CloudWatch Logs delivery.
    "xray:PutTraceSegments": "X-Ray has no resource type for trace segments",
    "xray:PutTelemetryRecords": "X-Ray has no resource type",
    "xray:GetSamplingRules": "X-Ray sampling rules are read account-wide",
    "xray:GetSamplingTargets": "X-Ray sampling targets are read account-wide",
    "logs:CreateLogDelivery": "log delivery APIs have no resource type",
    "logs:GetLogDelivery": "log delivery APIs have no resource type",
    "logs:UpdateLogDelivery": "log delivery APIs have no resource type",
    "logs:DeleteLogDelivery": "log delivery APIs have no resource type",
    "logs:ListLogDeliveries": "log delivery APIs have no resource type",
    "logs:PutResourcePolicy": "log delivery APIs have no resource type",
    "logs:DescribeResourcePolicies": "log delivery APIs have no resource type",
    "logs:DescribeLogGroups": "log delivery APIs have no resource type",
}
# Wildcard actions, by resource and statement id, and why.
WILDCARD_ACTIONS_ALLOWED = {
    ("DataKey", "AccountIamDelegation"): "kms:* for the account root is AWS's default key policy; "
    "it delegates the key's use to IAM policies and keeps the key manageable",
}
# AWS managed policies SAM attaches, and why each is acceptable.
MANAGED_POLICIES_ALLOWED = {
    "AWSLambdaBasicExecutionRole": "CloudWatch Logs for the function",
    "AWSXrayWriteOnlyAccess": "Tracing: Active; X-Ray's write APIs have no resource type",
    "AWSLambdaVPCAccessExecutionRole": "network interfaces for functions in the VPC; the EC2 ENI APIs need *",
}


# --------------------------------------------------------------------------- loading helpers
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE_PATH.read_text())


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any], monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation would receive it."""
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return sam_transform(template)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def of_type(resources: dict[str, Any], type_name: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == type_name}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref_name(value: Any) -> str | None:
    """The logical id a Ref or GetAtt points at, or None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def resolved_parameter(template: dict[str, Any], value: Any) -> dict[str, Any] | None:
    """The parameter definition a value refers to, or None when it is a literal."""
    name = ref_name(value)
    if name and name in template.get("Parameters", {}):
        return template["Parameters"][name]
    return None


def concrete_value(template: dict[str, Any], value: Any) -> str:
    """A value as a deployed function would see it, with parameter defaults for Refs."""
    if isinstance(value, str):
        return value
    parameter = resolved_parameter(template, value)
    if parameter is not None:
        return str(parameter.get("Default", ""))
    if "Fn::If" in value:
        return concrete_value(template, value["Fn::If"][1])
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return re.sub(r"\$\{[^}]+\}", "resolved", text)
    return "resolved-at-deploy"


def function_env(template: dict[str, Any], name: str) -> dict[str, Any]:
    env = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    env.update(template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {}))
    return env


def either_branch(statement: Any) -> Iterator[dict[str, Any]]:
    """A statement, or both branches of a conditional one (what some parameter values deploy)."""
    if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
        for branch in statement["Fn::If"][1:]:
            yield from either_branch(branch)
    elif statement != {"Ref": "AWS::NoValue"}:
        yield statement


def function_statements(resources: dict[str, Any], name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources[name]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in policy["Statement"]:
                statements.extend(either_branch(statement))
    return statements


def actions_on(statements: list[dict[str, Any]], resource_name: str) -> set[str]:
    """Actions allowed on a resource named by Ref/GetAtt (alone or in a list)."""
    found: set[str] = set()
    for statement in statements:
        if any(ref_name(r) == resource_name for r in as_list(statement["Resource"])):
            found.update(as_list(statement["Action"]))
    return found


def policy_documents(resources: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource, where, statement) for every policy statement written in a template."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function":
            for statement in function_statements(resources, name):
                yield name, "Policies", statement
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for written in policy["PolicyDocument"]["Statement"]:
                    for statement in either_branch(written):
                        yield name, policy.get("PolicyName", "?"), statement
        elif kind == "AWS::KMS::Key":
            for statement in props["KeyPolicy"]["Statement"]:
                yield name, "KeyPolicy", statement
        elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            for statement in props["PolicyDocument"]["Statement"]:
                yield name, "PolicyDocument", statement


def check_least_privilege(resources: dict[str, Any]) -> list[str]:
    problems = []
    for name, where, statement in policy_documents(resources):
        label = f"{name}/{where}/{statement.get('Sid', '?')}"
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{label}: NotAction/NotResource widen a policy")
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement["Action"])
        wildcard_actions = [a for a in actions if "*" in a]
        if wildcard_actions and (name, statement.get("Sid")) not in WILDCARD_ACTIONS_ALLOWED:
            problems.append(f"{label}: wildcard action {wildcard_actions}")
        resource_based = where in ("KeyPolicy", "PolicyDocument")  # "*" there means this resource
        if "*" in as_list(statement.get("Resource")) and not resource_based:
            unexplained = [a for a in actions if a not in STAR_RESOURCE_ALLOWED]
            if unexplained:
                problems.append(f"{label}: Resource '*' for {unexplained}")
    return problems


# --------------------------------------------------------------------------- functions
def test_every_function_is_declared_with_its_code_folder(resources: dict[str, Any]) -> None:
    functions = of_type(resources, "AWS::Serverless::Function")
    assert {name: f["Properties"]["CodeUri"] for name, f in functions.items()} == FUNCTIONS


def test_functions_share_runtime_handler_tracing_and_the_common_layer(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Handler"] == "app.lambda_handler"
    assert globals_["Tracing"] == "Active"
    assert globals_["Architectures"] in (["arm64"], ["x86_64"])
    assert globals_["Layers"] == [{"Ref": "CommonLayer"}]
    layer = template["Resources"]["CommonLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Properties"]["CompatibleArchitectures"] == globals_["Architectures"]
    for name in FUNCTIONS:
        props = template["Resources"][name]["Properties"]
        assert "Runtime" not in props and "Handler" not in props, f"{name} overrides the Globals"


def test_code_folders_exist_for_sam_build() -> None:
    missing = [uri for uri in FUNCTIONS.values() if not (REPO / uri / "app.py").is_file()]
    assert not missing, f"sam build needs app.py in: {missing}"


def test_every_function_gets_its_own_role(resources: dict[str, Any], transformed: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        assert "Role" not in resources[name]["Properties"], f"{name} must not share a role"
    roles = {
        name: ref_name(r["Properties"]["Role"])
        for name, r in of_type(transformed["Resources"], "AWS::Lambda::Function").items()
    }
    assert set(roles) == set(FUNCTIONS)
    assert len(set(roles.values())) == len(roles), f"roles are shared: {roles}"


def test_environment_matches_what_the_settings_expect(template: dict[str, Any]) -> None:
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["TIMESERIES_BACKEND"] == {"Fn::If": ["UseInfluxDB", "influxdb3", "timestream"]}
    assert globals_env["GRAPH_BACKEND"] == "neptune"
    assert globals_env["NEPTUNE_IAM_AUTH"] == "true"
    assert globals_env["REJECTED_SINK"] == "sqs"
    assert globals_env["EVENT_PUBLISHER"] == "eventbridge"
    assert globals_env["RULES_OVERRIDE"] == {"Fn::Sub": "ssm:/${AWS::StackName}/rules-override"}
    graph_endpoint = globals_env["GRAPH_ENDPOINT"]["Fn::If"]
    assert all(branch["Fn::Sub"].startswith("wss://") for branch in graph_endpoint[1:])
    assert all(branch["Fn::Sub"].endswith("/gremlin") for branch in graph_endpoint[1:])
    for name in FUNCTIONS:
        env = function_env(template, name)
        assert env.get("POWERTOOLS_SERVICE_NAME"), name
        # Each function's environment, with intrinsics replaced by parameter defaults and
        # placeholders, must be accepted by the settings object the handlers read (names,
        # choices, numbers, required pairs such as REJECTED_SINK=sqs + REJECTED_QUEUE_URL).
        concrete = {key: concrete_value(template, value) for key, value in env.items()}
        Settings.from_env(concrete)
    micro = function_env(template, "MicroAnalysisFunction")
    assert micro["INVESTIGATION_STARTER"] == "stepfunctions"
    assert micro["STATE_MACHINE_ARN"] == {"Ref": "InvestigationStateMachine"}
    others = [n for n in FUNCTIONS if "STATE_MACHINE_ARN" in function_env(template, n)]
    assert others == ["MicroAnalysisFunction"]


@pytest.mark.parametrize("engine", ["influxdb3", "liveanalytics"])
def test_graph_functions_run_in_the_vpc(template: dict[str, Any], engine: str) -> None:
    # With InfluxDB 3 (in the VPC) the time-series functions join it too.
    resources = with_parameters(template, {"TimeseriesEngine": engine})["Resources"]
    timeseries = {"IngestTimeseriesFunction", "MicroAnalysisFunction"} if engine == "influxdb3" else set()
    for name in FUNCTIONS:
        in_vpc = "VpcConfig" in resources[name]["Properties"]
        assert in_vpc == (name in GRAPH_FUNCTIONS or name in timeseries), name


# --------------------------------------------------------------------------- encryption
def test_every_store_queue_topic_and_log_group_is_encrypted(resources: dict[str, Any]) -> None:
    key = {"Fn::GetAtt": ["DataKey", "Arn"]}
    streams = of_type(resources, "AWS::Kinesis::Stream")
    assert streams
    for name, stream in streams.items():
        assert stream["Properties"]["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": key}, name
    queues = of_type(resources, "AWS::SQS::Queue")
    assert len(queues) >= 2
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("KmsMasterKeyId") or props.get("SqsManagedSseEnabled") is True, name
    for name, db in of_type(resources, "AWS::Timestream::Database").items():
        assert db["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}, name
    for name, cluster in of_type(resources, "AWS::Neptune::DBCluster").items():
        assert cluster["Properties"]["StorageEncrypted"] is True, name
        assert cluster["Properties"]["KmsKeyId"] == key, name
    for name, topic in of_type(resources, "AWS::SNS::Topic").items():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, name
    log_groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(log_groups) >= len(FUNCTIONS) + 1
    for name, group in log_groups.items():
        assert group["Properties"]["KmsKeyId"] == key, name
        assert "RetentionInDays" in group["Properties"], name
    assert resources["DataKey"]["Properties"]["EnableKeyRotation"] is True


def test_every_function_logs_to_its_own_encrypted_group(resources: dict[str, Any]) -> None:
    groups = [resources[n]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for n in FUNCTIONS]
    assert len(set(groups)) == len(FUNCTIONS)
    assert all(resources[g]["Type"] == "AWS::Logs::LogGroup" for g in groups)


def test_timestream_table_retention_and_magnetic_writes(resources: dict[str, Any]) -> None:
    table = resources["TransactionsTable"]["Properties"]
    assert table["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True
    retention = table["RetentionProperties"]
    assert retention["MemoryStoreRetentionPeriodInHours"] == {"Ref": "TimestreamMemoryRetentionHours"}
    assert "MagneticStoreRetentionPeriodInDays" in retention


# --------------------------------------------------------------------------- stream failure handling
def test_each_ingest_function_has_its_own_bounded_stream_mapping(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    mappings = of_type(resources, "AWS::Lambda::EventSourceMapping")
    by_function = {ref_name(m["Properties"]["FunctionName"]): m["Properties"] for m in mappings.values()}
    assert sorted(by_function) == sorted(INGEST_FUNCTIONS)
    for name in FUNCTIONS:  # no second, unbounded mapping hidden in SAM Events
        events = resources[name]["Properties"].get("Events", {})
        assert not [e for e in events.values() if e["Type"] in ("Kinesis", "SQS", "DynamoDB")], name
    for function, props in by_function.items():
        assert ref_name(props["EventSourceArn"]) == "TransactionStream", function
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function
        assert props["BisectBatchOnFunctionError"] is True, function
        assert props["StartingPosition"] == "TRIM_HORIZON", function
        assert ref_name(props["DestinationConfig"]["OnFailure"]["Destination"]) == "FailedInvocationsQueue"
        retries = resolved_parameter(template, props["MaximumRetryAttempts"])
        assert retries is not None and retries["MinValue"] >= 0 and retries["MaxValue"] <= 10000, function
        age = resolved_parameter(template, props["MaximumRecordAgeInSeconds"])
        # -1 would mean "forever": the bounds must exclude it.
        assert age is not None and age["MinValue"] >= 60 and age["MaxValue"] <= 604800, function
        for key in ("BatchSize", "ParallelizationFactor"):
            assert resolved_parameter(template, props[key]) is not None, f"{function}.{key}"


# --------------------------------------------------------------------------- investigation workflow
def test_state_machine_substitutions_logging_tracing_and_invoke_rights(template: dict[str, Any]) -> None:
    machine = template["Resources"]["InvestigationStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachines/investigation.asl.json"
    assert machine["Type"] == "STANDARD"  # execution names dedupe flags for 90 days
    substitutions = machine["DefinitionSubstitutions"]
    assert sorted(substitutions) == sorted(f"{n}Arn" for n in INVESTIGATION_TASKS)
    for key, value in substitutions.items():
        assert value == {"Fn::GetAtt": [key.removesuffix("Arn"), "Arn"]}, key
    assert machine["Tracing"] == {"Enabled": True}
    logging = machine["Logging"]
    level = resolved_parameter(template, logging["Level"])
    levels = set(level["AllowedValues"]) if level else {logging["Level"]}
    assert levels <= {"ALL", "ERROR"}
    # inputs and outputs name people's identifiers: kept in the execution history, not in logs
    assert logging["IncludeExecutionData"] is False
    group = ref_name(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert template["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    invoked = [ref_name(p["LambdaInvokePolicy"]["FunctionName"]) for p in machine["Policies"]]
    assert sorted(invoked) == sorted(INVESTIGATION_TASKS)


def test_micro_analysis_starts_only_the_investigation_and_reads_only_its_override(
    template: dict[str, Any],
) -> None:
    resources = with_parameters(template, {"TimeseriesEngine": "liveanalytics"})["Resources"]
    statements = function_statements(resources, "MicroAnalysisFunction")
    assert actions_on(statements, "InvestigationStateMachine") == {"states:StartExecution"}
    assert actions_on(statements, "TransactionsTable") == {"timestream:Select"}
    ssm = [s for s in statements if "ssm:GetParameter" in as_list(s["Action"])]
    assert len(ssm) == 1 and as_list(ssm[0]["Action"]) == ["ssm:GetParameter"]
    assert ssm[0]["Resource"]["Fn::Sub"].endswith(":parameter/${AWS::StackName}/rules-override")
    assert resources["RulesOverrideParameter"]["Properties"]["Name"] == {
        "Fn::Sub": "/${AWS::StackName}/rules-override"
    }
    schedule = resources["MicroAnalysisFunction"]["Properties"]["Events"]["Schedule"]
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "MicroAnalysisSchedule"}
    # The handler reads the evaluation time from the event's "time".
    assert '"time": "<aws.scheduler.scheduled-time>"' in schedule["Properties"]["Input"]


def test_graph_permissions_follow_what_each_step_does(resources: dict[str, Any]) -> None:
    writers = {"IngestGraphFunction", "FlagEntityFunction", "RecordCaseFunction"}
    for name in GRAPH_FUNCTIONS:
        actions = {
            a
            for s in function_statements(resources, name)
            for a in as_list(s["Action"])
            if a.startswith("neptune-db:")
        }
        if name in writers:
            assert "neptune-db:WriteDataViaQuery" in actions, name
        else:
            assert actions == {"neptune-db:ReadDataViaQuery"}, name
    record = function_statements(resources, "RecordCaseFunction")
    assert actions_on(record, "CaseEventBus") == {"events:PutEvents"}


# --------------------------------------------------------------------------- Neptune
def test_neptune_is_serverless_with_iam_auth(resources: dict[str, Any]) -> None:
    cluster = resources["NeptuneCluster"]
    assert cluster["Condition"] == "CreateNeptune"
    props = cluster["Properties"]
    assert props["IamAuthEnabled"] is True
    assert "ServerlessScalingConfiguration" in props
    assert resources["NeptuneInstance"]["Properties"]["DBInstanceClass"] == "db.serverless"


# --------------------------------------------------------------------------- least privilege
def test_no_wildcards_outside_the_allow_list_as_written(resources: dict[str, Any]) -> None:
    assert check_least_privilege(resources) == []


def test_no_wildcards_outside_the_allow_list_after_the_transform(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    assert check_least_privilege(resources) == []
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert isinstance(arn, str), f"{name}: managed policy {arn!r}"
            assert arn.rsplit("/", 1)[-1] in MANAGED_POLICIES_ALLOWED, f"{name}: {arn}"


def test_the_least_privilege_check_catches_a_wildcard(resources: dict[str, Any]) -> None:
    tampered = copy.deepcopy(resources)
    tampered["RecordCaseFunction"]["Properties"]["Policies"][0]["Statement"].append(
        {"Effect": "Allow", "Action": "events:*", "Resource": "*"}
    )
    problems = check_least_privilege(tampered)
    assert any("wildcard action" in p for p in problems)
    assert any("Resource '*'" in p for p in problems)


# --------------------------------------------------------------------------- observability
def test_alarms_cover_lag_errors_queues_and_investigations(resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched: set[tuple[str, str]] = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in props:
            stats.append(props)
        for metric in stats:
            for dimension in metric.get("Dimensions", []):
                watched.add((metric["MetricName"], ref_name(dimension["Value"]) or ""))
    for name in INGEST_FUNCTIONS:
        assert ("IteratorAge", name) in watched
    for name in FUNCTIONS:
        assert ("Errors", name) in watched
    for queue in ("RejectedRecordsQueue", "FailedInvocationsQueue"):
        assert ("ApproximateNumberOfMessagesVisible", queue) in watched
    assert ("ExecutionsFailed", "InvestigationStateMachine") in watched
    assert of_type(resources, "AWS::CloudWatch::Dashboard")


def test_case_events_have_a_bus_and_an_example_rule(resources: dict[str, Any]) -> None:
    rule = resources["CaseOpenedRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "CaseEventBus"}
    assert rule["EventPattern"]["detail-type"] == ["FraudCaseOpened"]


def test_description_says_timestream_is_closed_to_new_customers(template: dict[str, Any]) -> None:
    assert "closed to new AWS customers since 2025-06-20" in template["Description"]
    assert "Timestream for InfluxDB" in template["Description"]


# --------------------------------------------------------------------------- samconfig.toml
def parameter_problems(parameter: dict[str, Any], value: str) -> list[str]:
    problems = []
    if "AllowedValues" in parameter and value not in [str(v) for v in parameter["AllowedValues"]]:
        problems.append(f"{value!r} not in {parameter['AllowedValues']}")
    if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], value):
        problems.append(f"{value!r} does not match {parameter['AllowedPattern']}")
    if parameter["Type"] == "Number":
        number = float(value)
        if number < float(parameter.get("MinValue", number)) or number > float(
            parameter.get("MaxValue", number)
        ):
            problems.append(f"{value} outside [{parameter.get('MinValue')}, {parameter.get('MaxValue')}]")
    return problems


def test_samconfig_environments_deploy_valid_parameters(template: dict[str, Any]) -> None:
    from samcli.cli.types import CfnParameterOverridesType

    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    assert {"default", "dev", "prod"} <= set(config)
    stack_names = set()
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        stack_names.add(config[env]["global"]["parameters"]["stack_name"])
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}, env
        assert deploy["resolve_s3"] is True, env
        overrides = CfnParameterOverridesType().convert(deploy["parameter_overrides"], None, None)
        for key, value in overrides.items():
            assert key in template["Parameters"], f"{env}: unknown parameter {key}"
            assert parameter_problems(template["Parameters"][key], value) == [], f"{env}: {key}"
    assert len(stack_names) == 3
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


def test_parameter_check_rejects_a_bad_value(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert parameter_problems(params["MicroAnalysisSchedule"], "rate(5 minute)")
    assert parameter_problems(params["IngestParallelizationFactor"], "11")
    assert not parameter_problems(params["MicroAnalysisSchedule"], "rate(1 minute)")


# --------------------------------------------------------------------------- env.local.json
def test_env_local_overrides_only_declared_variables_and_yields_valid_settings(
    template: dict[str, Any],
) -> None:
    import json

    local = json.loads((REPO / "env.local.json").read_text())
    assert set(local) == set(FUNCTIONS)
    for name, overrides in local.items():
        declared = function_env(template, name)
        # sam local invoke silently ignores variables the template does not declare.
        assert set(overrides) <= set(declared), (
            f"{name}: {set(overrides) - set(declared)} not in the template"
        )
        merged = {key: concrete_value(template, value) for key, value in declared.items()}
        merged.update(overrides)
        settings = Settings.from_env(merged)
        if name in GRAPH_FUNCTIONS:
            assert settings.graph_backend == "gremlin-server" and not settings.neptune_iam_auth, name
        assert settings.rejected_sink == "jsonl" and str(settings.state_dir).startswith("/tmp/"), name


def test_personal_identifiers_stay_out_of_names_and_traces(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    secret = resources["PiiHashKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    micro = resources["MicroAnalysisFunction"]["Properties"]
    assert micro["Environment"]["Variables"]["PII_HASH_KEY"] == {
        "Fn::Sub": "secretsmanager:${PiiHashKeySecret}"
    }
    statements = [st for policy in micro["Policies"] for st in policy.get("Statement", [])]
    reads = [st for st in statements if st["Action"] == "secretsmanager:GetSecretValue"]
    assert [st["Resource"] for st in reads] == [{"Ref": "PiiHashKeySecret"}]
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
