"""The SAM template keeps the promises the deployment makes: encryption everywhere, bounded
failure handling on the stream, an observable investigation workflow, IAM auth on Neptune and
least-privilege roles.

The template is read twice: as written (SAM's own YAML loader, which understands the
CloudFormation tags) and as SAM's translator expands it for CloudFormation, with parameter
values, Globals, the generated roles and policy templates applied (:mod:`infrastructure.sam`).
Roles, environments and conditional resources are checked on the expanded template.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from infrastructure.sam import (
    REPO,
    ExpandedTemplate,
    expand,
    reference,
    render,
    source_template,
    statements_allowing,
)

from fraudcore.settings import Settings

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

# What each function does, as the (action, resource) pairs its role must allow, no more and no
# less. A resource is the logical id a statement names, "*" for APIs without a resource type,
# or the rendered ARN.
STREAM_READ = {
    ("kinesis:DescribeStream", "TransactionStream"),
    ("kinesis:DescribeStreamSummary", "TransactionStream"),
    ("kinesis:GetRecords", "TransactionStream"),
    ("kinesis:GetShardIterator", "TransactionStream"),
    ("kinesis:ListShards", "TransactionStream"),
}
SEND_REJECTED = {
    ("sqs:SendMessage", "RejectedRecordsQueue"),
    ("sqs:SendMessage", "FailedInvocationsQueue"),
    ("kms:Decrypt", "DataKey"),
    ("kms:GenerateDataKey", "DataKey"),
}
# GetEngineStatus: the first connection checks the engine version (fraudcore.graph.engine).
GRAPH_READ = {
    ("neptune-db:ReadDataViaQuery", "NeptuneCluster"),
    ("neptune-db:GetEngineStatus", "NeptuneCluster"),
}
# Single-cardinality upserts replace values, which Neptune counts as a delete.
GRAPH_WRITE = GRAPH_READ | {
    ("neptune-db:WriteDataViaQuery", "NeptuneCluster"),
    ("neptune-db:DeleteDataViaQuery", "NeptuneCluster"),
}
TIMESTREAM_QUERY = {("timestream:Select", "TransactionsTable"), ("timestream:DescribeEndpoints", "*")}
EXPECTED_PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    "IngestTimeseriesFunction": STREAM_READ
    | SEND_REJECTED
    | {("timestream:WriteRecords", "TransactionsTable"), ("timestream:DescribeEndpoints", "*")},
    "IngestGraphFunction": STREAM_READ | SEND_REJECTED | GRAPH_WRITE,
    "MicroAnalysisFunction": TIMESTREAM_QUERY
    | {
        ("states:StartExecution", "InvestigationStateMachine"),
        ("secretsmanager:GetSecretValue", "PiiHashKeySecret"),
        (
            "ssm:GetParameter",
            "arn:aws:ssm:us-east-1:123456789012:parameter/fraud-detection-test/rules-override",
        ),
        ("kms:Decrypt", "DataKey"),
        ("kms:GenerateDataKey", "DataKey"),
        ("sqs:SendMessage", "FailedInvocationsQueue"),  # its dead-letter queue (SAM adds it)
    },
    "FlagEntityFunction": GRAPH_WRITE,
    "RingAnalysisFunction": GRAPH_READ,
    "SharedDeviceAnalysisFunction": GRAPH_READ | TIMESTREAM_QUERY,
    "MoneyFlowAnalysisFunction": GRAPH_READ,
    "RecordCaseFunction": GRAPH_WRITE | {("events:PutEvents", "CaseEventBus")},
}
# What Step Functions needs to set up log delivery for a state machine with logging; SAM does
# not add them, and stack creation fails without them.
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}

# Actions that may be allowed on Resource "*", each because the API has no resource type to
# name (the IAM service authorization reference lists none for it).
STAR_RESOURCE_ALLOWED = {
    "timestream:DescribeEndpoints": "endpoint discovery has no resource type",
    # What SAM adds for a state machine's X-Ray tracing.
    "xray:PutTraceSegments": "X-Ray has no resource type for trace segments",
    "xray:PutTelemetryRecords": "X-Ray has no resource type",
    "xray:GetSamplingRules": "X-Ray sampling rules are read account-wide",
    "xray:GetSamplingTargets": "X-Ray sampling targets are read account-wide",
    **dict.fromkeys(LOG_DELIVERY_ACTIONS, "the log delivery APIs have no resource type"),
}
# Wildcard actions, by resource and statement id, and why.
WILDCARD_ACTIONS_ALLOWED = {
    ("DataKey", "AccountIamDelegation"): "kms:* for the account root is AWS's default key policy; "
    "it delegates the key's use to IAM policies and keeps the key manageable",
    ("MagneticStoreRejectsBucketPolicy", "TlsOnly"): "a Deny of every S3 action without TLS",
    ("InfluxDBLogBucketPolicy", "TLSOnly"): "a Deny of every S3 action without TLS",
}
#: buckets a service writes into as itself, with S3-managed keys (each says why in the template)
SSE_S3_BUCKETS = {
    "InfluxDBLogBucket": "Timestream for InfluxDB's log delivery writes as the service; a customer "
    "key would need the service to hold kms:GenerateDataKey on it",
}
#: the exact role tables below describe the LiveAnalytics engine; test_timeseries_engines.py
#: checks what changes with InfluxDB 3
LIVE = {"TimeseriesEngine": "liveanalytics"}
# AWS managed policies SAM attaches, and why each is acceptable.
MANAGED_POLICIES_ALLOWED = {
    "AWSLambdaBasicExecutionRole": "CloudWatch Logs for the function",
    "AWSXrayWriteOnlyAccess": "Tracing: Active; X-Ray's write APIs have no resource type",
    "AWSLambdaVPCAccessExecutionRole": "network interfaces for functions in the VPC; the EC2 ENI APIs need *",
}


# --------------------------------------------------------------------------- loading helpers
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return source_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def expanded() -> ExpandedTemplate:
    """The template after the SAM transform, with the parameter defaults."""
    return expand(LIVE)


def of_type(resources: dict[str, Any], type_name: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == type_name}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parameter_of(template: dict[str, Any], value: Any) -> dict[str, Any] | None:
    """The declaration of the parameter a value refers to, or None when it is a literal."""
    name = reference(value)
    return template.get("Parameters", {}).get(name) if name else None


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


def granted(expanded: ExpandedTemplate, logical_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the role of a function or state machine allows."""
    pairs = set()
    for action, resource in statements_allowing(expanded.role_statements(logical_id)):
        named = "*" if resource == "*" else reference(resource)
        pairs.add((action, named or str(render(resource))))
    return pairs


