"""Redaction: secrets in the shapes AWS output carries them are gone; identifiers and the text around them stay."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest

from engine.redact import (
    REDACTED,
    RedactingSink,
    StreamRedactor,
    clear_registered_secrets,
    is_sensitive_key,
    prints_bare_secret,
    redact_data,
    redact_plan_result,
    redact_result,
    redact_text,
    register_environment_secrets,
    register_secret,
)
from engine.results import Attempt, CommandOutcome, CommandResult, PlanResult, RollbackOutcome, RunState
from engine.sinks import CommandStateChanged, ListSink, OutputLine, OutputSink, PlanStateChanged, RetryScheduled


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    clear_registered_secrets()
    yield
    clear_registered_secrets()


# Test credentials. Token-shaped ones are assembled from parts so secret scanners do not flag this file.
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TEMP_KEY_ID = "ASIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQDx3Kp9" + "Zm9vYmFyYmF6cXV4" * 6 + "=="
LEGACY_SESSION_TOKEN = "FwoGZXIvYXdzEJr//////////wEaDOl2" + "c2Vzc2lvbnRva2Vu" * 5
SLACK_BOT = "xo" + "xb-" + "2418301982-5538209183421-Hq7rTzW1xYbN3mKcVdLpF0sA"
SLACK_USER = "xo" + "xp-" + "2418301982-5538209183421-5538209183422-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SLACK_APP = "xa" + "pp-1-" + "A05RG0DP1U7-5987123456789-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SLACK_ADMIN = "xo" + "xa-2-" + "2418301982-5538209183421-Kd83nQpLs02Xz"
SLACK_WEBHOOK_PATH = "T0ABCDEFG/B0HIJKLMN/" + "q1W2e3R4t5Y6u7I8o9P0aSdF"
OPENAI_KEY = "s" + "k-" + "Ab3dEf9hIjK1mNoPqR5tUvWxYz0123456789AbCdEfGhIj"
OPENAI_PROJECT_KEY = "s" + "k-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa_-AbCd1234"
ANTHROPIC_KEY = "s" + "k-ant-api03-" + "Qw3rTy7uI0oP1aS2dF4gH5jK6lZ8xC9vB0nM-AbCdEf12"
GITHUB_PAT_CLASSIC = "gh" + "p_" + "R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12"
GITHUB_OAUTH = "gh" + "o_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE_GRAINED = "github" + "_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"
GOOGLE_KEY = "AI" + "za" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
STRIPE_KEY = "s" + "k_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
ECR_PASSWORD = base64.b64encode(
    json.dumps({"payload": "Zm9v" * 20, "datakey": "YmFy" * 20, "version": "2", "type": "DATA_KEY"}).encode()
).decode()
ECR_AUTHORIZATION_TOKEN = base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode()
RSA_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
]
PEM_RSA = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(RSA_BODY) + "\n-----END RSA PRIVATE KEY-----"
SIGNATURE = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"


def pem(kind: str, body: str = "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZO4ik3KZ3WWoAoGCCqGSM49") -> str:
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n{body}\n{body[::-1]}\n-----END {label}-----"


# (text, what must be gone, what must stay)
SECRETS: list = [
    pytest.param(f"key {KEY_ID} was used by bob", [KEY_ID], ["key ", " was used by bob"], id="access-key-id"),
    pytest.param(
        f'"Description": "rotated:\\n{KEY_ID} and s3://b/k?id=%2F{TEMP_KEY_ID}"',
        [KEY_ID, TEMP_KEY_ID],
        ['"Description": "rotated:\\n', "s3://b/k?id=%2F"],
        id="key-id-after-escape",
    ),
    pytest.param(f'"AccessKeyId": "{TEMP_KEY_ID}",', [TEMP_KEY_ID], ['"AccessKeyId": "'], id="temporary-key-id"),
    pytest.param(
        f"aws_secret_access_key = {SECRET_KEY}", [SECRET_KEY], ["aws_secret_access_key = "], id="credentials-file"
    ),
    pytest.param(
        f"export AWS_SECRET_ACCESS_KEY={SECRET_KEY}",
        [SECRET_KEY],
        ["export AWS_SECRET_ACCESS_KEY="],
        id="export-secret",
    ),
    pytest.param(
        f'export AWS_SESSION_TOKEN="{SESSION_TOKEN}"',
        [SESSION_TOKEN],
        ['export AWS_SESSION_TOKEN="'],
        id="export-token",
    ),
    pytest.param(
        f'        "SecretAccessKey": "{SECRET_KEY}",',
        [SECRET_KEY],
        ['"SecretAccessKey": "', '",'],
        id="json-secret-key",
    ),
    pytest.param(
        f'        "SessionToken": "{SESSION_TOKEN}",', [SESSION_TOKEN], ['"SessionToken": "'], id="json-session-token"
    ),
    pytest.param(
        f"token in log {SESSION_TOKEN} expired", [SESSION_TOKEN], ["token in log ", " expired"], id="bare-session-token"
    ),
    pytest.param(
        f"creds {LEGACY_SESSION_TOKEN} end", [LEGACY_SESSION_TOKEN[:30]], ["creds ", " end"], id="legacy-session-token"
    ),
    pytest.param(
        '    "SecretString": "{\\"username\\":\\"admin\\",\\"password\\":\\"hunter2-Prod!\\"}",',
        ["hunter2-Prod!", "admin"],
        ['"SecretString": "'],
        id="json-secret-string",
    ),
    pytest.param('    "Password": "Tr0ub4dor&3",', ["Tr0ub4dor&3"], ['"Password": "'], id="json-password"),
    pytest.param("user=bob password=hunter2 host=db", ["hunter2"], ["user=bob", "host=db"], id="password-assignment"),
    pytest.param(
        '"MasterUserPassword": "Sup3rS3cret"', ["Sup3rS3cret"], ['"MasterUserPassword"'], id="json-master-password"
    ),
    pytest.param(
        "aws rds create-db-instance --master-user-password 'Sup3r S3cret' --db-instance-identifier prod-db",
        ["Sup3r S3cret"],
        ["--master-user-password '", "--db-instance-identifier prod-db"],
        id="cli-flag-password",
    ),
    pytest.param(
        '    "KeyMaterial": "' + PEM_RSA.replace("\n", "\\n") + '",',
        RSA_BODY,
        ['"KeyMaterial": "'],
        id="json-key-material",
    ),
    pytest.param(f"key:\n{PEM_RSA}\nKeyName: deploy", RSA_BODY, ["key:", "KeyName: deploy"], id="pem-rsa"),
    pytest.param(
        pem("OPENSSH", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
        ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"],
        [],
        id="pem-openssh",
    ),
    pytest.param(pem("EC"), ["MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZO4ik3KZ3WWoAoGCCqGSM49"], [], id="pem-ec"),
    pytest.param(
        pem("ENCRYPTED"), ["MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZO4ik3KZ3WWoAoGCCqGSM49"], [], id="pem-encrypted"
    ),
    pytest.param(
        "before\n" + pem("") + "\nafter",
        ["MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZO4ik3KZ3WWoAoGCCqGSM49"],
        ["before\n", "\nafter"],
        id="pem-pkcs8",
    ),
    pytest.param(f"SLACK_BOT_TOKEN is {SLACK_BOT} here", [SLACK_BOT], ["SLACK_BOT_TOKEN is ", " here"], id="slack-bot"),
    pytest.param(f"user token {SLACK_USER}.", [SLACK_USER], ["user token ", "."], id="slack-user"),
    pytest.param(f"app token {SLACK_APP}", [SLACK_APP], ["app token "], id="slack-app"),
    pytest.param(f"admin {SLACK_ADMIN}", [SLACK_ADMIN], ["admin "], id="slack-admin"),
    pytest.param(
        f"posting to https://hooks.slack.com/services/{SLACK_WEBHOOK_PATH} now",
        [SLACK_WEBHOOK_PATH],
        ["https://hooks.slack.com/services/", " now"],
        id="slack-webhook",
    ),
    pytest.param(f"llm key {OPENAI_KEY} loaded", [OPENAI_KEY], ["llm key ", " loaded"], id="openai-key"),
    pytest.param(f"key={OPENAI_PROJECT_KEY}", [OPENAI_PROJECT_KEY], [], id="openai-project-key"),
    pytest.param(f"using {ANTHROPIC_KEY}", [ANTHROPIC_KEY], ["using "], id="anthropic-key"),
    pytest.param(
        f"git clone with {GITHUB_PAT_CLASSIC}", [GITHUB_PAT_CLASSIC], ["git clone with "], id="github-classic"
    ),
    pytest.param(f"oauth: {GITHUB_OAUTH}", [GITHUB_OAUTH], [], id="github-oauth"),
    pytest.param(f"{GITHUB_FINE_GRAINED} end", [GITHUB_FINE_GRAINED], [" end"], id="github-fine-grained"),
    pytest.param(f"id_token {JWT} issued", [JWT], ["id_token ", " issued"], id="jwt"),
    pytest.param(f"Authorization: Bearer {JWT}", [JWT], ["Authorization: Bearer "], id="bearer-header"),
    pytest.param(
        "curl -H 'Authorization: Basic YWRtaW46aHVudGVyMg==' https://api.example.com",
        ["YWRtaW46aHVudGVyMg=="],
        ["Authorization: Basic ", "https://api.example.com"],
        id="basic-header",
    ),
    pytest.param(
        "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/app",
        ["s3cr3t-pw"],
        ["app:", "@db.internal:5432/app"],
        id="url-credentials",
    ),
    pytest.param(
        "https://reports.s3.amazonaws.com/q1.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={KEY_ID}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}",
        [KEY_ID, SIGNATURE, "aws4_request"],
        ["https://reports.s3.amazonaws.com/q1.csv?", "X-Amz-Expires=3600", "X-Amz-Signature="],
        id="presigned-url",
    ),
    pytest.param(
        f"https://b.s3.amazonaws.com/k?X-Amz-Security-Token={SESSION_TOKEN.replace('=', '%3D')}&X-Amz-Expires=60",
        [SESSION_TOKEN[:40]],
        ["X-Amz-Security-Token=", "&X-Amz-Expires=60"],
        id="presigned-security-token",
    ),
    pytest.param(
        f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={KEY_ID}&Signature=dGhpc2lzYXNpZ25hdHVyZQ%3D%3D&Expires=1700000000",
        [KEY_ID, "dGhpc2lzYXNpZ25hdHVyZQ"],
        ["&Expires=1700000000"],
        id="presigned-sigv2",
    ),
    pytest.param(
        f'            "authorizationToken": "{ECR_AUTHORIZATION_TOKEN}",',
        [ECR_AUTHORIZATION_TOKEN],
        ['"authorizationToken": "'],
        id="ecr-authorization-token",
    ),
    pytest.param(ECR_PASSWORD, [ECR_PASSWORD[:40]], [], id="ecr-login-password"),
    pytest.param(
        f"docker login --username AWS -p {ECR_PASSWORD} 123456789012.dkr.ecr.us-east-1.amazonaws.com",
        [ECR_PASSWORD[:40]],
        ["docker login --username AWS -p ", " 123456789012.dkr.ecr.us-east-1.amazonaws.com"],
        id="docker-login",
    ),
    pytest.param(
        "prod.abc123.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_iam"
        f"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={TEMP_KEY_ID}%2F20240101%2Fus-east-1%2Frds-db%2Faws4_request"
        f"&X-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Signature={SIGNATURE}",
        [TEMP_KEY_ID, SESSION_TOKEN[:40], SIGNATURE],
        ["prod.abc123.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_iam"],
        id="rds-auth-token",
    ),
    pytest.param(
        '"ClientSecret": "1a2b3c4d5e6f7g8h9i0j"', ["1a2b3c4d5e6f7g8h9i0j"], ['"ClientSecret"'], id="client-secret"
    ),
    pytest.param(
        '{"api_token": "tok-8f7a6b5c4d3e", "team": "ops"}',
        ["tok-8f7a6b5c4d3e"],
        ['"team": "ops"'],
        id="json-generic-token",
    ),
    pytest.param(
        '    "Plaintext": "aGVsbG8gd29ybGQgdGhpcyBpcyBhIGRhdGEga2V5IQ==",',
        ["aGVsbG8gd29ybGQgdGhpcyBpcyBhIGRhdGEga2V5IQ=="],
        ['"Plaintext": "'],
        id="kms-plaintext",
    ),
    pytest.param(
        f"<Credentials><AccessKeyId>{TEMP_KEY_ID}</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey>"
        "<Expiration>2024-01-01T00:00:00Z</Expiration></Credentials>",
        [TEMP_KEY_ID, SECRET_KEY],
        ["<SecretAccessKey>", "<Expiration>2024-01-01T00:00:00Z</Expiration>"],
        id="xml-credentials",
    ),
    pytest.param(f"  SessionToken: {SESSION_TOKEN}", [SESSION_TOKEN], ["  SessionToken: "], id="yaml-session-token"),
    pytest.param(
        f"CREDENTIALS\t{TEMP_KEY_ID}\t2024-01-01T00:00:00+00:00\t{SECRET_KEY}\t{SESSION_TOKEN}",
        [TEMP_KEY_ID, SECRET_KEY, SESSION_TOKEN],
        ["CREDENTIALS\t", "\t2024-01-01T00:00:00+00:00\t"],
        id="cli-text-credentials",
    ),
    pytest.param(
        f"{{'Credentials': {{'AccessKeyId': '{TEMP_KEY_ID}', 'SecretAccessKey': '{SECRET_KEY}'}}}}",
        [TEMP_KEY_ID, SECRET_KEY],
        ["{'Credentials': {'AccessKeyId': '"],
        id="python-repr",
    ),
    pytest.param(
        '"TemplateBody": "{\\"DbPassword\\": \\"pa55-w0rd\\", \\"Env\\": \\"prod\\"}"',
        ["pa55-w0rd"],
        ['\\"Env\\": \\"prod\\"'],
        id="escaped-json",
    ),
    pytest.param(
        "PARAMETER\tarn:aws:ssm:us-east-1:123456789012:parameter/db\ttext\t2024-01-01\t/db\tSecureString\tpg-pass-77\t3",
        ["pg-pass-77"],
        ["arn:aws:ssm:us-east-1:123456789012:parameter/db", "SecureString\t", "\t3"],
        id="ssm-text-securestring",
    ),
    pytest.param(f"maps key {GOOGLE_KEY}", [GOOGLE_KEY], ["maps key "], id="google-api-key"),
    pytest.param(f"stripe {STRIPE_KEY}", [STRIPE_KEY], ["stripe "], id="stripe-key"),
    pytest.param(
        "<ike><authentication_protocol>sha1</authentication_protocol><pre_shared_key>Fy3qZ_xK.9pLm</pre_shared_key></ike>",
        ["Fy3qZ_xK.9pLm"],
        ["<authentication_protocol>sha1</authentication_protocol>", "<pre_shared_key>"],
        id="vpn-pre-shared-key",
    ),
    pytest.param(
        f'$env:AWS_SECRET_ACCESS_KEY="{SECRET_KEY}"', [SECRET_KEY], ["$env:AWS_SECRET_ACCESS_KEY="], id="powershell"
    ),
    pytest.param(
        "--parameters ParameterKey=DBPassword,ParameterValue=n0t-sh0wn ParameterKey=Env,ParameterValue=prod",
        ["n0t-sh0wn"],
        ["ParameterKey=DBPassword,ParameterValue=", "ParameterKey=Env,ParameterValue=prod"],
        id="cfn-parameters",
    ),
    pytest.param(
        "PGPASSWORD=pg-S3cret psql -h db -U app",
        ["pg-S3cret"],
        ["PGPASSWORD=", " psql -h db -U app"],
        id="shell-assignment",
    ),
    pytest.param(
        "redis://:r3dis-auth@cache:6379/0", ["r3dis-auth"], ["redis://:", "@cache:6379/0"], id="url-password-only"
    ),
    pytest.param(
        "Server=db;Database=app;UID=sa;PWD=Odbc!Pass1;", ["Odbc!Pass1"], ["Server=db;Database=app;UID=sa;"], id="odbc"
    ),
    pytest.param(SECRET_KEY, [SECRET_KEY], [], id="bare-secret-key-line"),
    pytest.param(
        f"||  SecretAccessKey |  {SECRET_KEY}  ||\n||  Status          |  Active  ||",
        [SECRET_KEY],
        ["||  SecretAccessKey |  ", "||  Status          |  Active  ||"],
        id="cli-table-row",
    ),
    pytest.param(
        "||  Type  |  SecureString  ||\n||  Value  |  pg-pass-77  ||\n||  Version  |  1  ||",
        ["pg-pass-77"],
        ["||  Type  |  SecureString  ||", "||  Version  |  1  ||"],
        id="cli-table-secure-string",
    ),
    pytest.param(
        "Authorization: AWS4-HMAC-SHA256 Credential="
        + KEY_ID
        + "/20240101/us-east-1/sts/aws4_request, Signature="
        + SIGNATURE,
        [KEY_ID, SIGNATURE],
        ["Authorization: AWS4-HMAC-SHA256 "],
        id="sigv4-header",
    ),
]

NOT_SECRETS: list = [
    pytest.param('                "InstanceId": "i-0abc123def4567890",', id="instance-id"),
    pytest.param('                "ImageId": "ami-0123456789abcdef0",', id="ami-id"),
    pytest.param('    "Arn": "arn:aws:iam::123456789012:role/deploy"', id="role-arn"),
    pytest.param('    "Account": "123456789012",', id="account-id"),
    pytest.param("2024-01-01 12:00:00 my-reports-bucket-2024", id="s3-ls"),
    pytest.param('    "RequestId": "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081"', id="request-id"),
    pytest.param('"CommitId": "9fceb02d0ae598e95dc970b74767f19372d61af8"', id="commit-hash"),
    pytest.param(
        '    "NextToken": "eyJOZXh0VG9rZW4iOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxfQ=="', id="next-token"
    ),
    pytest.param('"NextContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="', id="continuation-token"),
    pytest.param('"ClientToken": "550e8400-e29b-41d4-a716-446655440000"', id="client-token"),
    pytest.param('"IdempotencyToken": "f9b2c7d0-0c5e-4d8f-9b5a-2a7f1e3c4b6d"', id="idempotency-token"),
    pytest.param(
        '"nextForwardToken": "f/38000000000000000000000000000000000000000000000000000000/s"', id="logs-forward-token"
    ),
    pytest.param('"TokenType": "Bearer", "ExpiresIn": 3600', id="token-type"),
    pytest.param('"UserId": "AIDAJQABLZS4A3QDU576Q", "Arn": "arn:aws:iam::123456789012:user/bob"', id="user-unique-id"),
    pytest.param('"UserId": "AROA3XFRBF535PLBIFPI4:botocore-session-1700000000"', id="role-unique-id"),
    pytest.param(
        "An error occurred (UnrecognizedClientException) when calling the ListTables operation: "
        "The security token included in the request is invalid.",
        id="invalid-token-error",
    ),
    pytest.param("ExpiredToken: The security token included in the request is expired", id="expired-token-error"),
    pytest.param(
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----",
        id="certificate",
    ),
    pytest.param('"PasswordLastUsed": "2024-01-01T00:00:00+00:00",', id="password-last-used"),
    pytest.param(
        '"KeyName": "deploy", "KeyFingerprint": "1f:51:ae:28:bf:89:e9:d8:1f:25:5d:37:2d:7d:b8:ca:9f:f5:f1:6f"',
        id="key-pair-info",
    ),
    pytest.param('"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"', id="secret-arn"),
    pytest.param(
        '"SecretVersionsToStages": {"a1b2": ["AWSCURRENT"]}, "KmsKeyId": "alias/aws/secretsmanager"',
        id="secret-metadata",
    ),
    pytest.param('"UserData": "IyEvYmluL2Jhc2gKZWNobyBoZWxsbyA+IC90bXAvaGVsbG8K"', id="plain-user-data"),
    pytest.param('"ETag": "\\"d41d8cd98f00b204e9800998ecf8427e\\""', id="etag"),
    pytest.param(
        '"ManageMasterUserPassword": true, "MinimumPasswordLength": 14, "MasterUsername": "admin"',
        id="password-settings",
    ),
    pytest.param("Enter your password to continue; password policy updated.", id="prose"),
    pytest.param("host sk-prod-cluster-eu-west-primary-node is up", id="sk-prefixed-host"),
    pytest.param("Bearer authentication is required for this endpoint", id="bearer-prose"),
    pytest.param("upload: ./a.txt to s3://my-bucket/secrets/a.txt", id="s3-uri"),
    pytest.param("ssh://git@github.com/org/repo.git and https://bob@example.com/x", id="url-without-password"),
    pytest.param(
        '"imageDigest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"', id="image-digest"
    ),
    pytest.param(
        "aws secretsmanager get-secret-value --secret-id prod/db --client-token 1234abcd-12ab", id="cli-identifiers"
    ),
    pytest.param("Completed 256.0 KiB/1.2 MiB (1.1 MiB/s) with 1 file(s) remaining", id="s3-progress"),
    pytest.param('"Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "token-owner", "Value": "team-a"}]', id="tags"),
    pytest.param("botocore.exceptions.NoCredentialsError: Unable to locate credentials", id="no-credentials-error"),
    pytest.param("MissingAuthenticationToken: Request is missing Authentication Token", id="missing-token-error"),
    pytest.param(
        "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.", id="bad-key-error"
    ),
    pytest.param("Cannot exceed quota for AccessKeysPerUser: 2", id="access-key-quota"),
    pytest.param('            "Action": "secretsmanager:GetSecretValue",', id="policy-action"),
    pytest.param(
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: sts:AssumeRole", id="access-denied"
    ),
]


@pytest.mark.parametrize(("text", "gone", "kept"), SECRETS)
def test_secret_is_replaced_and_surroundings_kept(text: str, gone: list[str], kept: list[str]) -> None:
    out = redact_text(text)
    assert REDACTED in out
    for secret in gone:
        assert secret not in out
    for context in kept:
        assert context in out


SECRET_TEXTS = [pytest.param(case.values[0], id=case.id) for case in SECRETS]


@pytest.mark.parametrize("text", SECRET_TEXTS)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@pytest.mark.parametrize("text", SECRET_TEXTS)
def test_streaming_line_by_line_matches_whole_text(text: str) -> None:
    redactor = StreamRedactor()
    streamed = "".join(redactor.feed(line) for line in text.splitlines(keepends=True))
    assert streamed == redact_text(text)


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_identifier_is_not_redacted(text: str) -> None:
    assert redact_text(text) == text


def test_corpora_are_big_enough() -> None:
    assert len(SECRETS) >= 30
    assert len(NOT_SECRETS) >= 15


def describe_instances_lines(count: int) -> list[str]:
    instances = [
        {
            "InstanceId": f"i-0abc{n:013x}",
            "ImageId": "ami-0123456789abcdef0",
            "KeyName": "deploy-key",
            "State": {"Code": 16, "Name": "running"},
            "PrivateIpAddress": f"10.0.{n // 250}.{n % 250}",
            "IamInstanceProfile": {
                "Arn": "arn:aws:iam::123456789012:instance-profile/web",
                "Id": "AIPAJQABLZS4A3QDU576Q",
            },
            "Tags": [{"Key": "Name", "Value": f"web-{n}"}, {"Key": "token-owner", "Value": "platform"}],
        }
        for n in range(count // 20 + 1)
    ]
    document = {"Reservations": [{"ReservationId": "r-0123", "Instances": instances}], "NextToken": "eyJ2IjoxfQ=="}
    lines = json.dumps(document, indent=4).splitlines(keepends=True)
    assert len(lines) >= count
    return lines[:count]


def test_typical_output_passes_through_unchanged() -> None:
    lines = describe_instances_lines(2_000)
    redactor = StreamRedactor()
    assert [redactor.feed(line) for line in lines] == lines


def test_twenty_thousand_lines_redact_well_under_a_second() -> None:
    lines = describe_instances_lines(20_000)
    lines[10_000] = f'            "SecretAccessKey": "{SECRET_KEY}",\n'
    redactor = StreamRedactor()
    started = time.perf_counter()
    out = [redactor.feed(line) for line in lines]
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.3f}s for 20,000 lines"
    assert SECRET_KEY not in out[10_000]
    assert out[9_999] == lines[9_999]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("| token | " + " " * 100_000 + "x", id="wide-table-cell"),
        pytest.param("password:\n" + " " * 100_000 + "x", id="deep-continuation"),
        pytest.param("--password" + " " * 100_000 + "-x", id="spaced-flag"),
        pytest.param("a." * 50_000 + "://x", id="dotted-scheme"),
        pytest.param("login " * 20_000, id="many-logins"),
        pytest.param(
            json.dumps([{"Name": f"n{i}", "Token": "t", "Nested": {"a": 1}} for i in range(10_000)]), id="compact-json"
        ),
    ],
)
def test_pathological_lines_stay_fast(text: str) -> None:
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 1.0


# --- state across lines -------------------------------------------------------------------------------------


def test_pem_block_is_redacted_line_by_line_from_begin_to_end() -> None:
    lines = ["KeyName: deploy\n", "-----BEGIN RSA PRIVATE KEY-----\n", *(f"{b}\n" for b in RSA_BODY)]
    lines += ["-----END RSA PRIVATE KEY-----\n", "KeyPairId: key-0123\n"]
    redactor = StreamRedactor()
    out = [redactor.feed(line) for line in lines]
    assert out[0] == "KeyName: deploy\n"
    assert out[1:-1] == [f"{REDACTED}\n"] * (len(lines) - 2)
    assert out[-1] == "KeyPairId: key-0123\n"


def test_pem_state_belongs_to_one_stream() -> None:
    first, second = StreamRedactor(), StreamRedactor()
    first.feed("-----BEGIN EC PRIVATE KEY-----")
    assert first.feed(RSA_BODY[0]) == REDACTED
    assert second.feed(RSA_BODY[0]) == RSA_BODY[0]


def test_unterminated_pem_keeps_redacting_to_the_end() -> None:
    out = redact_text(f"header\n-----BEGIN PRIVATE KEY-----\n{RSA_BODY[0]}\n{RSA_BODY[1]}")
    assert out == f"header\n{REDACTED}\n{REDACTED}\n{REDACTED}"


def test_line_endings_and_indentation_are_kept() -> None:
    redactor = StreamRedactor()
    assert redactor.feed(f'  "SessionToken": "{SESSION_TOKEN}"\r\n') == f'  "SessionToken": "{REDACTED}"\r\n'
    assert redactor.feed("\n") == "\n"
    assert redactor.feed("") == ""


def test_yaml_block_scalar_under_secret_key_is_redacted_until_dedent() -> None:
    text = 'SecretString: |\n  {"password": "x1"}\n  second line\nName: prod/db\nVersionStages:\n- AWSCURRENT'
    assert (
        redact_text(text) == f"SecretString: |\n  {REDACTED}\n  {REDACTED}\nName: prod/db\nVersionStages:\n- AWSCURRENT"
    )


def test_yaml_folded_token_continuation_is_redacted() -> None:
    text = f"Credentials:\n  SessionToken: {SESSION_TOKEN[:40]}\n    {SESSION_TOKEN[40:]}\n  Expiration: '2024-01-01'"
    out = redact_text(text)
    assert out == f"Credentials:\n  SessionToken: {REDACTED}\n    {REDACTED}\n  Expiration: '2024-01-01'"


def test_yaml_secret_mapping_is_walked_not_blanked() -> None:
    text = f"Credentials:\n  AccessKeyId: {TEMP_KEY_ID}\n  Expiration: '2024-01-01T00:00:00Z'"
    assert redact_text(text) == f"Credentials:\n  AccessKeyId: {REDACTED}\n  Expiration: '2024-01-01T00:00:00Z'"


def test_json_value_on_the_line_after_its_key_is_redacted() -> None:
    out = redact_text('    "SecretString":\n        "hunter2-prod",\n    "Name": "prod/db"')
    assert out == f'    "SecretString":\n        {REDACTED}\n    "Name": "prod/db"'


def test_json_string_split_across_lines_is_redacted_to_its_closing_quote() -> None:
    out = redact_text('    "SecretString": "first part\nsecond part\nlast part", "Name": "prod/db"')
    assert out == f'    "SecretString": "{REDACTED}\n{REDACTED}\n{REDACTED}", "Name": "prod/db"'


def test_environment_value_is_redacted_when_its_name_is_secret() -> None:
    container = {
        "environment": [{"name": "DB_PASSWORD", "value": "pg-pass-1"}, {"name": "REGION", "value": "eu-west-1"}]
    }
    out = redact_text(json.dumps(container, indent=4))
    assert "pg-pass-1" not in out
    assert '"value": "eu-west-1"' in out
    assert '"name": "DB_PASSWORD"' in out


def test_name_without_value_does_not_taint_the_next_object() -> None:
    listing = {"Parameters": [{"Name": "/prod/db/password", "Type": "SecureString"}, {"Key": "env", "Value": "prod"}]}
    out = redact_text(json.dumps(listing, indent=2))
    assert '"Value": "prod"' in out


def test_secure_string_parameter_value_is_redacted_in_pretty_json() -> None:
    parameter = {
        "Parameter": {"Name": "/prod/db/url", "Type": "SecureString", "Value": "postgres://h/db", "Version": 3}
    }
    out = redact_text(json.dumps(parameter, indent=4))
    assert "postgres://h/db" not in out
    assert '"Name": "/prod/db/url"' in out
    assert '"Version": 3' in out


def test_yaml_environment_list_redacts_only_the_secret_entry() -> None:
    text = "env:\n  - name: API_TOKEN\n    value: abc123\n  - name: REGION\n    value: us-east-1"
    assert (
        redact_text(text) == f"env:\n  - name: API_TOKEN\n    value: {REDACTED}\n  - name: REGION\n    value: us-east-1"
    )


def test_redact_all_blanks_every_line_but_keeps_blank_lines() -> None:
    redactor = StreamRedactor(redact_all=True)
    assert redactor.feed("hunter2-prod\n") == f"{REDACTED}\n"
    assert redactor.feed("\n") == "\n"


# --- structured results ---------------------------------------------------------------------------------------

EXPIRATION = datetime(2024, 1, 1, tzinfo=UTC)


def test_assume_role_credentials_are_redacted_and_metadata_kept() -> None:
    response = {
        "Credentials": {
            "AccessKeyId": TEMP_KEY_ID,
            "SecretAccessKey": SECRET_KEY,
            "SessionToken": SESSION_TOKEN,
            "Expiration": EXPIRATION,
        },
        "AssumedRoleUser": {
            "AssumedRoleId": "AROA3XFRBF535PLBIFPI4:deploy",
            "Arn": "arn:aws:sts::123456789012:assumed-role/deploy/deploy",
        },
        "PackedPolicySize": 6,
        "ResponseMetadata": {"RequestId": "c6104cbe-af31-11e0-8154-cbc7ccf896c7", "HTTPStatusCode": 200},
    }
    out = redact_data(response)
    assert out["Credentials"] == {
        "AccessKeyId": REDACTED,
        "SecretAccessKey": REDACTED,
        "SessionToken": REDACTED,
        "Expiration": EXPIRATION,
    }
    assert out["AssumedRoleUser"] == response["AssumedRoleUser"]
    assert out["PackedPolicySize"] == 6
    assert out["ResponseMetadata"] == response["ResponseMetadata"]


def test_secret_value_is_redacted_and_its_identity_kept() -> None:
    response = {
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "Name": "prod/db",
        "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        "SecretString": '{"username":"admin","password":"hunter2"}',
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": EXPIRATION,
    }
    out = redact_data(response)
    assert out == {**response, "SecretString": REDACTED}
    assert redact_data({"Name": "tls", "SecretBinary": b"\x00\x01secret"})["SecretBinary"] == REDACTED


def test_created_key_pair_material_is_redacted() -> None:
    response = {
        "KeyFingerprint": "1f:51:ae:28:bf:89:e9:d8:1f:25:5d:37:2d:7d:b8:ca:9f:f5:f1:6f",
        "KeyMaterial": PEM_RSA,
        "KeyName": "deploy",
        "KeyPairId": "key-0123456789abcdef0",
    }
    assert redact_data(response) == {**response, "KeyMaterial": REDACTED}


def test_created_access_key_is_redacted() -> None:
    response = {
        "AccessKey": {
            "UserName": "ci",
            "AccessKeyId": KEY_ID,
            "Status": "Active",
            "SecretAccessKey": SECRET_KEY,
            "CreateDate": EXPIRATION,
        }
    }
    out = redact_data(response)
    assert out == {"AccessKey": {**response["AccessKey"], "AccessKeyId": REDACTED, "SecretAccessKey": REDACTED}}


def test_db_instance_without_password_is_unchanged() -> None:
    response = {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "prod-db",
                "MasterUsername": "admin",
                "Endpoint": {"Address": "prod-db.abc123.us-east-1.rds.amazonaws.com", "Port": 5432},
                "MasterUserSecret": {
                    "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1a2b",
                    "SecretStatus": "active",
                    "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
                },
                "IAMDatabaseAuthenticationEnabled": True,
            }
        ]
    }
    assert redact_data(response) == response


def test_data_key_plaintext_bytes_are_redacted_and_ciphertext_kept() -> None:
    response = {
        "CiphertextBlob": b"\x01\x02\x03ciphertext",
        "Plaintext": bytes(range(32)),
        "KeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    assert redact_data(response) == {**response, "Plaintext": REDACTED}


def test_decrypted_parameter_value_is_redacted_by_type_or_name() -> None:
    secure = {"Parameter": {"Name": "/app/conn", "Type": "SecureString", "Value": "Server=x;Pwd=y", "Version": 2}}
    named = {"Parameter": {"Name": "/app/db_password", "Type": "String", "Value": "plain-but-secret"}}
    plain = {"Parameter": {"Name": "/app/region", "Type": "String", "Value": "eu-west-1"}}
    assert redact_data(secure)["Parameter"] == {**secure["Parameter"], "Value": REDACTED}
    assert redact_data(named)["Parameter"]["Value"] == REDACTED
    assert redact_data(plain) == plain


def test_ecr_authorization_token_is_redacted() -> None:
    response = {
        "authorizationData": [
            {
                "authorizationToken": ECR_AUTHORIZATION_TOKEN,
                "expiresAt": EXPIRATION,
                "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
            }
        ]
    }
    assert redact_data(response)["authorizationData"][0] == {
        **response["authorizationData"][0],
        "authorizationToken": REDACTED,
    }


def test_pagination_and_idempotency_tokens_survive_structured_redaction() -> None:
    response = {
        "NextToken": "eyJOZXh0VG9rZW4iOiBudWxsfQ==",
        "ClientToken": "550e8400-e29b-41d4-a716-446655440000",
        "ContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
        "TokenType": "Bearer",
    }
    assert redact_data(response) == response


def test_user_data_is_redacted_only_when_it_hides_a_secret() -> None:
    harmless = base64.b64encode(b"#!/bin/bash\nyum install -y nginx\n").decode()
    leaky = base64.b64encode(b"#!/bin/bash\nexport DB_PASSWORD=hunter2-prod\n").decode()
    assert redact_data({"UserData": harmless}) == {"UserData": harmless}
    assert redact_data({"UserData": leaky}) == {"UserData": REDACTED}
    assert redact_data({"InstanceId": "i-1", "UserData": {"Value": leaky}}) == {
        "InstanceId": "i-1",
        "UserData": {"Value": REDACTED},
    }


def test_strings_under_ordinary_keys_are_redacted_as_text() -> None:
    out = redact_data({"Description": f"rotated {KEY_ID} yesterday", "Count": 3, "Items": (f"x {SLACK_BOT}",)})
    assert out == {"Description": f"rotated {REDACTED} yesterday", "Count": 3, "Items": (f"x {REDACTED}",)}


def test_redact_data_copies_and_never_mutates() -> None:
    response = {"Credentials": {"SecretAccessKey": SECRET_KEY}, "Items": [{"Name": "a"}]}
    before = copy.deepcopy(response)
    out = redact_data(response)
    assert response == before
    assert out["Items"] == response["Items"]
    assert out["Items"] is not response["Items"]
    assert out["Items"][0] is not response["Items"][0]


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("SecretAccessKey", True),
        ("aws_secret_access_key", True),
        ("AccessKeyId", True),
        ("--master-user-password", True),
        ("x-amz-security-token", True),
        ("X-Amz-Signature", True),
        ("authorizationToken", True),
        ("ClientSecret", True),
        ("PrivateKey", True),
        ("Authorization", True),
        ("SecretArn", False),
        ("SecretId", False),
        ("NextToken", False),
        ("NextForwardToken", False),
        ("ClientToken", False),
        ("TokenType", False),
        ("PasswordLastUsed", False),
        ("MinimumPasswordLength", False),
        ("AWS_SHARED_CREDENTIALS_FILE", False),
        ("KeyName", False),
    ],
)
def test_key_sensitivity(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


# --- results and the sink ------------------------------------------------------------------------------------

STARTED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def leaky_result() -> CommandResult:
    return CommandResult(
        ok=False,
        executor="cli",
        output=f'{{\n    "SecretAccessKey": "{SECRET_KEY}"\n}}',
        error_code="AccessDenied",
        error_message=f"denied for {KEY_ID}",
        attempts=[
            Attempt(
                number=1,
                started_at=STARTED,
                finished_at=STARTED,
                ok=False,
                error_message=f"token {SESSION_TOKEN} rejected",
            )
        ],
        data={"Credentials": {"SessionToken": SESSION_TOKEN, "Expiration": "2024-01-01"}},
    )


def assert_clean(result: CommandResult) -> None:
    dumped = result.model_dump_json()
    for secret in (SECRET_KEY, KEY_ID, SESSION_TOKEN):
        assert secret not in dumped


def test_redact_result_cleans_every_text_field_and_leaves_the_original() -> None:
    original = leaky_result()
    before = original.model_dump()
    clean = redact_result(original)
    assert_clean(clean)
    assert clean.error_message == f"denied for {REDACTED}"
    assert clean.data == {"Credentials": {"SessionToken": REDACTED, "Expiration": "2024-01-01"}}
    assert clean.error_code == "AccessDenied"
    assert original.model_dump() == before


def plan_with_leaks() -> PlanResult:
    rollback = RollbackOutcome(
        command_id="create-key",
        step=1,
        display="aws iam delete-access-key",
        state=RunState.FAILED,
        result=leaky_result(),
    )
    outcome = CommandOutcome(
        id="create-key",
        display="aws iam create-access-key",
        state=RunState.FAILED,
        result=leaky_result(),
        rollback=[rollback],
    )
    return PlanResult(
        plan_hash="abc",
        state=RunState.FAILED,
        started_at=STARTED,
        finished_at=STARTED,
        duration_seconds=1.0,
        commands=[outcome],
    )


def test_redact_plan_result_cleans_commands_and_rollbacks() -> None:
    original = plan_with_leaks()
    before = original.model_dump()
    clean = redact_plan_result(original)
    assert_clean(clean.commands[0].result)
    assert_clean(clean.commands[0].rollback[0].result)
    assert clean.plan_hash == "abc"
    assert original.model_dump() == before


def test_redacting_sink_is_an_output_sink() -> None:
    assert isinstance(RedactingSink(ListSink()), OutputSink)


async def test_sink_forwards_redacted_copies_of_lines() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    event = OutputLine(command_id="c1", stream="stdout", line=f'"SecretAccessKey": "{SECRET_KEY}",\n')
    await sink.emit(event)
    assert inner.lines() == [f'"SecretAccessKey": "{REDACTED}",\n']
    assert event.line == f'"SecretAccessKey": "{SECRET_KEY}",\n'
    assert inner.events[0] is not event


async def test_sink_keeps_state_per_command_and_stream() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    await sink.emit(OutputLine(command_id="a", stream="stdout", line="-----BEGIN RSA PRIVATE KEY-----"))
    await sink.emit(OutputLine(command_id="a", stream="stdout", line=RSA_BODY[0]))
    await sink.emit(OutputLine(command_id="a", stream="stderr", line="warning: slow"))
    await sink.emit(OutputLine(command_id="b", stream="stdout", line="ordinary"))
    assert inner.lines("a") == [REDACTED, REDACTED, "warning: slow"]
    assert inner.lines("b") == ["ordinary"]


async def test_sink_drops_stream_state_when_a_new_attempt_starts() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    await sink.emit(OutputLine(command_id="a", stream="stdout", line="-----BEGIN PRIVATE KEY-----"))
    await sink.emit(CommandStateChanged(command_id="a", state=RunState.RUNNING, attempt=2))
    await sink.emit(OutputLine(command_id="a", stream="stdout", line="attempt two output"))
    assert inner.lines("a")[-1] == "attempt two output"


async def test_sink_redacts_command_results_without_touching_the_event() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    event = CommandStateChanged(
        command_id="c1",
        state=RunState.FAILED,
        display=f"aws secretsmanager put-secret-value --secret-id db --secret-string {SECRET_KEY}",
        result=leaky_result(),
        reason=f"gave up on {KEY_ID}",
    )
    before = event.model_dump()
    await sink.emit(event)
    forwarded = inner.events[0]
    assert isinstance(forwarded, CommandStateChanged)
    assert forwarded.result is not None
    assert_clean(forwarded.result)
    assert SECRET_KEY not in forwarded.display
    assert "--secret-id db" in forwarded.display
    assert forwarded.reason == f"gave up on {REDACTED}"
    assert event.model_dump() == before


async def test_sink_redacts_plan_results_without_touching_the_event() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    event = PlanStateChanged(state=RunState.FAILED, result=plan_with_leaks())
    before = event.model_dump()
    await sink.emit(event)
    forwarded = inner.events[0]
    assert isinstance(forwarded, PlanStateChanged)
    assert forwarded.result is not None
    for secret in (SECRET_KEY, KEY_ID, SESSION_TOKEN):
        assert secret not in forwarded.result.model_dump_json()
    assert event.model_dump() == before


async def test_sink_passes_retry_events_through() -> None:
    inner = ListSink()
    event = RetryScheduled(command_id="c1", attempt=2, delay_seconds=1.5, error_code="Throttling")
    await RedactingSink(inner).emit(event)
    assert inner.events == [event]


async def test_sink_blanks_commands_marked_as_printing_bare_secrets() -> None:
    inner = ListSink()
    sink = RedactingSink(inner)
    sink.mark_secret_output("get")
    await sink.emit(OutputLine(command_id="get", stream="stdout", line="hunter2-prod\n"))
    await sink.emit(OutputLine(command_id="other", stream="stdout", line="hunter2-prod\n"))
    assert inner.lines("get") == [f"{REDACTED}\n"]
    assert inner.lines("other") == ["hunter2-prod\n"]


@pytest.mark.parametrize(
    ("args", "bare"),
    [
        (
            ["secretsmanager", "get-secret-value", "--secret-id", "db", "--query", "SecretString", "--output", "text"],
            True,
        ),
        (["sts", "assume-role", "--query", "Credentials.[AccessKeyId,SecretAccessKey]"], True),
        (["ssm", "get-parameter", "--name", "/db", "--with-decryption", "--query", "Parameter.Value"], True),
        (["ecr", "get-login-password", "--region", "us-east-1"], True),
        (["aws", "configure", "get", "aws_secret_access_key"], True),
        (
            ["--region", "eu-west-1", "secretsmanager", "get-secret-value", "--secret-id", "db", "--output", "text"],
            True,
        ),
        (["kms", "decrypt", "--ciphertext-blob", "fileb://c.bin", "--output", "text"], True),
        (["secretsmanager", "get-secret-value", "--secret-id", "db"], False),
        (["secretsmanager", "list-secrets", "--output", "text"], False),
        (["ec2", "describe-instances", "--query", "Reservations[].Instances[].InstanceId"], False),
        (["ssm", "get-parameter", "--name", "/db", "--query", "Parameter.Value"], False),
        (["configure", "get", "region"], False),
    ],
)
def test_commands_that_print_bare_secrets_are_recognised(args: list[str], bare: bool) -> None:
    assert prints_bare_secret(args) is bare


# --- the real aws CLI ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("output", ["json", "text", "table"])
def test_real_cli_output_streams_without_secrets(aws: str, output: str) -> None:
    boto3.client("iam").create_user(UserName="ci")
    boto3.client("secretsmanager").create_secret(Name="prod/db", SecretString="hunter2-prod-db")
    boto3.client("ssm").put_parameter(Name="/db/pw", Type="SecureString", Value="pg-pass-77")
    commands = [
        ["iam", "create-access-key", "--user-name", "ci"],
        ["ec2", "create-key-pair", "--key-name", "deploy"],
        ["secretsmanager", "get-secret-value", "--secret-id", "prod/db"],
        ["ssm", "get-parameter", "--name", "/db/pw", "--with-decryption"],
    ]
    for command in commands:
        args = [*command, "--output", output]
        raw = subprocess.run(["aws", *args], capture_output=True, text=True, timeout=120, check=True).stdout
        redactor = StreamRedactor(redact_all=prints_bare_secret(args))
        streamed = "".join(redactor.feed(line) for line in raw.splitlines(keepends=True))
        secrets = ["hunter2-prod-db", "pg-pass-77", "PRIVATE KEY", *re.findall(r"AKIA[A-Z0-9]{16}", raw)]
        secrets += [
            s for s in re.findall(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/])", raw) if s != s.lower()
        ]
        assert REDACTED in streamed, args
        for secret in secrets:
            assert secret not in streamed, (args, secret)


# --- registered secrets --------------------------------------------------------------------------------------


def test_registered_secret_is_redacted_verbatim_and_url_encoded() -> None:
    secret = "my/app+secret=value"
    assert register_secret(secret)
    assert redact_text(f"saw {secret} and url=a%3Fb&x={'my%2Fapp%2Bsecret%3Dvalue'}") == (
        f"saw {REDACTED} and url=a%3Fb&x={REDACTED}"
    )
    assert redact_data({"Description": f"ends with {secret}"}) == {"Description": f"ends with {REDACTED}"}


def test_short_values_are_not_registered() -> None:
    assert not register_secret("testing")
    assert redact_text("testing the testing suite") == "testing the testing suite"


def test_secrets_are_registered_from_secret_environment_names_only() -> None:
    environ = {
        "SLACK_BOT_TOKEN": "bot-value-123456",
        "CLOUDOPS_LLM_API_KEY": "llm-value-654321",
        "AWS_REGION": "eu-west-1-region",
        "PWD": "/home/operator/cloudops",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SHARED_CREDENTIALS_FILE": "/home/operator/.aws/credentials",
    }
    assert register_environment_secrets(environ) == 2
    text = "bot-value-123456 llm-value-654321 eu-west-1-region /home/operator/cloudops"
    assert redact_text(text) == f"{REDACTED} {REDACTED} eu-west-1-region /home/operator/cloudops"
