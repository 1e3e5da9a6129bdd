"""Input schemas of the AWS-facing and control-flow actions: what a document author is told."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_engine.diagnostics import Finding
from runbook_engine.registry import default_registry

ACTIONS = default_registry()

OUR_ACTIONS = (
    "aws:assertAwsResourceProperty", "aws:branch", "aws:changeInstanceState", "aws:copyImage",
    "aws:createImage", "aws:createStack", "aws:createTags", "aws:deleteImage", "aws:deleteStack",
    "aws:executeAwsApi", "aws:executeStateMachine", "aws:invokeLambdaFunction",
    "aws:invokeWebhook", "aws:loop", "aws:runCommand", "aws:runInstances",
    "aws:waitForAwsResourceProperty",
)


def check(action: str, inputs: Any, static: bool = True) -> list[Finding]:
    return ACTIONS[action].schema.check(inputs, static=static)


def errors(action: str, inputs: Any, static: bool = True) -> list[tuple[tuple[Any, ...], str]]:
    return [(f.path, f.message) for f in check(action, inputs, static) if f.severity == "error"]


# --- valid inputs --------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("aws:assertAwsResourceProperty", {
        "Service": "ec2", "Api": "DescribeInstanceStatus", "InstanceIds": ["i-1"],
        "PropertySelector": "$.InstanceStatuses[0].InstanceState.Name",
        "DesiredValues": ["running"]}),
    ("aws:branch", {
        "Choices": [{"NextStep": "runLinux", "Variable": "{{ os }}", "StringEquals": "Linux"}],
        "Default": "sleep"}),
    ("aws:changeInstanceState", {
        "InstanceIds": ["i-1"], "DesiredState": "stopped", "CheckStateOnly": False,
        "Force": True, "AdditionalInfo": "x"}),
    ("aws:copyImage", {
        "SourceRegion": "eu-west-1", "SourceImageId": "ami-1", "ImageName": "copy",
        "ImageDescription": "d", "Encrypted": True, "KmsKeyId": "arn:aws:kms:k",
        "ClientToken": "t"}),
    ("aws:createImage", {
        "InstanceId": "i-1", "ImageName": "img", "ImageDescription": "d", "NoReboot": True,
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdh", "Ebs": {"VolumeSize": 8}}]}),
    ("aws:createStack", {
        "StackName": "MyStack", "TemplateBody": "Resources: {}",
        "Parameters": [{"ParameterKey": "A", "ParameterValue": "b"}],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"], "OnFailure": "DELETE",
        "Tags": [{"Key": "k", "Value": "v"}], "TimeoutInMinutes": 30}),
    ("aws:createTags", {
        "ResourceIds": ["i-1", "i-2"], "ResourceType": "EC2",
        "Tags": [{"Key": "Stage", "Value": "done"}]}),
    ("aws:deleteImage", {"ImageId": "ami-1"}),
    ("aws:deleteStack", {
        "StackName": "MyStack", "RetainResources": ["Bucket"], "RoleARN": "arn:aws:iam::1:role/r",
        "ClientRequestToken": "t"}),
    ("aws:executeAwsApi", {
        "Service": "ec2", "Api": "DescribeInstances",
        "Filters": [{"Name": "tag:Stage", "Values": ["x"]}]}),
    ("aws:executeStateMachine", {
        "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m", "name": "run1",
        "input": '{"a": 1}'}),
    ("aws:invokeLambdaFunction", {
        "FunctionName": "f", "Qualifier": "live", "InvocationType": "RequestResponse",
        "LogType": "Tail", "ClientContext": "c", "InputPayload": {"a": 1}}),
    ("aws:invokeWebhook", {"IntegrationName": "slack", "Body": '{"text": "hi"}'}),
    ("aws:loop", {
        "Iterators": ["a", "b"], "IteratorDataType": "String", "MaxIterations": 2,
        "Steps": [{"name": "inner", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}]}),
    ("aws:runCommand", {
        "DocumentName": "AWS-RunShellScript", "InstanceIds": ["i-1"],
        "Parameters": {"commands": ["echo hi"]}, "TimeoutSeconds": 600,
        "MaxConcurrency": "10%", "MaxErrors": 0, "DocumentHashType": "Sha256",
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": True}}),
    ("aws:runInstances", {
        "ImageId": "ami-1", "InstanceType": "t3.micro", "MinInstanceCount": 1,
        "MaxInstanceCount": "2", "SecurityGroupIds": ["sg-1"],
        "MetadataOptions": {"HttpTokens": "required"}, "Monitoring": False,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": []}]}),
    ("aws:waitForAwsResourceProperty", {
        "Service": "rds", "Api": "DescribeDBInstances", "DBInstanceIdentifier": "db",
        "PropertySelector": "$.DBInstances[0].DBInstanceStatus",
        "DesiredValues": ["available"]}),
]


def test_every_action_has_a_valid_example() -> None:
    assert sorted(name for name, _ in VALID) == sorted(OUR_ACTIONS)


@pytest.mark.parametrize(("action", "inputs"), VALID, ids=[name for name, _ in VALID])
def test_valid_inputs_have_no_findings(action: str, inputs: dict[str, Any]) -> None:
    assert check(action, inputs) == []
    assert check(action, inputs, static=False) == []


@pytest.mark.parametrize(("action", "inputs"), VALID, ids=[name for name, _ in VALID])
def test_whole_expressions_stand_for_any_type_in_the_document(
    action: str, inputs: dict[str, Any]
) -> None:
    as_expressions = {name: f"{{{{ Prep.{name} }}}}" for name in inputs}
    if action == "aws:loop":
        as_expressions.pop("IteratorDataType")  # one of a fixed set, checked once rendered
    found = errors(action, as_expressions)
    # Only a rule between two inputs can still fail (e.g. exactly one of a pair).
    assert all("one of" in message for _, message in found), found


# --- invalid inputs: missing required, wrong type, bad allowed value, rules ---------------

INVALID: list[tuple[str, dict[str, Any], tuple[Any, ...], str]] = [
    # assertAwsResourceProperty / waitForAwsResourceProperty
    ("aws:assertAwsResourceProperty",
     {"Service": "ec2", "Api": "DescribeInstances", "PropertySelector": "$.x"},
     (), "missing required input 'DesiredValues'"),
    ("aws:assertAwsResourceProperty",
     {"Service": "ec2", "Api": "DescribeInstances", "PropertySelector": "$.x",
      "DesiredValues": "running"},
     ("DesiredValues",), "input 'DesiredValues' must be StringList, not String"),
    ("aws:waitForAwsResourceProperty",
     {"Service": "ec2", "Api": "DescribeInstances", "PropertySelector": ["$.x"],
      "DesiredValues": ["a"]},
     ("PropertySelector",), "input 'PropertySelector' must be String, not StringList"),
    ("aws:waitForAwsResourceProperty",
     {"Service": "ec3", "Api": "DescribeInstances", "PropertySelector": "$.x",
      "DesiredValues": ["a"]},
     ("Service",), "unknown AWS service 'ec3' (Service takes a boto3 client name such as "
                   "ec2, ssm or rds)"),
    # branch
    ("aws:branch", {"Default": "x"}, (), "missing required input 'Choices'"),
    ("aws:branch", {"Choices": {"NextStep": "a"}},
     ("Choices",), "input 'Choices' must be MapList, not StringMap"),
    ("aws:branch", {"Choices": []}, ("Choices",), "Choices must hold at least one choice"),
    ("aws:branch", {"Choices": [{"Variable": "{{ a }}", "StringEquals": "x"}]},
     ("Choices", 0), "choice 1 has no NextStep"),
    ("aws:branch", {"Choices": [{"NextStep": ["a"], "Variable": "{{ a }}", "StringEquals": "x"}]},
     ("Choices", 0, "NextStep"), "NextStep must be a step name"),
    ("aws:branch",
     {"Choices": [{"NextStep": "a", "Variable": "{{ a }}", "StringEquals": "x"},
                  {"NextStep": "b", "Variable": "{{ n }}", "NumericGreater": "abc"}]},
     ("Choices", 1, "NumericGreater"), "NumericGreater needs a number, not 'abc'"),
    ("aws:branch", {"Choices": [{"NextStep": "a", "Variable": "{{ a }}", "Equals": "x"}]},
     ("Choices", 0, "Equals"),
     "unknown operator 'Equals' (known: StringEquals, EqualsIgnoreCase, StartsWith, EndsWith, "
     "Contains, NumericEquals, NumericGreater, NumericLesser, NumericGreaterOrEquals, "
     "NumericLesserOrEquals, BooleanEquals, And, Or, Not); did you mean 'StringEquals'?"),
    ("aws:branch", {"Choices": [{"NextStep": "a", "StringEquals": "x"}]},
     ("Choices", 0), "the condition with StringEquals has no Variable"),
    ("aws:branch", {"Choices": [{"NextStep": "a", "Variable": "a", "Contains": "b"}],
                    "Default": ["a"]},
     ("Default",), "input 'Default' must be String, not StringList"),
    # changeInstanceState
    ("aws:changeInstanceState", {"InstanceIds": ["i-1"]},
     (), "missing required input 'DesiredState'"),
    ("aws:changeInstanceState", {"InstanceIds": ["i-1"], "DesiredState": "paused"},
     ("DesiredState",), "input 'DesiredState' must be one of running, stopped, terminated, "
                        "not 'paused'"),
    ("aws:changeInstanceState",
     {"InstanceIds": ["i-1"], "DesiredState": "running", "CheckStateOnly": "maybe"},
     ("CheckStateOnly",), "input 'CheckStateOnly' must be Boolean, not String"),
    # copyImage
    ("aws:copyImage", {"SourceRegion": "eu-west-1", "ImageName": "c"},
     (), "missing required input 'SourceImageId'"),
    ("aws:copyImage",
     {"SourceRegion": "eu-west-1", "SourceImageId": ["ami-1", "ami-2"], "ImageName": "c"},
     ("SourceImageId",), "input 'SourceImageId' must be String, not StringList"),
    # createImage
    ("aws:createImage", {"InstanceId": "i-1"}, (), "missing required input 'ImageName'"),
    ("aws:createImage", {"InstanceId": "i-1", "ImageName": "n", "NoReboot": "yes"},
     ("NoReboot",), "input 'NoReboot' must be Boolean, not String"),
    # createStack
    ("aws:createStack", {"TemplateBody": "{}"}, (), "missing required input 'StackName'"),
    ("aws:createStack", {"StackName": "s"},
     (), "exactly one of TemplateBody, TemplateURL is required"),
    ("aws:createStack", {"StackName": "s", "TemplateBody": "{}", "TemplateURL": "https://x"},
     (), "exactly one of TemplateBody, TemplateURL is required"),
    ("aws:createStack",
     {"StackName": "s", "TemplateBody": "{}", "DisableRollback": True, "OnFailure": "DELETE"},
     (), "at most one of DisableRollback, OnFailure may be given"),
    ("aws:createStack", {"StackName": "s", "TemplateBody": "{}", "OnFailure": "IGNORE"},
     ("OnFailure",), "input 'OnFailure' must be one of DO_NOTHING, ROLLBACK, DELETE, not 'IGNORE'"),
    ("aws:createStack", {"StackName": "s", "TemplateBody": "{}", "TimeoutInMinutes": 0},
     ("TimeoutInMinutes",), "input 'TimeoutInMinutes' must be at least 1"),
    ("aws:createStack", {"StackName": "s", "TemplateBody": "{}", "Capabilities": ["CAPABILITY_X"]},
     ("Capabilities", 0), "unknown capability 'CAPABILITY_X' (known: CAPABILITY_IAM, "
                          "CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND)"),
    ("aws:createStack",
     {"StackName": "s", "TemplateBody": "{}", "Parameters": [{"ParameterValue": "v"}]},
     ("Parameters", 0), "a stack parameter needs ParameterKey"),
    ("aws:createStack",
     {"StackName": "s", "TemplateBody": "{}", "NotificationARNs": ["a"] * 6},
     ("NotificationARNs",), "input 'NotificationARNs' takes at most 5 items"),
    ("aws:createStack", {"StackName": "s", "TemplateBody": "x" * 51201},
     ("TemplateBody",), "TemplateBody is over 51200 bytes; put the template in S3 and use "
                        "TemplateURL"),
    # createTags
    ("aws:createTags", {"ResourceIds": ["i-1"]}, (), "missing required input 'Tags'"),
    ("aws:createTags", {"ResourceIds": ["i-1"], "Tags": [{"Key": "k"}], "ResourceType": "S3"},
     ("ResourceType",), "input 'ResourceType' must be one of EC2, ManagedInstance, "
                        "MaintenanceWindow, Parameter, not 'S3'"),
    ("aws:createTags",
     {"ResourceIds": ["mi-1", "mi-2"], "Tags": [{"Key": "k"}], "ResourceType": "ManagedInstance"},
     ("ResourceIds",), "ResourceType ManagedInstance takes one resource, not 2"),
    ("aws:createTags", {"ResourceIds": ["i-1"], "Tags": [{"Value": "v"}]},
     ("Tags", 0), "a tag needs a Key"),
    # deleteImage / deleteStack
    ("aws:deleteImage", {}, (), "missing required input 'ImageId'"),
    ("aws:deleteImage", {"ImageId": "ami-1", "Force": True},
     ("Force",), "unknown input 'Force' (known: ImageId)"),
    ("aws:deleteStack", {"RoleARN": "arn"}, (), "missing required input 'StackName'"),
    ("aws:deleteStack", {"StackName": "s", "RetainResources": "Bucket"},
     ("RetainResources",), "input 'RetainResources' must be StringList, not String"),
    # executeAwsApi
    ("aws:executeAwsApi", {"Service": "ec2"}, (), "missing required input 'Api'"),
    ("aws:executeAwsApi", {"Service": "ec2", "Api": ["DescribeInstances"]},
     ("Api",), "input 'Api' must be String, not StringList"),
    ("aws:executeAwsApi", {"Service": "elastic-compute", "Api": "DescribeInstances"},
     ("Service",), "unknown AWS service 'elastic-compute' (Service takes a boto3 client name "
                   "such as ec2, ssm or rds)"),
    ("aws:executeAwsApi", {"Service": "ec2", "Api": "DescribeInstance"},
     ("Api",), "service 'ec2' has no operation 'DescribeInstance'; did you mean "
               "'DescribeInstances'?"),
    ("aws:executeAwsApi", {"Service": "ssm", "Api": "LaunchRocket"},
     ("Api",), "service 'ssm' has no operation 'LaunchRocket'"),
    # executeStateMachine
    ("aws:executeStateMachine", {"name": "x"}, (), "missing required input 'stateMachineArn'"),
    ("aws:executeStateMachine", {"stateMachineArn": "arn", "input": {"a": 1}},
     ("input",), "input 'input' must be String, not StringMap"),
    # invokeLambdaFunction
    ("aws:invokeLambdaFunction", {"Payload": "{}"}, (), "missing required input 'FunctionName'"),
    ("aws:invokeLambdaFunction", {"FunctionName": "f", "InvocationType": "Async"},
     ("InvocationType",), "input 'InvocationType' must be one of Event, RequestResponse, DryRun, "
                          "not 'Async'"),
    ("aws:invokeLambdaFunction", {"FunctionName": "f", "LogType": "Full"},
     ("LogType",), "input 'LogType' must be one of None, Tail, not 'Full'"),
    ("aws:invokeLambdaFunction",
     {"FunctionName": "f", "LogType": "Tail", "InvocationType": "Event"},
     ("LogType",), "LogType Tail needs InvocationType RequestResponse, not 'Event'"),
    ("aws:invokeLambdaFunction", {"FunctionName": "f", "InputPayload": "{}"},
     ("InputPayload",), "input 'InputPayload' must be StringMap, not String"),
    # invokeWebhook
    ("aws:invokeWebhook", {"Body": "x"}, (), "missing required input 'IntegrationName'"),
    ("aws:invokeWebhook", {"IntegrationName": "slack", "Body": {"text": "hi"}},
     ("Body",), "input 'Body' must be String, not StringMap"),
    # loop
    ("aws:loop", {"Iterators": ["a"]}, (), "missing required input 'Steps'"),
    ("aws:loop", {"Steps": [{"name": "s"}]},
     (), "exactly one of Iterators, LoopCondition is required"),
    ("aws:loop", {"Steps": [{"name": "s"}], "Iterators": ["a"],
                  "LoopCondition": {"Variable": "a", "StringEquals": "b"}},
     (), "exactly one of Iterators, LoopCondition is required"),
    ("aws:loop", {"Steps": [{"name": "s"}], "Iterators": ["a"], "MaxIterations": 101},
     ("MaxIterations",), "input 'MaxIterations' must be at most 100"),
    ("aws:loop", {"Steps": [{"name": "s"}], "Iterators": ["a"], "MaxIterations": 0},
     ("MaxIterations",), "input 'MaxIterations' must be at least 1"),
    ("aws:loop", {"Steps": [{"name": "s"}], "Iterators": ["a"], "IteratorDataType": "Float"},
     ("IteratorDataType",), "input 'IteratorDataType' must be one of Boolean, Integer, String, "
                            "StringMap, not 'Float'"),
    ("aws:loop", {"Steps": [{"name": "s"}], "Iterators": [str(i) for i in range(101)]},
     ("Iterators",), "input 'Iterators' takes at most 100 items"),
    ("aws:loop", {"Steps": [{"name": "s"}], "LoopCondition": {"Not": {"Variable": "{{ x }}"}}},
     ("LoopCondition", "Not"),
     "the condition on Variable has no operator (one of StringEquals, EqualsIgnoreCase, "
     "StartsWith, EndsWith, Contains, NumericEquals, NumericGreater, NumericLesser, "
     "NumericGreaterOrEquals, NumericLesserOrEquals, BooleanEquals)"),
    ("aws:loop", {"Steps": [{"name": "s"}],
                  "LoopCondition": {"Variable": "{{ x }}", "BooleanEquals": "maybe"}},
     ("LoopCondition", "BooleanEquals"), "BooleanEquals needs true or false, not 'maybe'"),
    # runCommand
    ("aws:runCommand", {"InstanceIds": ["i-1"]}, (), "missing required input 'DocumentName'"),
    ("aws:runCommand",
     {"DocumentName": "d", "InstanceIds": ["i-1"], "Targets": [{"Key": "tag:a", "Values": ["b"]}]},
     (), "at most one of InstanceIds, Targets may be given"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": ["i-1"], "TimeoutSeconds": 10},
     ("TimeoutSeconds",), "input 'TimeoutSeconds' must be at least 30"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": ["i-1"], "TimeoutSeconds": "soon"},
     ("TimeoutSeconds",), "input 'TimeoutSeconds' must be Integer, not String"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": ["i-1"], "DocumentHashType": "Md5"},
     ("DocumentHashType",), "input 'DocumentHashType' must be one of Sha256, Sha1, not 'Md5'"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": [f"i-{i}" for i in range(51)]},
     ("InstanceIds",), "input 'InstanceIds' takes at most 50 items"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": ["i-1"], "Parameters": ["echo"]},
     ("Parameters",), "input 'Parameters' must be StringMap, not StringList"),
    ("aws:runCommand", {"DocumentName": "d", "InstanceIds": ["i-1"], "Color": "red"},
     ("Color",), "unknown input 'Color' (known: AlarmConfiguration, CloudWatchOutputConfig, "
                 "Comment, DocumentHash, DocumentHashType, DocumentName, DocumentVersion, "
                 "InstanceIds, MaxConcurrency, MaxErrors, NotificationConfig, OutputS3BucketName, "
                 "OutputS3KeyPrefix, OutputS3Region, Parameters, ServiceRoleArn, Targets, "
                 "TimeoutSeconds)"),
    # runInstances
    ("aws:runInstances", {"InstanceType": "t3.micro"}, (), "missing required input 'ImageId'"),
    ("aws:runInstances", {"ImageId": "ami-1", "MinInstanceCount": "many"},
     ("MinInstanceCount",), "MinInstanceCount must be a whole number of at least 1, not 'many'"),
    ("aws:runInstances", {"ImageId": "ami-1", "MaxInstanceCount": 0},
     ("MaxInstanceCount",), "MaxInstanceCount must be a whole number of at least 1, not 0"),
    ("aws:runInstances", {"ImageId": "ami-1", "MinInstanceCount": 3, "MaxInstanceCount": "2"},
     ("MinInstanceCount",), "MinInstanceCount must not be over MaxInstanceCount"),
    ("aws:runInstances", {"ImageId": "ami-1", "MinInstanceCount": [1]},
     ("MinInstanceCount",), "input 'MinInstanceCount' must be String or Integer, not StringList"),
    ("aws:runInstances", {"ImageId": "ami-1", "InstanceInitiatedShutdownBehavior": "hibernate"},
     ("InstanceInitiatedShutdownBehavior",),
     "input 'InstanceInitiatedShutdownBehavior' must be one of stop, terminate, not 'hibernate'"),
    ("aws:runInstances", {"ImageId": "ami-1", "SecurityGroupIds": {"a": "sg-1"}},
     ("SecurityGroupIds",), "input 'SecurityGroupIds' must be StringList, not StringMap"),
]


def test_every_action_has_invalid_examples() -> None:
    assert {name for name, *_ in INVALID} == set(OUR_ACTIONS)


@pytest.mark.parametrize(
    ("action", "inputs", "path", "message"), INVALID,
    ids=[f"{name}-{index}" for index, (name, *_) in enumerate(INVALID)],
)
def test_invalid_inputs_are_reported(
    action: str, inputs: dict[str, Any], path: tuple[Any, ...], message: str
) -> None:
    assert (path, message) in errors(action, inputs)


# --- leniencies real runbooks need ------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "api"),
    [("SQS", "SetQueueAttributes"), ("sts", "get_caller_identity"), ("s3", "listBuckets"),
     ("elbv2", "describe_load_balancers"), ("runtime.sagemaker", "InvokeEndpoint")],
)
def test_service_and_api_spellings_found_in_real_runbooks(service: str, api: str) -> None:
    assert check("aws:executeAwsApi", {"Service": service, "Api": api}) == []


def test_service_and_api_holding_expressions_are_not_checked() -> None:
    assert check("aws:executeAwsApi", {"Service": "{{ Service }}", "Api": "Anything"}) == []
    assert check("aws:executeAwsApi", {"Service": "ec2", "Api": "{{ Api }}"}) == []


def test_a_selector_without_dollar_is_a_warning() -> None:
    found = check("aws:waitForAwsResourceProperty", {
        "Service": "ssm", "Api": "GetDocument", "Name": "d", "PropertySelector": "Status",
        "DesiredValues": ["Active"]})
    assert found == [Finding(("PropertySelector",), "PropertySelector should be a JSONPath "
                             "starting with '$'; 'Status' is read as '$.Status'", "warning")]


def test_rates_are_warnings_in_the_document_and_errors_once_rendered() -> None:
    inputs = {"DocumentName": "d", "Targets": [{"Key": "k", "Values": ["v"]}],
              "MaxErrors": "${MaximumErrors}"}
    message = ("MaxErrors must be a count such as 10 or a percentage such as 10%, "
               "not '${MaximumErrors}'")
    assert check("aws:runCommand", inputs) == [Finding(("MaxErrors",), message, "warning")]
    assert check("aws:runCommand", inputs, static=False) == [Finding(("MaxErrors",), message)]


def test_run_command_accepts_every_send_command_field() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ssm")
    members = model.operation_model("SendCommand").input_shape.members
    assert set(ACTIONS["aws:runCommand"].schema.inputs) == set(members)


def test_loop_iterators_may_be_maps_for_string_map_items() -> None:
    inputs = {"Iterators": [{"a": "1"}, {"a": "2"}], "IteratorDataType": "StringMap",
              "Steps": [{"name": "s"}]}
    assert check("aws:loop", inputs, static=False) == []