def policy_documents(resources: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource, where, statement) for every policy statement written in a template."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
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
        elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
            for statement in props["PolicyDocument"]["Statement"]:
                yield name, "PolicyDocument", statement


def check_least_privilege(resources: dict[str, Any]) -> list[str]:
    problems = []
    for name, where, statement in policy_documents(resources):
        label = f"{name}/{where}/{statement.get('Sid', '?')}"
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{label}: NotAction/NotResource widen a policy")
        actions = as_list(statement["Action"])
        wildcard_actions = [a for a in actions if "*" in a]
        if wildcard_actions and (name, statement.get("Sid")) not in WILDCARD_ACTIONS_ALLOWED:
            problems.append(f"{label}: wildcard action {wildcard_actions}")
        if statement.get("Effect") != "Allow":
            continue
        resource_based = where in ("KeyPolicy", "PolicyDocument")  # "*" there means this resource
        if "*" in as_list(statement.get("Resource")) and not resource_based:
            unexplained = [a for a in actions if a not in STAR_RESOURCE_ALLOWED]
            if unexplained:
                problems.append(f"{label}: Resource '*' for {unexplained}")
    return problems


def deployed_environment(expanded: ExpandedTemplate, name: str) -> dict[str, str]:
    """A function's variables as deployed, resource references shown by name."""
    return {key: str(render(value)) for key, value in expanded.environment(name).items()}


