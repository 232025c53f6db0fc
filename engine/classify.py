"""How risky an AWS operation is, from its botocore name (or the aws CLI's high-level S3 word).

The level comes from the operation's leading verb (``Describe`` in ``DescribeInstances``), with a small
table of exceptions where the verb misleads. Anything this module cannot place is ``modify``: an unknown
verb must never be waved through as harmless read-only. A policy can raise a level (``risk_overrides``)
but never lower one, so where a verb covers both harmless and dangerous operations the default is the
level the dangerous ones need, and the harmless ones are listed as exceptions.

Verb decisions
==============

Read-only: the operation reports state and changes nothing that the account runs on.

=================  ==============================================================================
Verb               Why
=================  ==============================================================================
Describe, List,    Reporting verbs across every service. Those that return secrets count at the
Get, Head          policy's ``secret_reads`` (see "Operations that return secrets" below).
Search, Lookup,    Queries over existing records; ``dynamodb:Scan``/``Query``, ``s3:SelectObject
Scan, Query,       Content`` and ``logs:FilterLogEvents`` read data without writing it.
Select, Filter,
View, Count
Check, Validate,   Dry evaluations: ``accessanalyzer:ValidatePolicy``, ``iam:SimulatePrincipal
Simulate,          Policy``, ``cloudformation:EstimateTemplateCost``. Nothing is created.
Estimate,
Preview, Is,
Contains,
Evaluate
Detect             ``cloudformation:DetectStackDrift`` only records a drift result; the comprehend,
                   rekognition and textract ``Detect*`` calls are pure analysis.
Discover           ``servicediscovery:DiscoverInstances`` and schema discovery only read.
Download           ``rds:DownloadDBLogFilePortion`` reads a log. ``lightsail:DownloadDefaultKeyPair``
                   hands out a private key and is an exception (modify).
=================  ==============================================================================

Destructive: data, a resource or someone's access is lost, and the request does not carry what would
be needed to put it back.

=================  ==============================================================================
Verb               Why
=================  ==============================================================================
Delete, Terminate  The resource or data is gone. Tag deletion is the exception (see below).
Remove             Removes a member, permission or attachment whose settings are not in the
                   request (``iam:RemoveRoleFromInstanceProfile``, ``lambda:RemovePermission``).
Deregister,        The registration (an AMI, a task definition, a target) ends; ``ec2:Deregister
Unregister         Image`` cannot be undone.
Destroy, Purge,    Data is thrown away (``sqs:PurgeQueue``, ``storagegateway:EvictFilesFailing
Evict, Dispose,    Upload``, ``codeartifact:DisposePackageVersions``, redacted chat messages,
Discard, Redact,   ``kendra:ClearQuerySuggestions``).
Clear
Revoke, Retire,    Someone loses access now, and a revoked certificate or retired grant cannot be
Deauthorize,       restored. Same for ``ds:UnshareDirectory``.
Unshare
Release,           An address, host or CIDR goes back to AWS's pool and another account may take
Deprovision,       it: ``ec2:ReleaseAddress`` cannot be reversed. ``Unassign`` gives a private IP
Unassign           back to the subnet the same way (unlike ``Disassociate``, which keeps it).
Abort              ``s3:AbortMultipartUpload`` deletes the parts already uploaded. The Elastic
                   Beanstalk update abort only rolls back and is an exception (modify).
Close, Leave       ``organizations:CloseAccount``/``LeaveOrganization`` end a membership;
                   ``CloseTunnel`` and ``CloseInstancePublicPorts`` cut live connections.
Failover           Drops every connection and in-flight transaction; a global-cluster failover
                   may lose writes not yet replicated. ``Switchover`` (planned, waits for
                   replication) stays modify.
Rebuild            ``workspaces:RebuildWorkspaces`` and ``elasticbeanstalk:RebuildEnvironment``
                   recreate the machines and lose what was on them.
Reset              The current value is replaced by a default and the request does not hold it:
                   ``rds:ResetDBParameterGroup`` drops every custom parameter, ``neptune-graph:
                   ResetGraph`` drops all data, password and credential resets lock the holder
                   out. Cache resets are exceptions (modify).
Unsubscribe,       The subscription or deployment is deleted; an e-mail subscription needs the
Unpeer, Undeploy   recipient to confirm again.
Expire             ``appstream:ExpireSession`` ends a user's session and its unsaved work.
=================  ==============================================================================

Modify: everything else, including every verb not named here. These are the verbs it was a close
call to keep at modify:

=================  ==============================================================================
Verb               Why
=================  ==============================================================================
Cancel             Halts in-flight work (a job, a query, an export) that can be resubmitted;
                   nothing stored is deleted. Cancellations that give up capacity, terminate
                   instances or revoke access are exceptions (destructive); ``kms:CancelKey
                   Deletion`` is the undo of a deletion and stays modify.
Disable,           Undone by the matching ``Enable``/``Activate``. Disabling Macie or Security
Deactivate         Hub deletes their findings and is an exception (destructive).
Detach,            Both sides survive and the matching ``Attach``/``Associate`` undoes it
Disassociate,      (``iam:DetachRolePolicy``, ``ec2:DisassociateAddress`` keeps the address).
Dissociate, Unlink
Untag, tag         Tags are metadata and the keys are in the request; ``Delete*Tags`` and
removal            ``Remove*Tags*`` (``ec2:DeleteTags``, ``elbv2:RemoveTags``) follow ``Untag``.
                   ``s3:DeleteBucketTagging`` wipes every tag without naming them, so it stays
                   destructive.
Stop, Reboot,      The resource keeps its data; a policy may raise ``ec2:StopInstances``.
Restart, Shutdown,
Suspend, Pause,
Withdraw
Restore            Creates a new resource from a backup. In-place restores that overwrite live
                   data are exceptions (destructive), as is ``rds:BacktrackDBCluster``.
Put, Update,       Writes, overwrites included (``s3:PutObject``). Rules that make AWS delete
Replace, Change    data on a schedule (S3/ECR lifecycle, log retention, DynamoDB TTL, shorter
                   Kinesis retention) are exceptions (destructive).
Test, Verify       Many ``Test*`` calls run the live integration (``apigateway:TestInvokeMethod``
                   calls the backend, ``stepfunctions:TestState`` runs the task) and many
                   ``Verify*`` calls enrol something (``ses:VerifyEmailIdentity``, ``cognito-idp:
                   VerifySoftwareToken``). The pure evaluators are exceptions (read-only);
                   ``elasticache:TestFailover`` really fails over (destructive).
Receive, Poll      ``sqs:ReceiveMessage`` hides the messages from other consumers and counts the
                   receive towards the dead-letter limit.
Export, Generate   Start jobs that write elsewhere or hand out key material (``acm:Export
                   Certificate``, ``kms:GenerateDataKey``). IAM's report generators only compute
                   a report and are exceptions (read-only).
Invoke, Execute,   Side effects are whatever the function, document or change set does
Run, Send, Start   (``lambda:Invoke``, ``ssm:SendCommand``, ``cloudformation:ExecuteChangeSet``):
                   at least modify; a policy should raise the ones it fears. Statement APIs
                   whose grammar includes DELETE/DROP are exceptions (destructive), like
                   ``dynamodb:BatchWriteItem`` whose request may hold delete requests.
Assume, Decrypt,   Hand out credentials or plaintext; never auto-run as harmless.
Sign
=================  ==============================================================================

Operations that return secrets
==============================

An operation whose output can hold a member botocore's model marks ``sensitive`` returns secrets
(``engine.sensitive.returns_secrets``): ``secretsmanager:GetSecretValue``, ``ssm:GetParameter``,
``sts:GetSessionToken``, ``ec2:GetPasswordData``, ``lambda:GetFunctionConfiguration`` (its environment),
``ecs:DescribeTaskDefinition`` (container environment and repository credentials), and so on: 1,784
operations of 193 services in botocore 1.43, 1,009 of which the verb rules alone would call read-only. That
is data, not a list kept here: a new operation, or a member newly marked, counts as soon as botocore ships
it. Its level is at least the policy's ``secret_reads`` (``modify`` by default, so it needs approval like a
change); the verb can still make it higher (``iam:CreateAccessKey`` stays modify, a deletion that returns a
secret stays destructive). The model marks personal data as well as secrets (names, e-mail and IP
addresses, ``s3:GetObject``'s ``SSEKMSKeyId``), and those operations count too: their output is withheld
the same way.

The model does not mark everything that hands out a credential. Those read verbs stay exceptions at modify
whatever ``secret_reads`` says, since their output is not withheld by shape: see ``EXCEPTIONS``, each with
the member the model leaves unmarked. Reads that hold no credential by design but may show one somebody
put there stay read-only, as the model has them: ``ec2:GetConsoleOutput`` (a boot script may print a
secret to the console) is not marked, and its output is left to the free-text rules of ``engine.redact``.

``Batch``, ``Admin`` and ``Transact`` are prefixes, not verbs: ``BatchGetItem`` is judged as ``Get``,
``AdminDeleteUser`` as ``Delete``.

High-level S3 commands: ``ls`` and ``presign`` read-only; ``cp``, ``mb``, ``sync`` and ``website``
modify (``cp`` and ``sync`` may overwrite, like ``PutObject``); ``mv`` (deletes the source), ``rm`` and
``rb`` destructive, and ``sync`` with ``--delete`` (or any abbreviation the CLI's parser accepts, such as
``--del``) destructive. ``ecr get-login-password``, ``eks get-token`` and ``rds generate-db-auth-token`` print
a credential and are modify. Any other high-level command is modify.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

from engine.risk import Risk
from engine.sensitive import returns_secrets

READ_ONLY_VERBS: frozenset[str] = frozenset(
    {
        "Describe",
        "List",
        "Get",
        "Head",
        "Search",
        "Lookup",
        "Scan",
        "Query",
        "Select",
        "Filter",
        "View",
        "Count",
        "Check",
        "Validate",
        "Simulate",
        "Estimate",
        "Preview",
        "Is",
        "Contains",
        "Evaluate",
        "Detect",
        "Discover",
        "Download",
    }
)

DESTRUCTIVE_VERBS: frozenset[str] = frozenset(
    {
        "Delete",
        "Terminate",
        "Remove",
        "Deregister",
        "Unregister",
        "Destroy",
        "Purge",
        "Evict",
        "Dispose",
        "Discard",
        "Redact",
        "Clear",
        "Revoke",
        "Retire",
        "Deauthorize",
        "Unshare",
        "Release",
        "Deprovision",
        "Unassign",
        "Abort",
        "Close",
        "Leave",
        "Failover",
        "Rebuild",
        "Reset",
        "Unsubscribe",
        "Unpeer",
        "Undeploy",
        "Expire",
    }
)

# Words that qualify the verb after them rather than being the verb.
_PREFIXES = ("Batch", "Admin", "Transact")

# Removing named tags is judged like ``Untag`` (see the module docstring).
_TAG_REMOVAL_VERBS = frozenset({"Delete", "Remove"})

_R, _M, _D = Risk.READ_ONLY, Risk.MODIFY, Risk.DESTRUCTIVE

# ``service:Operation`` -> level, for operations whose verb misleads. Checked before the verb rules.
EXCEPTIONS: Mapping[str, Risk] = MappingProxyType(
    {
        # Read verbs that hand out a credential or secret the model does not mark sensitive, so neither
        # ``returns_secrets`` nor redaction by shape knows about it. Everything the model marks (sts session
        # tokens, GetSecretValue, ssm parameters, ec2:GetPasswordData, ...) is handled from the model.
        "ecr:GetAuthorizationToken": _M,  # authorizationData[].authorizationToken
        "ecr-public:GetAuthorizationToken": _M,  # authorizationData.authorizationToken
        "lightsail:GetInstanceAccessDetails": _M,  # accessDetails.password, .privateKey
        "lightsail:DownloadDefaultKeyPair": _M,  # privateKeyBase64
        "apigateway:GetApiKey": _M,  # value, with includeValue
        "apigateway:GetApiKeys": _M,  # items[].value, with includeValues
        "appsync:ListApiKeys": _M,  # apiKeys[].id: an AppSync key's id is the key
        "glue:GetConnection": _M,  # ConnectionProperties.PASSWORD unless HidePassword is set
        "glue:GetConnections": _M,
        # Not a secret: a read verb that creates the identity when it does not exist yet.
        "cognito-identity:GetId": _M,
        # Writes whose request may delete data.
        "dynamodb:BatchWriteItem": _D,
        "dynamodb:TransactWriteItems": _D,
        "dynamodb:ExecuteStatement": _D,
        "dynamodb:BatchExecuteStatement": _D,
        "dynamodb:ExecuteTransaction": _D,
        "rds-data:ExecuteStatement": _D,
        "rds-data:BatchExecuteStatement": _D,
        "rds-data:ExecuteSql": _D,
        "redshift-data:ExecuteStatement": _D,
        "redshift-data:BatchExecuteStatement": _D,
        "neptunedata:ExecuteGremlinQuery": _D,
        "neptunedata:ExecuteGremlinProfileQuery": _D,  # profiling runs the query
        "neptunedata:ExecuteOpenCypherQuery": _D,
        "neptunedata:ExecuteFastReset": _D,
        "neptune-graph:ExecuteQuery": _D,
        "ec2:CreateReplaceRootVolumeTask": _D,  # the old root volume's data is replaced
        # Rules that make AWS delete data later.
        "s3:PutBucketLifecycleConfiguration": _D,
        "s3:PutBucketLifecycle": _D,
        "s3control:PutBucketLifecycleConfiguration": _D,
        "ecr:PutLifecyclePolicy": _D,
        "mediastore:PutLifecyclePolicy": _D,
        "logs:PutRetentionPolicy": _D,
        "kinesis:DecreaseStreamRetentionPeriod": _D,
        "dynamodb:UpdateTimeToLive": _D,
        # Verbs that do not say "delete" but do.
        "kms:ScheduleKeyDeletion": _D,
        "rds:BacktrackDBCluster": _D,
        "fsx:RestoreVolumeFromSnapshot": _D,
        "ds:RestoreFromSnapshot": _D,
        "workspaces:RestoreWorkspace": _D,
        "redshift-serverless:RestoreFromSnapshot": _D,
        "redshift-serverless:RestoreFromRecoveryPoint": _D,
        "macie2:DisableMacie": _D,
        "securityhub:DisableSecurityHub": _D,
        "securityhub:DisableSecurityHubV2": _D,
        "elasticache:TestFailover": _D,
        "ec2:CancelSpotFleetRequests": _D,  # TerminateInstances ends the fleet's instances
        "ec2:CancelCapacityReservation": _D,
        "ec2:CancelCapacityReservationFleets": _D,
        "ec2:CancelImageLaunchPermission": _D,
        "marketplace-agreement:CancelAgreement": _D,
        # Destructive-sounding verbs that only undo something or drop a cache.
        "elasticbeanstalk:AbortEnvironmentUpdate": _M,
        "apigatewayv2:ResetAuthorizersCache": _M,
        "appflow:ResetConnectorMetadataCache": _M,
        "lightsail:ResetDistributionCache": _M,
        # Pure evaluations behind a verb that is modify by default.
        "sts:DecodeAuthorizationMessage": _R,
        "kms:Verify": _R,
        "kms:VerifyMac": _R,
        "cloudfront:VerifyDnsConfiguration": _R,
        "cloudfront:TestFunction": _R,
        "events:TestEventPattern": _R,
        "logs:TestMetricFilter": _R,
        "logs:TestTransformer": _R,
        "route53:TestDNSAnswer": _R,
        "iot:TestAuthorization": _R,
        "ses:TestRenderTemplate": _R,
        "sesv2:TestRenderEmailTemplate": _R,
        "iam:GenerateCredentialReport": _R,
        "iam:GenerateServiceLastAccessedDetails": _R,
        "iam:GenerateOrganizationsAccessReport": _R,
    }
)

# (service, high-level CLI word) -> level, for commands the aws CLI builds itself.
HIGH_LEVEL: Mapping[tuple[str, str], Risk] = MappingProxyType(
    {
        ("s3", "ls"): _R,
        ("s3", "presign"): _R,
        ("s3", "cp"): _M,
        ("s3", "mb"): _M,
        ("s3", "sync"): _M,
        ("s3", "website"): _M,
        ("s3", "mv"): _D,
        ("s3", "rm"): _D,
        ("s3", "rb"): _D,
        # Customizations that print a credential.
        ("ecr", "get-login-password"): _M,
        ("ecr-public", "get-login-password"): _M,
        ("eks", "get-token"): _M,
        ("rds", "generate-db-auth-token"): _M,
    }
)

_VERB = re.compile(r"[A-Z][a-z0-9]*")
_DELETE_FLAG = "--delete"
# The CLI's argument parser accepts unambiguous abbreviations (``--del``); ``--de`` is the shortest
# prefix that could be meant, and counting it too only errs towards caution.
_MIN_DELETE_ABBREVIATION = len("--de")


def operation_risk(
    service: str,
    operation: str | None,
    cli_operation: str,
    cli_args: list[str] | None = None,
    *,
    secret_reads: Risk = Risk.MODIFY,
) -> Risk:
    """The risk level of one call: ``operation`` is botocore's name, or None for a high-level CLI command.

    ``secret_reads`` is the policy's level for an operation that returns secrets (``returns_secrets``); the
    default is the policy's default.
    """
    if operation is None:
        key = (service.lower(), cli_operation.lower())
        if key == ("s3", "sync") and has_delete_flag(cli_args or ()):
            return Risk.DESTRUCTIVE
        return _high_level_risk(*key)
    risk = _sdk_risk(service.lower(), operation)
    if returns_secrets(service.lower(), operation):
        return max(risk, secret_reads)
    return risk


def has_delete_flag(args: Sequence[str]) -> bool:
    """Whether ``args`` hold ``--delete`` in any spelling the aws CLI would take for it."""
    for arg in args:
        name = arg.split("=", 1)[0]
        if name.startswith(_DELETE_FLAG):
            return True
        if len(name) >= _MIN_DELETE_ABBREVIATION and _DELETE_FLAG.startswith(name):
            return True
    return False


def verb_of(operation: str) -> str:
    """The verb an operation is judged by: ``DescribeInstances`` -> ``Describe``, ``BatchGetItem`` -> ``Get``."""
    return _split(operation)[0]


def is_tag_removal(operation: str) -> bool:
    """``DeleteTags``, ``RemoveTagsFromResource`` and the like: judged as ``Untag``, not as a deletion."""
    verb, rest = _split(operation)
    return verb in _TAG_REMOVAL_VERBS and re.match(r"Tags(?![a-z])", rest) is not None


@lru_cache(maxsize=512)
def _high_level_risk(service: str, cli_operation: str) -> Risk:
    return HIGH_LEVEL.get((service, cli_operation), Risk.MODIFY)


@lru_cache(maxsize=8192)
def _sdk_risk(service: str, operation: str) -> Risk:
    explicit = EXCEPTIONS.get(f"{service}:{operation}")
    if explicit is not None:
        return explicit
    return verb_risk(operation)


def verb_risk(operation: str) -> Risk:
    """The level the verb rules alone give ``operation``, before the exceptions table."""
    verb = verb_of(operation)
    if verb == "Untag" or is_tag_removal(operation):
        return Risk.MODIFY
    if verb in DESTRUCTIVE_VERBS:
        return Risk.DESTRUCTIVE
    if verb in READ_ONLY_VERBS:
        return Risk.READ_ONLY
    return Risk.MODIFY


@lru_cache(maxsize=8192)
def _split(operation: str) -> tuple[str, str]:
    """(verb, the rest), after stepping over qualifying prefixes; ("", name) when there is no verb."""
    rest = operation
    while True:
        match = _VERB.match(rest)
        if match is None:
            return "", operation
        word = match.group(0)
        after = rest[match.end() :]
        if word in _PREFIXES and _VERB.match(after):
            rest = after
            continue
        return word, after
