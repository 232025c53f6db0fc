"""AWS error codes both executors report, which of them are worth another attempt, and the aws CLI's stderr.

Both executors must name the same failure the same way, so that retry decisions, history records and
the operator's view do not depend on which executor ran a command. API errors keep the code AWS sent;
failures that never reached an API answer get the codes defined here.
"""

from __future__ import annotations

import re

from botocore import exceptions as boto_exc

from engine.risk import Risk

# Codes for failures below the API: no AWS error code exists for them.
CONNECTION_ERROR = "ConnectionError"
CONNECT_TIMEOUT = "ConnectTimeout"
READ_TIMEOUT = "ReadTimeout"
CONNECTION_CLOSED = "ConnectionClosed"
SSL_ERROR = "SSLError"
NO_CREDENTIALS = "NoCredentials"
PARTIAL_CREDENTIALS = "PartialCredentials"
NO_REGION = "NoRegion"
PROFILE_NOT_FOUND = "ProfileNotFound"
PARAM_VALIDATION = "ParamValidationError"
UNKNOWN_SERVICE = "UnknownService"
UNKNOWN_OPERATION = "UnknownOperation"
WAITER_ERROR = "WaiterError"
CLI_USAGE_ERROR = "CliUsageError"
CLI_ERROR = "CliError"
TIMEOUT = "Timeout"
DRY_RUN_OPERATION = "DryRunOperation"

RETRYABLE_CODES: frozenset[str] = frozenset(
    {
        # Throttling: AWS refused the request, so repeating it cannot do anything twice.
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "TransactionInProgressException",
        "PriorRequestNotComplete",
        # Transient service-side failures.
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "IDPCommunicationError",
        # botocore reports a bare HTTP status as the code when an error response has no body (HEAD requests).
        "429",
        "500",
        "502",
        "503",
        "504",
        # Transport failures.
        CONNECTION_ERROR,
        CONNECT_TIMEOUT,
        READ_TIMEOUT,
        CONNECTION_CLOSED,
    }
)
"""Error codes after which another attempt may succeed.

``LimitExceededException`` is left out on purpose: for most services it means a quota is used up, which
no number of attempts will change.
"""

MAYBE_PROCESSED_CODES: frozenset[str] = frozenset({READ_TIMEOUT, CONNECTION_CLOSED})
"""Failures where the request was sent and AWS may have acted on it before the answer was lost."""


def is_retryable(code: str | None) -> bool:
    """Whether an attempt that failed with ``code`` is worth repeating at all."""
    return code is not None and code in RETRYABLE_CODES


def is_safe_to_retry(code: str | None, risk: Risk) -> bool:
    """Whether a command of ``risk`` that failed with ``code`` may be repeated without an operator.

    A read-only command may always be repeated after a retryable failure. A modifying one may not when
    the request may already have taken effect (a lost answer): repeating it could act twice.
    """
    if not is_retryable(code):
        return False
    return risk is Risk.READ_ONLY or code not in MAYBE_PROCESSED_CODES


def code_for_botocore_error(exc: BaseException) -> str:
    """The code for a botocore exception that is not an API error (those carry their own code)."""
    # Order matters: several of these classes derive from one another.
    if isinstance(exc, boto_exc.SSLError):
        return SSL_ERROR
    if isinstance(exc, boto_exc.ConnectTimeoutError):
        return CONNECT_TIMEOUT
    if isinstance(exc, boto_exc.ReadTimeoutError):
        return READ_TIMEOUT
    if isinstance(exc, boto_exc.ConnectionClosedError):
        return CONNECTION_CLOSED
    if isinstance(exc, boto_exc.ConnectionError):
        return CONNECTION_ERROR
    if isinstance(exc, boto_exc.NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, boto_exc.PartialCredentialsError):
        return PARTIAL_CREDENTIALS
    if isinstance(exc, boto_exc.NoRegionError):
        return NO_REGION
    if isinstance(exc, boto_exc.ProfileNotFound):
        return PROFILE_NOT_FOUND
    if isinstance(exc, boto_exc.ParamValidationError):
        return PARAM_VALIDATION
    if isinstance(exc, boto_exc.UnknownServiceError):
        return UNKNOWN_SERVICE
    if isinstance(exc, boto_exc.WaiterError):
        return WAITER_ERROR
    return type(exc).__name__


# The aws CLI prints API errors as botocore's ClientError renders them:
#   An error occurred (NoSuchBucket) when calling the HeadBucket operation: The specified bucket ...
# with " (reached max retries: N)" before the colon when botocore retried.
_API_ERROR = re.compile(
    r"An error occurred \((?P<code>[^)\s]+)\) when calling the (?P<op>\w+) operation"
    r"(?: \(reached max retries: \d+\))?: ?(?P<message>.*)",
    re.DOTALL,
)

# Failures that never produced an API answer, by the text botocore and the aws CLI print for them.
_OTHER_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^SSL validation failed for .*$", re.MULTILINE), SSL_ERROR),
    (re.compile(r"^Connect timeout on endpoint URL: .*$", re.MULTILINE), CONNECT_TIMEOUT),
    (re.compile(r"^Read timeout on endpoint URL: .*$", re.MULTILINE), READ_TIMEOUT),
    (re.compile(r"^Connection was closed before we received a valid response.*$", re.MULTILINE), CONNECTION_CLOSED),
    (re.compile(r"^Could not connect to the endpoint URL: .*$", re.MULTILINE), CONNECTION_ERROR),
    (re.compile(r"^Failed to connect to proxy URL: .*$", re.MULTILINE), CONNECTION_ERROR),
    (re.compile(r"^Unable to locate credentials.*$", re.MULTILINE), NO_CREDENTIALS),
    (re.compile(r"^Partial credentials found in .*$", re.MULTILINE), PARTIAL_CREDENTIALS),
    (re.compile(r"^You must specify a region\..*$", re.MULTILINE), NO_REGION),
    (re.compile(r"^The config profile \(.*\) could not be found.*$", re.MULTILINE), PROFILE_NOT_FOUND),
    (re.compile(r"^Waiter \S+ failed: .*$", re.MULTILINE), WAITER_ERROR),
    (re.compile(r"^aws: error: .*$", re.MULTILINE), CLI_USAGE_ERROR),
    (re.compile(r"^Unknown options: .*$", re.MULTILINE), CLI_USAGE_ERROR),
    (re.compile(r"^Error parsing parameter .*$", re.MULTILINE), CLI_USAGE_ERROR),
)
_PARAM_VALIDATION = re.compile(r"^Parameter validation failed:\s*(?P<message>.*)", re.MULTILINE | re.DOTALL)


def parse_cli_error(stderr: str) -> tuple[str | None, str | None]:
    """The error code and message in the aws CLI's stderr, or ``(None, None)`` when it names none."""
    match = _API_ERROR.search(stderr)
    if match:
        return match["code"], match["message"].strip() or None
    match = _PARAM_VALIDATION.search(stderr)
    if match:
        return PARAM_VALIDATION, match["message"].strip() or "Parameter validation failed"
    for pattern, code in _OTHER_ERRORS:
        match = pattern.search(stderr)
        if match:
            return code, match.group(0).strip()
    return None, None