# --------------------------------------------------------------------------- functions
def test_every_function_is_declared_with_its_code_folder(resources: dict[str, Any]) -> None:
    functions = of_type(resources, "AWS::Serverless::Function")
    assert {name: f["Properties"]["CodeUri"] for name, f in functions.items()} == FUNCTIONS


def test_functions_share_runtime_handler_tracing_and_the_common_layer(expanded: ExpandedTemplate) -> None:
    layers = expanded.of_type("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer_id,) = layers
    assert layer_id.startswith("CommonLayer")
    functions = expanded.of_type("AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", name
        assert props["Handler"] == "app.lambda_handler", name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Architectures"] == ["arm64"], name  # the default: Graviton
        assert props["Layers"] == [{"Ref": layer_id}], name
    assert layers[layer_id]["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_architecture_is_one_parameter_for_functions_layer_and_build(template: dict[str, Any]) -> None:
    x86 = expand({**LIVE, "Architecture": "x86_64"})
    for name, function in x86.of_type("AWS::Lambda::Function").items():
        assert function["Properties"]["Architectures"] == ["x86_64"], name
    (layer,) = x86.of_type("AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    # sam build reads the layer's build architecture from its Metadata.
    metadata = template["Resources"]["CommonLayer"]["Metadata"]
    assert metadata["BuildMethod"] == "python3.12"
    assert metadata["BuildArchitecture"] == {"Ref": "Architecture"}
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert set(template["Parameters"]["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}


def test_code_folders_exist_for_sam_build() -> None:
    missing = [uri for uri in FUNCTIONS.values() if not (REPO / uri / "app.py").is_file()]
    assert not missing, f"sam build needs app.py in: {missing}"


def test_every_function_gets_its_own_role(resources: dict[str, Any], expanded: ExpandedTemplate) -> None:
    for name in FUNCTIONS:
        assert "Role" not in resources[name]["Properties"], f"{name} must not share a role"
    roles = {name: expanded.role_of(name) for name in FUNCTIONS}
    assert len(set(roles.values())) == len(roles), f"roles are shared: {roles}"


def test_environment_matches_what_the_settings_expect(expanded: ExpandedTemplate) -> None:
    for name in FUNCTIONS:
        env = deployed_environment(expanded, name)
        assert env["TIMESERIES_BACKEND"] == "timestream", name
        assert env["GRAPH_BACKEND"] == "neptune", name
        assert env["NEPTUNE_IAM_AUTH"] == "true", name
        assert env["REJECTED_SINK"] == "sqs", name
        assert env["EVENT_PUBLISHER"] == "eventbridge", name
        assert env["RULES_OVERRIDE"] == "ssm:/fraud-detection-test/rules-override", name
        assert env["GRAPH_ENDPOINT"] == "wss://NeptuneCluster.Endpoint:NeptuneCluster.Port/gremlin", name
        assert env["POWERTOOLS_SERVICE_NAME"], name
        # The settings object the handlers read must accept each deployed environment (names,
        # choices, numbers, required pairs such as REJECTED_SINK=sqs + REJECTED_QUEUE_URL).
        Settings.from_env(env)
    micro = expanded.environment("MicroAnalysisFunction")
    assert micro["INVESTIGATION_STARTER"] == "stepfunctions"
    assert micro["STATE_MACHINE_ARN"] == {"Ref": "InvestigationStateMachine"}
    others = [n for n in FUNCTIONS if "STATE_MACHINE_ARN" in expanded.environment(n)]
    assert others == ["MicroAnalysisFunction"]
    existing = expand(
        {
            "ExistingNeptuneEndpoint": "graph.cluster-abc.us-east-1.neptune.amazonaws.com",
            "ExistingNeptunePort": "8183",
            "ExistingNeptuneClusterResourceId": "cluster-ABC",
            "ExistingNeptuneSecurityGroupId": "sg-0123",
            "ExistingVpcId": "vpc-0123",
            "ExistingSubnetIds": "subnet-1,subnet-2",
        }
    )
    assert "NeptuneCluster" not in existing.resources and "Vpc" not in existing.resources
    assert deployed_environment(existing, "RingAnalysisFunction")["GRAPH_ENDPOINT"] == (
        "wss://graph.cluster-abc.us-east-1.neptune.amazonaws.com:8183/gremlin"
    )


def test_graph_functions_run_in_the_vpc(expanded: ExpandedTemplate) -> None:
    for name in FUNCTIONS:
        vpc = expanded.properties(name).get("VpcConfig")
        assert (vpc is not None) == (name in GRAPH_FUNCTIONS), name
        if vpc:
            assert [reference(s) for s in vpc["SubnetIds"]] == ["PrivateSubnetA", "PrivateSubnetB"], name
            assert [reference(g) for g in vpc["SecurityGroupIds"]] == ["FunctionSecurityGroup"], name


# --------------------------------------------------------------------------- IAM
def test_every_role_allows_exactly_what_its_function_does(expanded: ExpandedTemplate) -> None:
    for name, expected in EXPECTED_PERMISSIONS.items():
        assert granted(expanded, name) == expected, name
        managed = set(expanded.managed_policies(name))
        # SAM attaches the VPC policy wherever VpcConfig is written, also under a condition that
        # leaves it out (the time-series functions join the VPC only with InfluxDB 3)
        in_vpc = (
            {"AWSLambdaVPCAccessExecutionRole"}
            if name in GRAPH_FUNCTIONS or name in ("IngestTimeseriesFunction", "MicroAnalysisFunction")
            else set()
        )
        assert managed == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", *in_vpc}, name


def test_an_existing_cluster_gets_the_same_permissions_on_its_resource_id() -> None:
    existing = expand(
        {
            "ExistingNeptuneEndpoint": "graph.example",
            "ExistingNeptuneClusterResourceId": "cluster-ABC",
            "ExistingNeptuneSecurityGroupId": "sg-0123",
            "ExistingVpcId": "vpc-0123",
            "ExistingSubnetIds": "subnet-1,subnet-2",
        }
    )
    arn = "arn:aws:neptune-db:us-east-1:123456789012:cluster-ABC/*"
    assert ("neptune-db:ReadDataViaQuery", arn) in granted(existing, "RingAnalysisFunction")
    assert ("neptune-db:WriteDataViaQuery", arn) in granted(existing, "IngestGraphFunction")


def test_the_state_machine_role_can_deliver_logs_and_invoke_only_its_steps(
    expanded: ExpandedTemplate,
) -> None:
    pairs = granted(expanded, "InvestigationStateMachine")
    assert {(action, "*") for action in LOG_DELIVERY_ACTIONS} <= pairs
    invoked = {resource for action, resource in pairs if action == "lambda:InvokeFunction"}
    assert invoked == set(INVESTIGATION_TASKS)
    others = {action for action, _ in pairs} - LOG_DELIVERY_ACTIONS - {"lambda:InvokeFunction"}
    assert others <= {a for a in STAR_RESOURCE_ALLOWED if a.startswith("xray:")}, others


def test_the_permission_check_sees_a_missing_and_an_extra_permission() -> None:
    tampered = expand(LIVE)
    role = tampered.properties(tampered.role_of("RingAnalysisFunction"))
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Ref": "CaseEventBus"}})
    assert granted(tampered, "RingAnalysisFunction") != EXPECTED_PERMISSIONS["RingAnalysisFunction"]
    machine_role = tampered.properties(tampered.role_of("InvestigationStateMachine"))
    for policy in machine_role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            statement["Action"] = [a for a in as_list(statement["Action"]) if a != "logs:CreateLogDelivery"]
    assert ("logs:CreateLogDelivery", "*") not in granted(tampered, "InvestigationStateMachine")


# --------------------------------------------------------------------------- encryption and keys
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
    for name, bucket in of_type(resources, "AWS::S3::Bucket").items():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        expected = (
            {"SSEAlgorithm": "AES256"}
            if name in SSE_S3_BUCKETS
            else {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
        )
        assert rule["ServerSideEncryptionByDefault"] == expected, name
    log_groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(log_groups) >= len(FUNCTIONS) + 1
    for name, group in log_groups.items():
        assert group["Properties"]["KmsKeyId"] == key, name
        assert "RetentionInDays" in group["Properties"], name
    assert resources["DataKey"]["Properties"]["EnableKeyRotation"] is True


def test_the_key_outlives_the_stack_with_the_snapshot_it_encrypts(resources: dict[str, Any]) -> None:
    # Neptune leaves a final snapshot (DeletionPolicy: Snapshot) encrypted with the key; a
    # deleted key would make it impossible to restore.
    assert resources["NeptuneCluster"]["DeletionPolicy"] == "Snapshot"
    assert resources["DataKey"]["DeletionPolicy"] == "Retain"
    assert resources["DataKey"]["UpdateReplacePolicy"] == "Retain"
    deploy_doc = (REPO / "docs" / "deploy.md").read_text()
    assert "retain" in deploy_doc.lower() and "DataKey" in deploy_doc


def test_every_function_logs_to_its_own_encrypted_group(resources: dict[str, Any]) -> None:
    groups = [resources[n]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for n in FUNCTIONS]
    assert len(set(groups)) == len(FUNCTIONS)
    assert all(resources[g]["Type"] == "AWS::Logs::LogGroup" for g in groups)


# --------------------------------------------------------------------------- time series
def test_timestream_table_retention_and_magnetic_writes(resources: dict[str, Any]) -> None:
    table = resources["TransactionsTable"]["Properties"]
    assert table["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True
    retention = table["RetentionProperties"]
    assert retention["MemoryStoreRetentionPeriodInHours"] == {"Ref": "TimestreamMemoryRetentionHours"}
    assert "MagneticStoreRetentionPeriodInDays" in retention


def test_magnetic_store_rejections_land_encrypted_in_s3_and_raise_an_alarm(resources: dict[str, Any]) -> None:
    location = resources["TransactionsTable"]["Properties"]["MagneticStoreWriteProperties"][
        "MagneticStoreRejectedDataLocation"
    ]["S3Configuration"]
    assert location["BucketName"] == {"Ref": "MagneticStoreRejectsBucket"}
    assert location["EncryptionOption"] == "SSE_KMS"
    assert reference(location["KmsKeyId"]) == "DataKey"
    bucket = resources["MagneticStoreRejectsBucket"]
    assert bucket["DeletionPolicy"] == "Retain"  # it may hold records stored nowhere else
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == {"Ref": "MagneticStoreRejectsRetentionDays"}
    (metrics,) = props["MetricsConfigurations"]
    alarm = resources["MagneticStoreRejectsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/S3", "PutRequests")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"BucketName": {"Ref": "MagneticStoreRejectsBucket"}, "FilterId": metrics["Id"]}
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert "#magnetic-store-rejections" in alarm["AlarmDescription"]
    operations = (REPO / "docs" / "operations.md").read_text()
    assert '<a id="magnetic-store-rejections"></a>' in operations


def test_vpc_endpoints_mode_points_the_timestream_client_at_the_cell() -> None:
    endpoints = expand({**LIVE, "VpcEgress": "endpoints", "TimestreamQueryCell": "query-cell2"})
    env = deployed_environment(endpoints, "SharedDeviceAnalysisFunction")
    assert env["TIMESTREAM_QUERY_ENDPOINT"] == "https://query-cell2.timestream.us-east-1.amazonaws.com"
    assert endpoints.properties("TimestreamQueryEndpoint")["ServiceName"] == (
        "com.amazonaws.us-east-1.timestream.query-cell2"
    )
    assert "NatGateway" not in endpoints.resources
    Settings.from_env(env)
    # With a NAT gateway the SDK discovers the endpoint itself.
    assert (
        deployed_environment(expand(LIVE), "SharedDeviceAnalysisFunction")["TIMESTREAM_QUERY_ENDPOINT"] == ""
    )


# --------------------------------------------------------------------------- stream failure handling
def test_each_ingest_function_has_its_own_bounded_stream_mapping(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    mappings = of_type(resources, "AWS::Lambda::EventSourceMapping")
    by_function = {reference(m["Properties"]["FunctionName"]): m["Properties"] for m in mappings.values()}
    assert sorted(by_function) == sorted(INGEST_FUNCTIONS)
    for name in FUNCTIONS:  # no second, unbounded mapping hidden in SAM Events
        events = resources[name]["Properties"].get("Events", {})
        assert not [e for e in events.values() if e["Type"] in ("Kinesis", "SQS", "DynamoDB")], name
    for function, props in by_function.items():
        assert reference(props["EventSourceArn"]) == "TransactionStream", function
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function
        assert props["BisectBatchOnFunctionError"] is True, function
        assert props["StartingPosition"] == "TRIM_HORIZON", function
        assert reference(props["DestinationConfig"]["OnFailure"]["Destination"]) == "FailedInvocationsQueue"
        retries = parameter_of(template, props["MaximumRetryAttempts"])
        assert retries is not None and retries["MinValue"] >= 0 and retries["MaxValue"] <= 10000, function
        age = parameter_of(template, props["MaximumRecordAgeInSeconds"])
        # -1 would mean "forever": the bounds must exclude it.
        assert age is not None and age["MinValue"] >= 60 and age["MaxValue"] <= 604800, function
        for key in ("BatchSize", "ParallelizationFactor"):
            assert parameter_of(template, props[key]) is not None, f"{function}.{key}"


# --------------------------------------------------------------------------- investigation workflow
def test_state_machine_substitutions_logging_and_tracing(
    template: dict[str, Any], expanded: ExpandedTemplate
) -> None:
    machine = template["Resources"]["InvestigationStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachines/investigation.asl.json"
    assert machine["Type"] == "STANDARD"  # execution names dedupe flags for 90 days
    substitutions = machine["DefinitionSubstitutions"]
    assert sorted(substitutions) == sorted(f"{n}Arn" for n in INVESTIGATION_TASKS)
    for key, value in substitutions.items():
        assert value == {"Fn::GetAtt": [key.removesuffix("Arn"), "Arn"]}, key
    deployed = expanded.properties("InvestigationStateMachine")
    assert deployed["TracingConfiguration"] == {"Enabled": True}
    logging = deployed["LoggingConfiguration"]
    assert logging["Level"] == "ERROR"
    # inputs and outputs name people's identifiers: kept in the execution history, not in logs
    assert logging["IncludeExecutionData"] is False
    group = reference(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert expanded.resources[group]["Type"] == "AWS::Logs::LogGroup"
    assert set(template["Parameters"]["StateMachineLogLevel"]["AllowedValues"]) <= {"ALL", "ERROR"}


def test_micro_analysis_reads_the_override_the_stack_creates(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["RulesOverrideParameter"]["Properties"]["Name"] == {
        "Fn::Sub": "/${AWS::StackName}/rules-override"
    }
    schedule = resources["MicroAnalysisFunction"]["Properties"]["Events"]["Schedule"]
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "MicroAnalysisSchedule"}
    # The handler reads the evaluation time from the event's "time".
    assert '"time": "<aws.scheduler.scheduled-time>"' in schedule["Properties"]["Input"]


# --------------------------------------------------------------------------- Neptune and network
def test_neptune_is_serverless_with_iam_auth_a_pinned_engine_and_audit_logs(
    resources: dict[str, Any], template: dict[str, Any], expanded: ExpandedTemplate
) -> None:
    cluster = resources["NeptuneCluster"]
    assert cluster["Condition"] == "CreateNeptune"
    props = expanded.properties("NeptuneCluster")
    assert props["IamAuthEnabled"] is True
    assert "ServerlessScalingConfiguration" in props
    assert expanded.properties("NeptuneInstance")["DBInstanceClass"] == "db.serverless"
    # gremlinpython 3.7.x needs engine 1.3.2.0 or later; the default pins a current 1.4 engine.
    version = props["EngineVersion"]
    assert tuple(int(p) for p in version.split(".")) >= (1, 3, 2, 0)
    assert re.fullmatch(template["Parameters"]["NeptuneEngineVersion"]["AllowedPattern"], version)
    assert not re.fullmatch(template["Parameters"]["NeptuneEngineVersion"]["AllowedPattern"], "1.2.1.0")
    # Exported audit logs exist only when the cluster parameter group turns them on.
    assert props["EnableCloudwatchLogsExports"] == ["audit"]
    group = expanded.properties(reference(props["DBClusterParameterGroupName"]))
    assert group["Parameters"]["neptune_enable_audit_log"] == 1
    assert group["Family"] == "neptune" + ".".join(version.split(".")[:2])


def test_the_default_security_group_gets_no_duplicate_rule(expanded: ExpandedTemplate) -> None:
    # EC2 gives a VPC's default group an inbound rule from itself; adding it again fails with
    # InvalidPermission.Duplicate.
    for name in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        for rule_id, rule in expanded.of_type(name).items():
            assert rule["Properties"]["GroupId"] != {"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]}, rule_id


# --------------------------------------------------------------------------- least privilege
def test_no_wildcards_outside_the_allow_list_as_written(resources: dict[str, Any]) -> None:
    assert check_least_privilege(resources) == []


def test_no_wildcards_outside_the_allow_list_after_the_transform(expanded: ExpandedTemplate) -> None:
    assert check_least_privilege(expanded.resources) == []
    for name, role in expanded.of_type("AWS::IAM::Role").items():
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
                watched.add((metric["MetricName"], reference(dimension["Value"]) or ""))
    for name in INGEST_FUNCTIONS:
        assert ("IteratorAge", name) in watched
    for name in FUNCTIONS:
        assert ("Errors", name) in watched
    for queue in ("RejectedRecordsQueue", "FailedInvocationsQueue"):
        assert ("ApproximateNumberOfMessagesVisible", queue) in watched
    assert ("ExecutionsFailed", "InvestigationStateMachine") in watched
    assert ("PutRequests", "MagneticStoreRejectsBucket") in watched
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
def test_env_local_selects_only_adapters_the_built_layer_has(expanded: ExpandedTemplate) -> None:
    """`sam local invoke` runs the built layer, which has the AWS adapters only: env.local.json
    points the graph at a Gremlin Server and everything else at the dev stack's resources."""
    local = json.loads((REPO / "env.local.json").read_text())
    assert set(local) <= {"Parameters", *FUNCTIONS}
    for name in FUNCTIONS:
        declared = deployed_environment(expanded, name)
        overrides = {**local.get("Parameters", {}), **local.get(name, {})}
        # sam local invoke silently ignores variables the template does not declare.
        assert set(overrides) <= set(declared), (
            f"{name}: {set(overrides) - set(declared)} not in the template"
        )
        settings = Settings.from_env({**declared, **overrides})
        assert settings.graph_backend == "gremlin-server" and not settings.neptune_iam_auth, name
        assert settings.timeseries_backend == "timestream", name
        assert (settings.rejected_sink, settings.event_publisher) == ("sqs", "eventbridge"), name
        assert settings.investigation_starter == "stepfunctions" or name != "MicroAnalysisFunction"


def test_personal_identifiers_stay_out_of_names_and_traces(
    template: dict[str, Any], expanded: ExpandedTemplate
) -> None:
    resources = template["Resources"]
    secret = resources["PiiHashKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    micro = resources["MicroAnalysisFunction"]["Properties"]
    assert micro["Environment"]["Variables"]["PII_HASH_KEY"] == {
        "Fn::Sub": "secretsmanager:${PiiHashKeySecret}"
    }
    reads = {
        reference(resource)
        for action, resource in statements_allowing(expanded.role_statements("MicroAnalysisFunction"))
        if action == "secretsmanager:GetSecretValue"
    }
    assert reads == {"PiiHashKeySecret"}
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
