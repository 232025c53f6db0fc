"""Risk levels of real AWS operations, checked against botocore's own service models."""

from __future__ import annotations

from functools import cache

import botocore.session
import pytest
from botocore import xform_name

from engine.classify import EXCEPTIONS, HIGH_LEVEL, is_tag_removal, operation_risk, verb_risk
from engine.risk import Risk
from engine.sensitive import returns_secrets

R, M, D = Risk.READ_ONLY, Risk.MODIFY, Risk.DESTRUCTIVE

TABLE: list[tuple[str, str, Risk]] = [
    # ec2
    ("ec2", "DescribeInstances", R),
    ("ec2", "DescribeVolumes", R),
    ("ec2", "DescribeSecurityGroups", R),
    ("ec2", "DescribeImages", R),
    ("ec2", "DescribeSnapshots", R),
    ("ec2", "GetConsoleOutput", R),
    ("ec2", "GetPasswordData", M),
    ("ec2", "RunInstances", M),
    ("ec2", "StartInstances", M),
    ("ec2", "StopInstances", M),
    ("ec2", "RebootInstances", M),
    ("ec2", "TerminateInstances", D),
    ("ec2", "CreateSnapshot", M),
    ("ec2", "DeleteSnapshot", D),
    ("ec2", "CreateVolume", M),
    ("ec2", "AttachVolume", M),
    ("ec2", "DetachVolume", M),
    ("ec2", "DeleteVolume", D),
    ("ec2", "AllocateAddress", M),
    ("ec2", "AssociateAddress", M),
    ("ec2", "DisassociateAddress", M),
    ("ec2", "ReleaseAddress", D),
    ("ec2", "AuthorizeSecurityGroupIngress", M),
    ("ec2", "RevokeSecurityGroupIngress", D),
    ("ec2", "CreateTags", M),
    ("ec2", "DeleteTags", M),
    ("ec2", "DeregisterImage", D),
    ("ec2", "ModifyInstanceAttribute", M),
    ("ec2", "ResetInstanceAttribute", D),
    ("ec2", "CancelSpotFleetRequests", D),
    ("ec2", "CancelSpotInstanceRequests", M),
    ("ec2", "CancelCapacityReservation", D),
    ("ec2", "UnassignPrivateIpAddresses", D),
    ("ec2", "CreateReplaceRootVolumeTask", D),
    ("ec2", "DisableEbsEncryptionByDefault", M),
    ("ec2", "ReplaceRoute", M),
    ("ec2", "CopyImage", M),
    # s3
    ("s3", "ListBuckets", R),
    ("s3", "ListObjectsV2", R),
    ("s3", "GetObject", M),  # returns secrets: SSEKMSKeyId is marked sensitive
    ("s3", "HeadObject", M),  # returns secrets: SSEKMSKeyId
    ("s3", "HeadBucket", R),
    ("s3", "GetBucketPolicy", R),
    ("s3", "SelectObjectContent", R),
    ("s3", "PutObject", M),
    ("s3", "CopyObject", M),
    ("s3", "CreateBucket", M),
    ("s3", "CreateMultipartUpload", M),
    ("s3", "PutBucketPolicy", M),
    ("s3", "PutBucketVersioning", M),
    ("s3", "PutBucketTagging", M),
    ("s3", "RestoreObject", M),
    ("s3", "PutBucketLifecycleConfiguration", D),
    ("s3", "DeleteObject", D),
    ("s3", "DeleteObjects", D),
    ("s3", "DeleteBucket", D),
    ("s3", "DeleteBucketTagging", D),
    ("s3", "AbortMultipartUpload", D),
    # iam
    ("iam", "ListRoles", R),
    ("iam", "GetRole", R),
    ("iam", "ListUsers", R),
    ("iam", "GetPolicyVersion", R),
    ("iam", "SimulatePrincipalPolicy", R),
    ("iam", "GenerateCredentialReport", R),
    ("iam", "GetCredentialReport", R),
    ("iam", "CreateRole", M),
    ("iam", "PutRolePolicy", M),
    ("iam", "UpdateAssumeRolePolicy", M),
    ("iam", "AttachRolePolicy", M),
    ("iam", "DetachRolePolicy", M),
    ("iam", "CreateAccessKey", M),
    ("iam", "UntagRole", M),
    ("iam", "ChangePassword", M),
    ("iam", "DeleteRole", D),
    ("iam", "DeleteAccessKey", D),
    ("iam", "RemoveRoleFromInstanceProfile", D),
    ("iam", "ResetServiceSpecificCredential", D),
    # rds
    ("rds", "DescribeDBInstances", M),  # returns secrets: PendingModifiedValues.MasterUserPassword
    ("rds", "DescribeDBClusters", M),  # returns secrets (model)
    ("rds", "DownloadDBLogFilePortion", M),  # returns secrets: LogFileData
    ("rds", "CreateDBSnapshot", M),
    ("rds", "ModifyDBInstance", M),
    ("rds", "RebootDBInstance", M),
    ("rds", "StopDBInstance", M),
    ("rds", "SwitchoverBlueGreenDeployment", M),
    ("rds", "PromoteReadReplica", M),
    ("rds", "RestoreDBInstanceFromDBSnapshot", M),
    ("rds", "RemoveTagsFromResource", M),
    ("rds", "CancelExportTask", M),
    ("rds", "FailoverDBCluster", D),
    ("rds", "BacktrackDBCluster", D),
    ("rds", "ResetDBParameterGroup", D),
    ("rds", "DeleteDBInstance", D),
    # lambda
    ("lambda", "ListFunctions", M),  # returns secrets: Environment.Variables
    ("lambda", "GetFunction", M),  # returns secrets: Environment.Variables
    ("lambda", "GetFunctionConfiguration", M),  # returns secrets: Environment.Variables
    ("lambda", "Invoke", M),
    ("lambda", "InvokeWithResponseStream", M),
    ("lambda", "UpdateFunctionCode", M),
    ("lambda", "PublishVersion", M),
    ("lambda", "AddPermission", M),
    ("lambda", "PutFunctionConcurrency", M),
    ("lambda", "RemovePermission", D),
    ("lambda", "DeleteFunction", D),
    # dynamodb
    ("dynamodb", "GetItem", R),
    ("dynamodb", "Query", R),
    ("dynamodb", "Scan", R),
    ("dynamodb", "BatchGetItem", R),
    ("dynamodb", "TransactGetItems", R),
    ("dynamodb", "DescribeTable", R),
    ("dynamodb", "PutItem", M),
    ("dynamodb", "UpdateItem", M),
    ("dynamodb", "CreateBackup", M),
    ("dynamodb", "RestoreTableFromBackup", M),
    ("dynamodb", "BatchWriteItem", D),
    ("dynamodb", "TransactWriteItems", D),
    ("dynamodb", "ExecuteStatement", D),
    ("dynamodb", "UpdateTimeToLive", D),
    ("dynamodb", "DeleteItem", D),
    ("dynamodb", "DeleteTable", D),
    # sqs
    ("sqs", "ListQueues", R),
    ("sqs", "GetQueueUrl", R),
    ("sqs", "GetQueueAttributes", R),
    ("sqs", "ReceiveMessage", M),
    ("sqs", "SendMessage", M),
    ("sqs", "ChangeMessageVisibility", M),
    ("sqs", "SetQueueAttributes", M),
    ("sqs", "DeleteMessage", D),
    ("sqs", "PurgeQueue", D),
    ("sqs", "DeleteQueue", D),
    # sns
    ("sns", "ListTopics", R),
    ("sns", "GetTopicAttributes", R),
    ("sns", "CreateTopic", M),
    ("sns", "Publish", M),
    ("sns", "Subscribe", M),
    ("sns", "Unsubscribe", D),
    ("sns", "DeleteTopic", D),
    # kms
    ("kms", "ListKeys", R),
    ("kms", "DescribeKey", R),
    ("kms", "GetKeyPolicy", R),
    ("kms", "Verify", R),
    ("kms", "Encrypt", M),
    ("kms", "Decrypt", M),
    ("kms", "GenerateDataKey", M),
    ("kms", "Sign", M),
    ("kms", "CreateGrant", M),
    ("kms", "DisableKey", M),
    ("kms", "EnableKey", M),
    ("kms", "CancelKeyDeletion", M),
    ("kms", "ScheduleKeyDeletion", D),
    ("kms", "RevokeGrant", D),
    ("kms", "RetireGrant", D),
    # cloudformation
    ("cloudformation", "DescribeStacks", R),
    ("cloudformation", "ListStacks", R),
    ("cloudformation", "GetTemplate", R),
    ("cloudformation", "ValidateTemplate", R),
    ("cloudformation", "EstimateTemplateCost", R),
    ("cloudformation", "DetectStackDrift", R),
    ("cloudformation", "CreateChangeSet", M),
    ("cloudformation", "ExecuteChangeSet", M),
    ("cloudformation", "UpdateStack", M),
    ("cloudformation", "CancelUpdateStack", M),
    ("cloudformation", "ContinueUpdateRollback", M),
    ("cloudformation", "DeleteStack", D),
    ("cloudformation", "DeleteChangeSet", D),
    # ecs
    ("ecs", "ListClusters", R),
    ("ecs", "DescribeServices", R),
    ("ecs", "DescribeTasks", M),  # returns secrets: container override environment
    ("ecs", "RegisterTaskDefinition", M),
    ("ecs", "UpdateService", M),
    ("ecs", "RunTask", M),
    ("ecs", "StopTask", M),
    ("ecs", "ExecuteCommand", M),
    ("ecs", "DeregisterTaskDefinition", D),
    ("ecs", "DeleteService", D),
    # autoscaling
    ("autoscaling", "DescribeAutoScalingGroups", R),
    ("autoscaling", "SetDesiredCapacity", M),
    ("autoscaling", "UpdateAutoScalingGroup", M),
    ("autoscaling", "DetachInstances", M),
    ("autoscaling", "SuspendProcesses", M),
    ("autoscaling", "StartInstanceRefresh", M),
    ("autoscaling", "CancelInstanceRefresh", M),
    ("autoscaling", "DeleteTags", M),
    ("autoscaling", "TerminateInstanceInAutoScalingGroup", D),
    ("autoscaling", "DeleteAutoScalingGroup", D),
    # route53
    ("route53", "ListHostedZones", R),
    ("route53", "ListResourceRecordSets", R),
    ("route53", "GetChange", R),
    ("route53", "TestDNSAnswer", R),
    ("route53", "ChangeResourceRecordSets", M),
    ("route53", "CreateHostedZone", M),
    ("route53", "DeleteHostedZone", D),
    # secretsmanager
    ("secretsmanager", "ListSecrets", R),
    ("secretsmanager", "DescribeSecret", R),
    ("secretsmanager", "GetRandomPassword", M),  # returns secrets: RandomPassword
    ("secretsmanager", "GetSecretValue", M),
    ("secretsmanager", "BatchGetSecretValue", M),
    ("secretsmanager", "PutSecretValue", M),
    ("secretsmanager", "RotateSecret", M),
    ("secretsmanager", "RestoreSecret", M),
    ("secretsmanager", "DeleteSecret", D),
    # ssm
    ("ssm", "DescribeInstanceInformation", M),  # returns secrets: IPAddress
    ("ssm", "DescribeParameters", R),
    ("ssm", "GetCommandInvocation", R),
    ("ssm", "GetParameter", M),
    ("ssm", "GetParametersByPath", M),
    ("ssm", "SendCommand", M),
    ("ssm", "StartAutomationExecution", M),
    ("ssm", "PutParameter", M),
    ("ssm", "CancelCommand", M),
    ("ssm", "DeleteParameter", D),
    # sts
    ("sts", "GetCallerIdentity", R),
    ("sts", "GetAccessKeyInfo", R),
    ("sts", "DecodeAuthorizationMessage", R),
    ("sts", "GetSessionToken", M),
    ("sts", "GetFederationToken", M),
    ("sts", "AssumeRole", M),
    ("sts", "AssumeRoleWithWebIdentity", M),
    # ecr
    ("ecr", "DescribeRepositories", R),
    ("ecr", "BatchGetImage", R),
    ("ecr", "BatchCheckLayerAvailability", R),
    ("ecr", "GetAuthorizationToken", M),
    ("ecr", "PutLifecyclePolicy", D),
    ("ecr", "BatchDeleteImage", D),
    # logs
    ("logs", "DescribeLogGroups", R),
    ("logs", "FilterLogEvents", R),
    ("logs", "GetLogEvents", R),
    ("logs", "TestMetricFilter", R),
    ("logs", "CreateLogGroup", M),
    ("logs", "PutLogEvents", M),
    ("logs", "StartQuery", M),
    ("logs", "PutRetentionPolicy", D),
    ("logs", "DeleteLogGroup", D),
    # cloudwatch
    ("cloudwatch", "DescribeAlarms", R),
    ("cloudwatch", "GetMetricData", R),
    ("cloudwatch", "PutMetricAlarm", M),
    ("cloudwatch", "DisableAlarmActions", M),
    ("cloudwatch", "SetAlarmState", M),
    ("cloudwatch", "DeleteAlarms", D),
    # elbv2
    ("elbv2", "DescribeLoadBalancers", R),
    ("elbv2", "DescribeTargetHealth", R),
    ("elbv2", "RegisterTargets", M),
    ("elbv2", "ModifyListener", M),
    ("elbv2", "RemoveTags", M),
    ("elbv2", "DeregisterTargets", D),
    ("elbv2", "DeleteLoadBalancer", D),
    # verbs that mislead in other services
    ("kinesis", "DecreaseStreamRetentionPeriod", D),
    ("elasticache", "TestFailover", D),
    ("apigateway", "TestInvokeMethod", M),
    ("events", "TestEventPattern", R),
    ("cognito-idp", "AdminGetUser", M),  # returns secrets: Username, UserAttributes
    ("cognito-idp", "AdminDeleteUser", D),
    ("cognito-idp", "DescribeUserPoolClient", M),
    ("organizations", "CloseAccount", D),
    ("apigatewayv2", "ResetAuthorizersCache", M),
    ("elasticbeanstalk", "AbortEnvironmentUpdate", M),
    ("macie2", "DisableMacie", D),
]


