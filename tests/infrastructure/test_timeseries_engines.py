"""Each TimeseriesEngine deploys its own time-series resources, environment and IAM, and nothing of the other.

The template is read as SAM's own translator expands it for each parameter value, with the
conditions applied as CloudFormation applies them (:mod:`tests.infrastructure.sam`): Globals
merged into each function, and the roles SAM generates with their policies.
"""

from __future__ import annotations

from typing import Any

import pytest
from infrastructure.sam import ExpandedTemplate, expand, source_template, statements_allowing

from fraudcore.settings import Settings

TEMPLATE = source_template()
TIMESERIES_FUNCTIONS = {"IngestTimeseriesFunction", "MicroAnalysisFunction", "SharedDeviceAnalysisFunction"}


@pytest.fixture(scope="module", params=["influxdb3", "liveanalytics"])
def deployed(request: pytest.FixtureRequest) -> tuple[str, ExpandedTemplate]:
    """(engine, the template as deployed with it)."""
    return request.param, expand({"TimeseriesEngine": request.param})


def actions_in(document: Any) -> set[str]:
    """Every IAM action named anywhere in a document (policies, inline or generated)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("Action", "NotAction"):
                    found.update(value if isinstance(value, list) else [value])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


def types_of(resources: dict[str, Any]) -> set[str]:
    return {resource["Type"] for resource in resources.values()}


def test_the_default_engine_is_the_one_every_account_can_deploy() -> None:
    parameter = TEMPLATE["Parameters"]["TimeseriesEngine"]
    assert parameter["Default"] == "influxdb3"
    assert set(parameter["AllowedValues"]) == {"influxdb3", "liveanalytics"}


def test_only_the_chosen_engine_has_resources_and_iam_actions(deployed) -> None:
    engine, template = deployed
    resources = template.resources
    actions = actions_in(resources)
    timestream = {
        t for t in types_of(resources) if t in ("AWS::Timestream::Database", "AWS::Timestream::Table")
    }
    influx = {t for t in types_of(resources) if t == "AWS::Timestream::InfluxDBCluster"}
    if engine == "influxdb3":
        assert timestream == set() and influx == {"AWS::Timestream::InfluxDBCluster"}
        assert not {a for a in actions if a.startswith("timestream:")}
        assert "secretsmanager:GetSecretValue" in actions
    else:
        assert influx == set() and timestream == {"AWS::Timestream::Database", "AWS::Timestream::Table"}
        assert {a for a in actions if a.startswith("timestream:")} == {
            "timestream:WriteRecords",
            "timestream:Select",
            "timestream:DescribeEndpoints",
        }
        # the only secret then is the name-hash key (read by micro-analysis, checked below)
        assert {a for a in actions if a.startswith("secretsmanager:")} == {"secretsmanager:GetSecretValue"}
    outputs = set(template.template["Outputs"])
    assert ("InfluxDBEndpoint" in outputs) == (engine == "influxdb3")
    assert ("TimestreamDatabaseName" in outputs) == (engine == "liveanalytics")


def test_the_token_is_readable_only_by_the_time_series_functions_and_only_that_secret(deployed) -> None:
    engine, template = deployed
    readers: dict[str, list[Any]] = {}
    name_key_readers = set()
    for name in template.of_type("AWS::Lambda::Function"):
        for action, resource in statements_allowing(template.role_statements(name)):
            if action != "secretsmanager:GetSecretValue":
                continue
            if resource == {"Ref": "PiiHashKeySecret"}:
                name_key_readers.add(name)  # the execution-name hash key, not the token
            else:
                readers.setdefault(name, []).append(resource)
    assert name_key_readers == {"MicroAnalysisFunction"}
    if engine == "liveanalytics":
        assert readers == {}
        return
    assert set(readers) == TIMESERIES_FUNCTIONS
    assert all(
        resources == [{"Fn::GetAtt": ["InfluxDBCluster", "InfluxAuthParametersSecretArn"]}]
        for resources in readers.values()
    )


def test_the_environment_names_the_engine_and_is_accepted_by_the_settings(deployed) -> None:
    engine, template = deployed
    env = template.environment("MicroAnalysisFunction")
    if engine == "influxdb3":
        assert env["TIMESERIES_BACKEND"] == "influxdb3"
        assert env["INFLUXDB_ENDPOINT"] == {"Fn::Sub": "https://${InfluxDBCluster.Endpoint}:8086"}
        assert env["INFLUXDB_SECRET_ARN"] == {
            "Fn::GetAtt": ["InfluxDBCluster", "InfluxAuthParametersSecretArn"]
        }
        assert "TIMESTREAM_DATABASE" not in env and "TIMESTREAM_MEMORY_RETENTION_HOURS" not in env
        concrete = {**env, "INFLUXDB_ENDPOINT": "https://cluster:8086", "INFLUXDB_SECRET_ARN": "arn:secret"}
    else:
        assert env["TIMESERIES_BACKEND"] == "timestream"
        assert not [name for name in env if name.startswith("INFLUXDB_")]
        concrete = {**env, "TIMESTREAM_DATABASE": "db"}
    concrete = {k: v for k, v in concrete.items() if isinstance(v, str)}  # the rest is set at deploy
    concrete.update(
        REJECTED_QUEUE_URL="https://sqs/queue",
        GRAPH_ENDPOINT="wss://neptune:8182/gremlin",
        STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:investigation",
    )
    assert Settings.from_env(concrete).timeseries_backend == env["TIMESERIES_BACKEND"]


def test_the_cluster_is_private_tls_on_8086_and_reachable_only_from_the_functions(deployed) -> None:
    engine, template = deployed
    resources = template.resources
    if engine == "liveanalytics":
        assert "InfluxDBSecurityGroup" not in resources and "FunctionToInfluxDBEgress" not in resources
        return
    cluster = resources["InfluxDBCluster"]["Properties"]
    assert cluster["PubliclyAccessible"] is False and cluster["Port"] == 8086
    assert TEMPLATE["Parameters"]["InfluxDBParameterGroup"]["Default"] == "InfluxDBv3Core"
    assert cluster["DbParameterGroupIdentifier"] == "InfluxDBv3Core"  # the parameter's default
    assert cluster["VpcSecurityGroupIds"] == [{"Ref": "InfluxDBSecurityGroup"}]
    assert cluster["LogDeliveryConfiguration"]["S3Configuration"]["Enabled"] is True
    ingress = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    to_cluster = [i for i in ingress if i["GroupId"] == {"Ref": "InfluxDBSecurityGroup"}]
    assert to_cluster == [
        {
            "GroupId": {"Ref": "InfluxDBSecurityGroup"},
            "Description": to_cluster[0]["Description"],
            "IpProtocol": "tcp",
            "FromPort": 8086,
            "ToPort": 8086,
            "SourceSecurityGroupId": {"Ref": "FunctionSecurityGroup"},
        }
    ]
    assert not resources["InfluxDBSecurityGroup"]["Properties"].get("SecurityGroupIngress")
    for name in ("IngestTimeseriesFunction", "MicroAnalysisFunction"):
        vpc = resources[name]["Properties"]["VpcConfig"]
        assert vpc["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}], name
