"""Redaction from botocore's ``sensitive`` trait: found by shape, wherever a sensitive member sits."""

from __future__ import annotations

from engine import awscli_model
from engine.sensitive import (
    REDACTED,
    redact_input,
    redact_output,
    returns_secrets,
    sensitive_input_values,
    takes_secrets,
)


def test_secret_returning_operations_come_from_the_models_not_from_names() -> None:
    assert returns_secrets("ssm", "GetParameter")
    assert returns_secrets("secretsmanager", "GetSecretValue")
    assert returns_secrets("lambda", "GetFunctionConfiguration")
    assert returns_secrets("sts", "AssumeRole")
    assert not returns_secrets("ec2", "DescribeInstances")
    assert not returns_secrets("sts", "GetCallerIdentity")
    assert not returns_secrets("s3", "ListBuckets")
    # Names alone would say otherwise: this "Secret" operation returns only metadata.
    assert not returns_secrets("secretsmanager", "DescribeSecret")


def test_hundreds_of_operations_return_or_take_secrets() -> None:
    services = awscli_model.botocore_services()
    counts = [0, 0]
    for service in ("ssm", "secretsmanager", "iam", "rds", "lambda", "sts", "cognito-idp", "redshift"):
        assert service in services
        model = awscli_model.service_model(service)
        counts[0] += sum(returns_secrets(service, name) for name in model.operation_names)
        counts[1] += sum(takes_secrets(service, name) for name in model.operation_names)
    assert counts[0] > 40 and counts[1] > 60, counts


def test_sensitive_output_members_are_replaced_wherever_they_sit() -> None:
    response = {
        "Parameters": [
            {"Name": "/db/password", "Value": "hunter2-prod", "Type": "SecureString", "Version": 3},
            {"Name": "/db/host", "Value": "db.internal", "Type": "String", "Version": 1},
        ],
        "InvalidParameters": ["/nope"],
    }
    redacted = redact_output("ssm", "GetParameters", response)
    assert [p["Value"] for p in redacted["Parameters"]] == [REDACTED, REDACTED]
    assert [p["Name"] for p in redacted["Parameters"]] == ["/db/password", "/db/host"]
    assert redacted["Parameters"][0]["Version"] == 3 and redacted["InvalidParameters"] == ["/nope"]
    assert response["Parameters"][0]["Value"] == "hunter2-prod"  # the input is not changed


def test_a_sensitive_structure_is_withheld_whole_and_unknown_keys_pass() -> None:
    redacted = redact_output(
        "lambda",
        "GetFunctionConfiguration",
        {"FunctionName": "f", "Environment": {"Variables": {"DB_PASSWORD": "x"}}, "ResponseMetadata": {"a": 1}},
    )
    assert redacted == {"FunctionName": "f", "Environment": {"Variables": REDACTED}, "ResponseMetadata": {"a": 1}}


def test_a_value_that_does_not_have_the_shapes_form_is_withheld() -> None:
    assert redact_output("ssm", "GetParameter", {"Parameter": "a projection"}) == {"Parameter": REDACTED}


def test_sensitive_inputs_are_replaced_and_listed() -> None:
    params = {"UserName": "alice", "Password": "Correct-Horse-9", "PasswordResetRequired": True}
    assert redact_input("iam", "CreateLoginProfile", params) == {**params, "Password": REDACTED}
    assert sensitive_input_values("iam", "CreateLoginProfile", params) == ["Correct-Horse-9"]
    assert sensitive_input_values("s3", "ListBuckets", {}) == []


def test_operations_without_a_model_are_left_alone() -> None:
    assert redact_output("s3", None, {"a": 1}) == {"a": 1}
    assert redact_output("nosuchservice", "X", {"a": 1}) == {"a": 1}
    assert not returns_secrets("s3", "NoSuchOperation")