@cache
def _operation_names(service: str) -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


def test_table_is_broad_enough_to_mean_something() -> None:
    assert len(TABLE) >= 150
    assert len({service for service, _, _ in TABLE}) >= 10
    assert len({(service, operation) for service, operation, _ in TABLE}) == len(TABLE), "duplicate rows"
    assert {risk for _, _, risk in TABLE} == set(Risk)


@pytest.mark.parametrize(("service", "operation", "expected"), TABLE, ids=[f"{s}:{o}" for s, o, _ in TABLE])
def test_real_operation_gets_its_expected_level(service: str, operation: str, expected: Risk) -> None:
    assert operation in _operation_names(service), f"{service}:{operation} is not in botocore's model"
    assert operation_risk(service, operation, xform_name(operation, "-")) is expected


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_names_a_real_operation(name: str) -> None:
    service, operation = name.split(":")
    assert operation in _operation_names(service)


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_overrides_what_the_verb_rules_say(name: str) -> None:
    # An entry that agrees with the verb rules is dead weight that hides which entries matter.
    assert verb_risk(name.split(":")[1]) is not EXCEPTIONS[name]


@pytest.mark.parametrize(
    ("cli_args", "expected"),
    [
        (["s3", "ls", "s3://bucket/prefix/"], R),
        (["s3", "presign", "s3://bucket/key", "--expires-in", "60"], R),
        (["s3", "cp", "./file", "s3://bucket/key"], M),
        (["s3", "cp", "s3://bucket/dir", "./dir", "--recursive"], M),
        (["s3", "mb", "s3://bucket"], M),
        (["s3", "website", "s3://bucket", "--index-document", "index.html"], M),
        (["s3", "mv", "s3://bucket/a", "s3://bucket/b"], D),
        (["s3", "rm", "s3://bucket/key"], D),
        (["s3", "rm", "s3://bucket/", "--recursive"], D),
        (["s3", "rb", "s3://bucket", "--force"], D),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_high_level_s3_command_gets_its_level(cli_args: list[str], expected: Risk) -> None:
    assert operation_risk("s3", None, cli_args[1], cli_args) is expected


@pytest.mark.parametrize(
    "cli_args",
    [
        ["s3", "sync", "./site", "s3://bucket", "--delete"],
        ["s3", "sync", "--delete", "./site", "s3://bucket"],
        ["s3", "sync", "./site", "s3://bucket", "--exclude", "*.tmp", "--delete", "--region", "eu-west-1"],
        ["s3", "sync", "./site", "s3://bucket", "--delete=true"],
        ["s3", "sync", "./site", "s3://bucket", "--del"],
        ["s3", "sync", "./site", "s3://bucket", "--dele"],
    ],
    ids=lambda value: " ".join(value[4:]) if len(value) > 4 else " ".join(value),
)
def test_sync_with_delete_in_any_spelling_is_destructive(cli_args: list[str]) -> None:
    assert operation_risk("s3", None, "sync", cli_args) is D


@pytest.mark.parametrize(
    "cli_args",
    [
        ["s3", "sync", "./site", "s3://bucket"],
        ["s3", "sync", "./site", "s3://bucket", "--dryrun", "--exact-timestamps"],
        ["s3", "sync", "./delete", "s3://bucket/delete"],
        None,
    ],
    ids=["plain", "other-flags", "delete-in-paths", "no-args"],
)
def test_sync_without_delete_is_modify(cli_args: list[str] | None) -> None:
    assert operation_risk("s3", None, "sync", cli_args) is M


def test_delete_flag_only_matters_for_sync() -> None:
    assert operation_risk("s3", None, "ls", ["s3", "ls", "s3://bucket", "--delete"]) is R


@pytest.mark.parametrize(
    ("service", "cli_operation"),
    [("ecr", "get-login-password"), ("eks", "get-token"), ("rds", "generate-db-auth-token")],
)
def test_cli_commands_that_print_credentials_are_not_read_only(service: str, cli_operation: str) -> None:
    assert operation_risk(service, None, cli_operation) is M


@pytest.mark.parametrize(
    ("service", "operation", "cli_operation"),
    [
        ("ec2", "FrobnicateInstances", "frobnicate-instances"),
        ("made-up", "ZapEverything", "zap-everything"),
        ("s3", "describeBuckets", "describe-buckets"),
        ("s3", "", "nothing"),
        ("s3", "Batch", "batch"),
        ("s3", None, "frobnicate"),
        ("ec2", None, "describe-instances"),
        ("cloudformation", None, "deploy"),
    ],
)
def test_unknown_verb_or_command_defaults_to_modify(service: str, operation: str | None, cli_operation: str) -> None:
    assert operation_risk(service, operation, cli_operation) is M


def test_unknown_operation_with_a_destructive_verb_is_still_destructive() -> None:
    assert operation_risk("made-up", "PurgeEverything", "purge-everything") is D


def test_service_name_case_does_not_change_the_level() -> None:
    assert operation_risk("EC2", "TerminateInstances", "terminate-instances") is D
    assert operation_risk("SecretsManager", "GetSecretValue", "get-secret-value") is M
    assert operation_risk("S3", None, "RM") is D


def test_high_level_table_names_only_known_services() -> None:
    known = set(botocore.session.get_session().get_available_services())
    assert {service for service, _ in HIGH_LEVEL} <= known


SWEPT_SERVICES = ("ec2", "s3", "iam")


def _sweep_deviations(service: str, secret_reads: Risk = M) -> tuple[list[str], int, int]:
    """Operations whose name says delete or read but whose level says otherwise, plus how many were checked."""
    deviations: list[str] = []
    deletes = reads = 0
    for operation in sorted(_operation_names(service)):
        risk = operation_risk(service, operation, xform_name(operation, "-"), secret_reads=secret_reads)
        if operation.startswith(("Delete", "Terminate")):
            deletes += 1
            if risk is not D:
                deviations.append(f"{service}:{operation}")
        if operation.startswith(("Describe", "List", "Get", "Head")):
            reads += 1
            if risk is not R:
                deviations.append(f"{service}:{operation}")
    return deviations, deletes, reads


def _explained(name: str) -> bool:
    service, operation = name.split(":")
    return name in EXCEPTIONS or is_tag_removal(operation) or returns_secrets(service, operation)


@pytest.mark.parametrize("service", SWEPT_SERVICES)
def test_whole_service_sweep_keeps_deletes_destructive_and_reads_read_only(service: str) -> None:
    deviations, deletes, reads = _sweep_deviations(service)
    unexplained = [name for name in deviations if not _explained(name)]
    assert not unexplained, "\n".join(f"{name} is {operation_risk(*name.split(':'), '')}" for name in unexplained)
    # Guards against a sweep that checks nothing because the model failed to load or the names changed.
    assert deletes >= 5
    assert reads >= 20


def test_sweep_deviations_are_exactly_the_reviewed_ones() -> None:
    # A new exception or rule that bends a whole-service Delete*/Describe* must be reviewed here too. With
    # secret reads at read-only, only the verb rules and the exceptions table are left to bend anything.
    deviations = {name for service in SWEPT_SERVICES for name in _sweep_deviations(service, secret_reads=R)[0]}
    assert deviations == {"ec2:DeleteTags"}


# -- operations that return secrets: the class comes from botocore's model ---------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
        "sts:GetSessionToken",
        "sts:GetFederationToken",
        "ec2:GetPasswordData",
        "lambda:GetFunctionConfiguration",
        "ecs:DescribeTaskDefinition",
        "iam:ListVirtualMFADevices",
        "codeartifact:GetAuthorizationToken",
        "lightsail:GetRelationalDatabaseMasterUserPassword",
    ],
)
def test_a_read_the_model_marks_as_returning_secrets_needs_approval_by_default(name: str) -> None:
    service, operation = name.split(":")
    assert returns_secrets(service, operation)
    assert name not in EXCEPTIONS
    assert verb_risk(operation) is R
    assert operation_risk(service, operation, xform_name(operation, "-")) is M


@pytest.mark.parametrize("level", list(Risk))
def test_secret_reads_sets_the_level_of_a_secret_returning_read(level: Risk) -> None:
    assert operation_risk("secretsmanager", "GetSecretValue", "get-secret-value", secret_reads=level) is level
    assert operation_risk("SSM", "GetParameter", "get-parameter", secret_reads=level) is level


def test_secret_reads_never_lowers_what_the_verb_says() -> None:
    # Both return secrets; the verb keeps them where they were.
    assert operation_risk("iam", "CreateAccessKey", "create-access-key", secret_reads=R) is M
    assert operation_risk("rds", "DeleteDBInstance", "delete-db-instance", secret_reads=R) is D
    assert operation_risk("rds", "DeleteDBInstance", "delete-db-instance", secret_reads=M) is D


def test_secret_reads_does_not_touch_operations_that_return_no_secrets() -> None:
    assert not returns_secrets("ec2", "DescribeInstances")
    assert operation_risk("ec2", "DescribeInstances", "describe-instances", secret_reads=D) is R
    assert operation_risk("s3", None, "ls", ["s3", "ls"], secret_reads=D) is R


def test_console_output_is_not_marked_by_the_model_and_stays_read_only() -> None:
    # What a boot script prints to the console is free text: engine.redact's rules, not the model, cover it.
    assert not returns_secrets("ec2", "GetConsoleOutput")
    assert operation_risk("ec2", "GetConsoleOutput", "get-console-output") is R


READ_VERB_CREDENTIAL_EXCEPTIONS = sorted(
    name
    for name, level in EXCEPTIONS.items()
    if level is M and verb_risk(name.split(":")[1]) is R and name != "cognito-identity:GetId"
)


def test_the_hand_kept_credential_reads_are_few() -> None:
    assert len(READ_VERB_CREDENTIAL_EXCEPTIONS) == 9


@pytest.mark.parametrize("name", READ_VERB_CREDENTIAL_EXCEPTIONS)
def test_a_hand_kept_credential_read_is_one_the_model_does_not_mark(name: str) -> None:
    # Once botocore marks it, the entry is dead weight: the model covers it and redacts its output.
    service, operation = name.split(":")
    assert not returns_secrets(service, operation)
    # Its output is not withheld by shape, so no policy setting lowers it.
    assert operation_risk(service, operation, xform_name(operation, "-"), secret_reads=R) is M
