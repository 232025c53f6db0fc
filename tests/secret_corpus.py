"""A corpus of secret shapes, generated: every value is made here from a seeded RNG in the format its issuer
documents (prefix, alphabet, length, checksum-free), and none is a real credential or comes from anyone's
test data.

Each ``Shape`` is one kind of secret as it shows up somewhere (a bare token, a command line, a config file
line, a manifest), with the parts that are secret. ``contexts`` then places a shape's text in the kinds of
text AWS output has: a log line, the aws CLI's own JSON, text and table output of a response holding it, a
YAML document, an S3 object body and an error message.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache

import ahocorasick
import yaml
from awscli.formatter import JSONFormatter, TableFormatter, TextFormatter

# Windows shorter than this say nothing: "password", "https://" and the like are everywhere.
WINDOW = 8

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_HEX = "0123456789abcdef"
_B64 = _ALNUM + "+/"
_B64URL = _ALNUM + "-_"
_BASE32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Shape:
    name: str
    text: str  # as the secret appears, possibly over several lines
    secrets: tuple[str, ...]  # the parts that must not survive (nor any WINDOW-long piece of them)
    tags: frozenset[str] = field(default_factory=frozenset)

    def windows(self) -> set[str]:
        """Every piece of a secret part that must be gone: the whole part when short, else each window."""
        found: set[str] = set()
        for secret in self.secrets:
            if len(secret) <= WINDOW:
                found.add(secret)
            else:
                found.update(secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1))
        return found


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def mixed(self, alphabet: str, n: int) -> str:
        """Random, with at least one upper, one lower and one digit where the alphabet has them, as real keys do."""
        while True:
            value = self.pick(alphabet, n)
            if n < 3:
                return value
            needs = [set(string.ascii_uppercase), set(string.ascii_lowercase), set(string.digits)]
            if all(not (need & set(alphabet)) or need & set(value) for need in needs):
                return value

    def alnum(self, n: int) -> str:
        return self.mixed(_ALNUM, n)

    def hex(self, n: int) -> str:
        return self.mixed(_HEX, n)

    def b64(self, n: int) -> str:
        return self.mixed(_B64, n)

    def b64url(self, n: int) -> str:
        return self.mixed(_B64URL, n)

    def digits(self, n: int) -> str:
        return str(self.rng.randint(1, 9)) + self.pick(string.digits, n - 1)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def password(self, n: int = 14) -> str:
        """A human-made password: letters, digits and a little punctuation, no quotes, spaces or backslashes."""
        core = self.mixed(_ALNUM, n - 2)
        return core[:5] + self.rng.choice("!#%*+-.@^_") + core[5:] + self.rng.choice("!#%*+-.@^_")

    def word_password(self) -> str:
        return self.rng.choice(["Autumn", "Harbor", "Falcon", "Granite"]) + self.digits(4) + self.rng.choice("!#$")

    def b64_of(self, data: bytes) -> str:
        return base64.b64encode(data).decode()

    def b64url_nopad(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def pem_body(self, nbytes: int) -> list[str]:
        encoded = self.b64_of(self.rng.randbytes(nbytes))
        return [encoded[i : i + 64] for i in range(0, len(encoded), 64)]


def _bare(name: str, token: str, *tags: str) -> Shape:
    return Shape(name, token, (token,), frozenset({"bare", *tags}))


def _lines(*lines: str) -> str:
    return "\n".join(lines)


def _jwt(g: _Gen, alg: str, claims: dict[str, object], sig_bytes: int) -> str:
    header = g.b64url_nopad(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = g.b64url_nopad(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{g.b64url_nopad(g.rng.randbytes(sig_bytes))}"


def _aws_shapes(g: _Gen) -> Iterator[Shape]:
    key_id = "AKIA" + g.pick(_UPPER_ALNUM, 16)
    temp_id = "ASIA" + g.pick(_UPPER_ALNUM, 16)
    secret = g.b64(40)
    session = "IQoJb3JpZ2luX2Vj" + g.b64(300) + "="
    yield _bare("aws-access-key-id", key_id)
    yield _bare("aws-temporary-key-id", temp_id)
    # AWS's own documentation keys: documented, so they count as secrets wherever they appear.
    yield _bare("aws-documented-example-key-id", "AKIAIOSFODNN7EXAMPLE")
    yield Shape(
        "aws-documented-example-secret-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",),
    )
    yield Shape(
        "aws-credentials-file",
        _lines("[prod]", f"aws_access_key_id = {key_id}", f"aws_secret_access_key = {secret}"),
        (key_id, secret),
    )
    yield Shape(
        "aws-env-exports",
        _lines(
            f"export AWS_ACCESS_KEY_ID={temp_id}",
            f"export AWS_SECRET_ACCESS_KEY={secret}",
            f"export AWS_SESSION_TOKEN={session}",
        ),
        (temp_id, secret, session),
    )
    yield _bare("aws-session-token", session)
    yield _bare("aws-legacy-session-token", "FwoGZXIvYXdzE" + g.b64(220))
    payload = json.dumps(
        {"payload": g.b64(400), "datakey": g.b64(200), "version": "2", "type": "DATA_KEY", "expiration": 1717300000}
    )
    ecr = g.b64_of(f"AWS:{g.b64_of(payload.encode())}".encode())
    yield _bare("aws-ecr-authorization-token", ecr)
    sig = g.hex(64)
    url = (
        "https://cfg-bucket.s3.eu-west-1.amazonaws.com/app/settings.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={temp_id}%2F20240601%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T101502Z"
        f"&X-Amz-Expires=900&X-Amz-Security-Token={session.replace('=', '%3D')}&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={sig}"
    )
    yield Shape("aws-presigned-url", url, (temp_id, session.rstrip("="), sig), frozenset({"url"}))
    yield _bare("amazon-mws-auth-token", f"amzn.mws.{g.uuid()}")


def _chat_shapes(g: _Gen) -> Iterator[Shape]:
    team, user = g.digits(11), g.digits(13)
    yield _bare("slack-bot-token", f"xoxb-{team}-{g.digits(13)}-{g.alnum(24)}")
    yield _bare("slack-user-token", f"xoxp-{team}-{user}-{g.digits(13)}-{g.hex(32)}")
    yield _bare("slack-workspace-token", f"xoxa-2-{team}-{user}-{g.digits(13)}-{g.hex(32)}")
    yield _bare("slack-client-token-xoxc", f"xoxc-{team}-{user}-{g.digits(13)}-{g.hex(64)}")
    cookie = f"xoxd-{g.b64(60).replace('/', '%2F').replace('+', '%2B')}%3D%3D"
    yield _bare("slack-cookie-xoxd", cookie)
    yield Shape("slack-cookie-header", f"Cookie: d={cookie}; d-s={g.digits(10)}", (cookie,))
    yield _bare("slack-refresh-token", f"xoxe-1-{g.alnum(146)}")
    yield _bare("slack-rotating-token", f"xoxe.xoxp-1-{g.alnum(140)}")
    yield _bare("slack-app-token", f"xapp-1-A{g.pick(_UPPER_ALNUM, 10)}-{g.digits(13)}-{g.hex(64)}")
    path = f"T{g.pick(_UPPER_ALNUM, 8)}/B{g.pick(_UPPER_ALNUM, 10)}/{g.alnum(24)}"
    yield Shape(
        "slack-incoming-webhook", f"https://hooks.slack.com/services/{path}", (path.split("/")[-1],), frozenset({"url"})
    )
    trigger = f"T{g.pick(_UPPER_ALNUM, 8)}/A{g.pick(_UPPER_ALNUM, 10)}/{g.digits(18)}/{g.hex(32)}"
    yield Shape(
        "slack-workflow-webhook",
        f"https://hooks.slack.com/triggers/{trigger}",
        (trigger.split("/")[-1],),
        frozenset({"url"}),
    )
    user_id = g.digits(18).encode()
    discord = f"{g.b64url_nopad(user_id)}.{g.b64url(6)}.{g.b64url(38)}"
    yield _bare("discord-bot-token", discord)
    yield Shape("discord-bot-header", f"Authorization: Bot {discord}", (discord,))
    hook = g.b64url(68)
    yield Shape(
        "discord-webhook", f"https://discord.com/api/webhooks/{g.digits(19)}/{hook}", (hook,), frozenset({"url"})
    )
    hook2 = g.b64url(68)
    yield Shape(
        "discord-webhook-legacy-host",
        f"https://discordapp.com/api/webhooks/{g.digits(18)}/{hook2}",
        (hook2,),
        frozenset({"url"}),
    )
    tenant, group, conn, owner = g.uuid(), g.uuid(), g.hex(32), g.uuid()
    teams = (
        f"https://contoso.webhook.office.com/webhookb2/{group}@{tenant}/IncomingWebhook/{conn}/{owner}/V2{g.b64url(40)}"
    )
    yield Shape("teams-incoming-webhook", teams, (conn, teams.rsplit("/", 1)[1]), frozenset({"url"}))
    legacy = f"https://outlook.office.com/webhook/{g.uuid()}@{g.uuid()}/IncomingWebhook/{g.hex(32)}/{g.uuid()}"
    yield Shape("teams-legacy-webhook", legacy, (legacy.split("/")[-2],), frozenset({"url"}))
    flow_sig = g.b64url(43)
    flow = (
        f"https://prod-{g.digits(2)}.westeurope.logic.azure.com:443/workflows/{g.hex(32)}/triggers/manual/paths/invoke"
        f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={flow_sig}"
    )
    yield Shape("teams-workflow-webhook", flow, (flow_sig,), frozenset({"url"}))
    telegram = f"{g.digits(10)}:AA{g.b64url(33)}"
    yield _bare("telegram-bot-token", telegram)
    yield Shape(
        "telegram-bot-url",
        f"https://api.telegram.org/bot{telegram}/sendMessage?chat_id=-100{g.digits(10)}",
        (telegram,),
        frozenset({"url"}),
    )


def _forge_shapes(g: _Gen) -> Iterator[Shape]:
    yield _bare("gitlab-personal-token", f"glpat-{g.b64url(20)}")
    yield _bare("gitlab-runner-token", f"glrt-{g.b64url(20)}")
    yield _bare("gitlab-runner-token-routable", f"glrt-t1_{g.b64url(27)}")
    yield _bare("gitlab-deploy-token", f"gldt-{g.b64url(20)}")
    yield _bare("gitlab-trigger-token", f"glptt-{g.hex(40)}")
    yield _bare("gitlab-runner-registration-token", f"GR1348941{g.b64url(20)}")
    yield _bare("gitlab-feed-token", f"glft-{g.b64url(20)}")
    yield _bare("gitlab-oauth-secret", f"gloas-{g.hex(64)}")
    yield _bare("gitlab-ci-job-token", f"glcbt-{g.hex(2)}_{g.b64url(20)}")
    yield _bare("gitlab-agent-token", f"glagent-{g.b64url(50)}")
    yield _bare("github-classic-token", f"ghp_{g.alnum(36)}")
    yield _bare("github-oauth-token", f"gho_{g.alnum(36)}")
    yield _bare("github-user-server-token", f"ghu_{g.alnum(36)}")
    yield _bare("github-server-token", f"ghs_{g.alnum(36)}")
    yield _bare("github-refresh-token", f"ghr_{g.alnum(76)}")
    yield _bare("github-fine-grained-token", f"github_pat_{g.alnum(22)}_{g.alnum(59)}")
    yield _bare("bitbucket-app-token", f"ATBB{g.alnum(32)}{g.hex(8).upper()}")
    yield _bare("atlassian-api-token", f"ATATT3xFfGF0{g.b64url(170)}={g.hex(8).upper()}")
    yield _bare("docker-hub-token", f"dckr_pat_{g.b64url(27)}")
    yield _bare("buildkite-token", f"bkua_{g.hex(40)}")
    yield _bare("circleci-token", f"CCIPAT_{g.alnum(22)}_{g.hex(40)}")
    yield _bare("terraform-cloud-token", f"{g.alnum(14)}.atlasv1.{g.alnum(67)}")
    yield _bare("pulumi-token", f"pul-{g.hex(40)}")
    yield _bare("doppler-token", f"dp.st.prd.{g.alnum(43)}")
    yield _bare("vault-service-token", f"hvs.{g.b64url(90)}")
    yield _bare("vault-batch-token", f"hvb.{g.b64url(138)}")
    vault = f"s.{g.alnum(24)}"
    yield Shape("vault-legacy-token-header", f"X-Vault-Token: {vault}", (vault,))
    yield _bare("age-secret-key", "AGE-SECRET-KEY-1" + g.pick("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58))


def _package_shapes(g: _Gen) -> Iterator[Shape]:
    npm = f"npm_{g.alnum(36)}"
    yield _bare("npm-token", npm)
    yield Shape("npmrc-auth-token", f"//registry.npmjs.org/:_authToken={npm}", (npm,))
    legacy = g.uuid()
    yield Shape("npmrc-legacy-auth-token", f"//registry.npmjs.org/:_authToken={legacy}", (legacy,))
    pw = g.password()
    auth = g.b64_of(f"ci-bot:{pw}".encode())
    yield Shape(
        "npmrc-basic-auth",
        _lines("registry=https://npm.corp.example/", f"_auth = {auth}", "always-auth=true"),
        (auth, pw),
    )
    password_b64 = g.b64_of(g.password().encode())
    yield Shape("npmrc-registry-password", f"//npm.corp.example/:_password={password_b64}", (password_b64,))
    macaroon = "pypi-AgEIcHlwaS5vcmc" + g.b64url(160)
    yield _bare("pypi-token", macaroon)
    yield _bare("testpypi-token", "pypi-AgENdGVzdC5weXBpLm9yZw" + g.b64url(150))
    yield Shape("pypirc-password", _lines("[pypi]", "username = __token__", f"password = {macaroon}"), (macaroon,))
    yield _bare("rubygems-token", f"rubygems_{g.hex(48)}")
    yield _bare("clojars-token", f"CLOJARS_{g.hex(60)}")
    yield _bare("huggingface-token", f"hf_{g.alnum(34)}")
    token = g.b64(40)
    yield Shape(
        "nuget-api-key", f"dotnet nuget push pkg.nupkg --api-key {token} --source https://nuget.corp.example", (token,)
    )
    yield Shape("pip-index-url", f"PIP_INDEX_URL=https://deploy:{pw}@pypi.corp.example/simple", (pw,))


def _payment_and_mail_shapes(g: _Gen) -> Iterator[Shape]:
    yield _bare("stripe-live-secret-key", f"sk_live_{g.alnum(99)}")
    yield _bare("stripe-test-secret-key", f"sk_test_{g.alnum(99)}")
    yield _bare("stripe-restricted-key", f"rk_live_{g.alnum(99)}")
    yield _bare("stripe-webhook-secret", f"whsec_{g.alnum(32)}")
    yield _bare("sendgrid-api-key", f"SG.{g.b64url(22)}.{g.b64url(43)}")
    yield _bare("mailchimp-api-key", f"{g.hex(32)}-us{g.rng.randint(1, 21)}")
    yield _bare("mailgun-api-key", f"key-{g.hex(32)}")
    yield _bare("brevo-api-key", f"xkeysib-{g.hex(64)}-{g.alnum(16)}")
    yield _bare("twilio-api-key", f"SK{g.hex(32)}")
    yield _bare("square-access-token", f"EAAA{g.b64url(60)}")
    yield _bare("square-oauth-secret", f"sq0csp-{g.b64url(43)}")
    yield _bare("shopify-admin-token", f"shpat_{g.hex(32)}")
    yield _bare("shopify-custom-app-token", f"shpca_{g.hex(32)}")
    yield _bare("shopify-private-app-password", f"shppa_{g.hex(32)}")
    yield _bare("shopify-shared-secret", f"shpss_{g.hex(32)}")
    yield _bare("adyen-api-key", f"AQE{g.b64url(12)}.{g.b64url(40)}")
    plaid = g.hex(30)
    yield Shape("plaid-secret-env", f"PLAID_SECRET={plaid}", (plaid,))


def _cloud_shapes(g: _Gen) -> Iterator[Shape]:
    yield _bare("digitalocean-personal-token", f"dop_v1_{g.hex(64)}")
    yield _bare("digitalocean-oauth-token", f"doo_v1_{g.hex(64)}")
    yield _bare("digitalocean-refresh-token", f"dor_v1_{g.hex(64)}")
    yield _bare("databricks-token", f"dapi{g.hex(32)}")
    yield _bare("databricks-token-suffixed", f"dapi{g.hex(32)}-2")
    azure = f"{g.alnum(3)}{g.rng.randint(7, 8)}Q~{g.b64url(31).replace('-', '.')}"
    yield _bare("azure-ad-client-secret", azure)
    account_key = g.b64(86) + "=="
    yield Shape(
        "azure-storage-connection-string",
        f"DefaultEndpointsProtocol=https;AccountName=stcontoso{g.digits(3)};AccountKey={account_key};EndpointSuffix=core.windows.net",
        (account_key,),
    )
    cosmos = g.b64(86) + "=="
    yield Shape(
        "azure-cosmos-connection-string",
        f"AccountEndpoint=https://contoso.documents.azure.com:443/;AccountKey={cosmos};",
        (cosmos,),
    )
    sb = g.b64(43) + "="
    yield Shape(
        "azure-service-bus-connection-string",
        f"Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={sb}",
        (sb,),
    )
    sas_sig = g.b64(43) + "="
    escaped_sig = sas_sig.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    sas = (
        "https://stcontoso.blob.core.windows.net/backups/db.bak?sv=2022-11-02&ss=b&srt=co&sp=rl"
        f"&se=2024-06-30T00:00:00Z&st=2024-06-01T00:00:00Z&spr=https&sig={escaped_sig}"
    )
    yield Shape("azure-sas-url", sas, (escaped_sig.removesuffix("%3D"),), frozenset({"url"}))
    code = g.b64url(54) + "=="
    yield Shape(
        "azure-function-key-url",
        f"https://contoso-fn.azurewebsites.net/api/ingest?code={code}",
        (code.rstrip("="),),
        frozenset({"url"}),
    )
    appcfg = g.b64(43) + "="
    yield Shape(
        "azure-app-configuration-connection-string",
        f"Endpoint=https://contoso.azconfig.io;Id={g.alnum(4)}-l0-s0:{g.alnum(20)};Secret={appcfg}",
        (appcfg,),
    )
    yield _bare("google-oauth-client-secret", f"GOCSPX-{g.b64url(28)}")
    yield _bare("google-oauth-access-token", f"ya29.a0{g.b64url(170)}")
    yield _bare("google-oauth-refresh-token", f"1//0{g.b64url(2)}{g.b64url(96)}")
    yield _bare("google-api-key", f"AIza{g.b64url(35)}")
    sa_body = g.pem_body(1190)
    sa_key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(sa_body) + "\n-----END PRIVATE KEY-----\n"
    service_account = json.dumps(
        {
            "type": "service_account",
            "project_id": "contoso-prod",
            "private_key_id": g.hex(40),
            "private_key": sa_key,
            "client_email": "deployer@contoso-prod.iam.gserviceaccount.com",
            "client_id": g.digits(21),
        },
        indent=2,
    )
    yield Shape("google-service-account-json", service_account, tuple(sa_body), frozenset({"file"}))
    secret = f"GOCSPX-{g.b64url(28)}"
    client = json.dumps(
        {
            "installed": {
                "client_id": f"{g.digits(12)}-{g.pick(_LOWER_ALNUM, 32)}.apps.googleusercontent.com",
                "client_secret": secret,
            }
        }
    )
    yield Shape("google-oauth-client-json", client, (secret,))
    yield _bare("alibaba-access-key-id", f"LTAI{g.alnum(20)}")
    yield _bare("tencent-secret-id", f"AKID{g.alnum(32)}")
    yield _bare("heroku-api-key", f"HRKU-{g.b64url(60)}")
    yield _bare("flyio-token", f"fo1_{g.b64url(43)}")
    yield _bare("supabase-token", f"sbp_{g.hex(40)}")
    yield _bare("planetscale-token", f"pscale_tkn_{g.b64url(43)}")
    yield _bare("cloudflare-origin-ca-key", f"v1.0-{g.hex(24)}-{g.hex(146)}")
    cloudflare = g.b64url(40)
    yield Shape("cloudflare-api-token-env", f"CLOUDFLARE_API_TOKEN={cloudflare}", (cloudflare,))
    okta = f"00{g.b64url(40)}"
    yield Shape("okta-api-token-header", f"Authorization: SSWS {okta}", (okta,))
    yield _bare("new-relic-user-key", f"NRAK-{g.pick(_UPPER_ALNUM, 27)}")
    yield _bare(
        "grafana-cloud-token",
        "glc_"
        + g.b64_of(json.dumps({"o": g.digits(6), "n": "ci", "k": g.alnum(24), "m": {"r": "eu"}}).encode()).rstrip("="),
    )
    yield _bare("grafana-service-account-token", f"glsa_{g.alnum(32)}_{g.hex(8)}")
    yield _bare("sentry-auth-token", f"sntrys_{g.b64url(80)}")
    yield _bare("postman-api-key", f"PMAK-{g.hex(24)}-{g.hex(34)}")
    yield _bare("linear-api-key", f"lin_api_{g.alnum(40)}")
    yield _bare("notion-token", f"ntn_{g.digits(11)}{g.alnum(35)}")
    yield _bare("figma-token", f"figd_{g.b64url(40)}")
    yield _bare("dropbox-token", f"sl.{g.b64url(135)}")
    yield _bare("contentful-token", f"CFPAT-{g.b64url(43)}")
    yield _bare("airtable-token", f"pat{g.alnum(14)}.{g.hex(64)}")
    yield _bare("mapbox-secret-token", "sk.eyJ1IjoiY29udG9zbyIsImEiOiJ" + g.b64url(20) + "." + g.b64url(22))
    yield _bare("onepassword-service-token", "ops_eyJ" + g.b64url(300))
    yield _bare("prefect-api-key", f"pnu_{g.alnum(36)}")
    yield _bare("readme-api-key", f"rdme_{g.hex(70)}")
    yield _bare("typeform-token", f"tfp_{g.b64url(44)}_{g.b64url(14)}")
    yield _bare("adafruit-io-key", f"aio_{g.alnum(28)}")


def _ai_shapes(g: _Gen) -> Iterator[Shape]:
    yield _bare("openai-project-key", f"sk-proj-{g.b64url(156)}")
    yield _bare("openai-legacy-key", f"sk-{g.alnum(20)}T3BlbkFJ{g.alnum(20)}")
    yield _bare("anthropic-key", f"sk-ant-api03-{g.b64url(93)}AA")
    yield _bare("groq-key", f"gsk_{g.alnum(52)}")
    yield _bare("perplexity-key", f"pplx-{g.alnum(48)}")
    yield _bare("replicate-token", f"r8_{g.alnum(37)}")


def _jose_shapes(g: _Gen) -> Iterator[Shape]:
    yield _bare("jwt-hs256", _jwt(g, "HS256", {"sub": g.uuid(), "iat": 1717236902, "scope": "deploy"}, 32))
    yield _bare(
        "jwt-rs256", _jwt(g, "RS256", {"iss": "https://idp.contoso.example", "sub": g.uuid(), "exp": 1717240502}, 256)
    )
    yield _bare("jwt-es256", _jwt(g, "ES256", {"sub": "svc-ci", "aud": "api"}, 64))
    header = g.b64url_nopad(b'{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k1"}')
    parts = [g.b64url_nopad(g.rng.randbytes(n)) for n in (256, 12, 180, 16)]
    yield _bare("jwe-rsa-oaep", ".".join([header, *parts]))
    dir_header = g.b64url_nopad(b'{"alg":"dir","enc":"A128CBC-HS256"}')
    dir_parts = [g.b64url_nopad(g.rng.randbytes(n)) for n in (16, 120, 16)]
    yield Shape("jwe-direct", f"{dir_header}..{'.'.join(dir_parts)}", (dir_parts[1],), frozenset({"bare"}))
    bearer = g.b64url(48)
    yield Shape("bearer-header", f"Authorization: Bearer {bearer}", (bearer,))


def _private_key_shapes(g: _Gen) -> Iterator[Shape]:
    for label, size in (
        ("RSA PRIVATE KEY", 1190),
        ("EC PRIVATE KEY", 121),
        ("PRIVATE KEY", 1218),
        ("DSA PRIVATE KEY", 444),
    ):
        body = g.pem_body(size)
        yield Shape(
            f"pem-{label.lower().replace(' ', '-')}",
            _lines(f"-----BEGIN {label}-----", *body, f"-----END {label}-----"),
            tuple(body),
            frozenset({"multiline"}),
        )
    body = g.pem_body(1250)
    yield Shape(
        "pem-encrypted-pkcs8",
        _lines("-----BEGIN ENCRYPTED PRIVATE KEY-----", *body, "-----END ENCRYPTED PRIVATE KEY-----"),
        tuple(body),
        frozenset({"multiline"}),
    )
    body = g.pem_body(1190)
    yield Shape(
        "pem-rsa-legacy-encrypted",
        _lines(
            "-----BEGIN RSA PRIVATE KEY-----",
            "Proc-Type: 4,ENCRYPTED",
            f"DEK-Info: AES-128-CBC,{g.hex(32).upper()}",
            "",
            *body,
            "-----END RSA PRIVATE KEY-----",
        ),
        tuple(body),
        frozenset({"multiline"}),
    )
    openssh = g.b64_of(b"openssh-key-v1\x00" + g.rng.randbytes(380))
    body = [openssh[i : i + 70] for i in range(0, len(openssh), 70)]
    yield Shape(
        "openssh-private-key",
        _lines("-----BEGIN OPENSSH PRIVATE KEY-----", *body, "-----END OPENSSH PRIVATE KEY-----"),
        tuple(body[1:]),
        frozenset({"multiline"}),
    )
    body = [g.b64(64) for _ in range(12)]
    yield Shape(
        "pgp-private-key-block",
        _lines(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----", "", *body, f"={g.b64(4)}", "-----END PGP PRIVATE KEY BLOCK-----"
        ),
        tuple(body),
        frozenset({"multiline"}),
    )
    body = [g.b64(70) for _ in range(9)]
    yield Shape(
        "ssh2-encrypted-private-key",
        _lines(
            "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----",
            'Comment: "rsa-key-20240601"',
            *body,
            "---- END SSH2 ENCRYPTED PRIVATE KEY ----",
        ),
        tuple(body),
        frozenset({"multiline"}),
    )
    body = [g.b64(70) for _ in range(7)]
    yield Shape(
        "ssh2-private-key",
        _lines(
            "---- BEGIN SSH2 PRIVATE KEY ----",
            "Subject: deploy",
            'Comment: "2048-bit rsa, deploy@bastion"',
            *body,
            "---- END SSH2 PRIVATE KEY ----",
        ),
        tuple(body),
        frozenset({"multiline"}),
    )
    public = [g.b64(64), g.b64(24)]
    private = [g.b64(64), g.b64(44)]
    mac = g.hex(64)
    yield Shape(
        "putty-v3-private-key",
        _lines(
            "PuTTY-User-Key-File-3: ssh-ed25519",
            "Encryption: none",
            "Comment: deploy@bastion",
            "Public-Lines: 2",
            *public,
            "Private-Lines: 2",
            *private,
            f"Private-MAC: {mac}",
        ),
        (*private, mac),
        frozenset({"multiline"}),
    )
    private = [g.b64(64) for _ in range(4)]
    yield Shape(
        "putty-v2-private-key",
        _lines(
            "PuTTY-User-Key-File-2: ssh-rsa",
            "Encryption: aes256-cbc",
            "Comment: imported-openssh-key",
            "Public-Lines: 1",
            g.b64(64),
            "Private-Lines: 4",
            *private,
            f"Private-MAC: {g.hex(40)}",
        ),
        tuple(private),
        frozenset({"multiline"}),
    )


def _command_shapes(g: _Gen) -> Iterator[Shape]:
    def cmd(name: str, template: str, pw: str | None = None) -> Shape:
        pw = pw or g.password()
        return Shape(name, template.format(pw=pw), (pw,), frozenset({"command"}))

    yield cmd("curl-user", "curl -sS -u deploy:{pw} https://artifacts.corp.example/api/v1/builds")
    yield cmd("curl-user-long", "curl --user 'ci-bot:{pw}' -X POST https://jenkins.corp.example/job/deploy/build")
    yield cmd("curl-user-glued", "curl -uadmin:{pw} http://10.0.3.12:9200/_cluster/health")
    yield cmd("wget-password", "wget --user=deploy --password={pw} https://artifacts.corp.example/app.tar.gz")
    yield cmd("wget-http-password", "wget --http-user=ci --http-password='{pw}' -O - https://repo.corp.example/key")
    yield cmd("mysql-glued-password", "mysql -h prod-db.cluster-c1a2b3.eu-west-1.rds.amazonaws.com -u admin -p{pw} app")
    yield cmd("mysql-quoted-password", "mysqldump -u root -p'{pw}' --single-transaction app > /backup/app.sql")
    yield cmd("mysql-long-password", "mysql --user=app --password={pw} --host=127.0.0.1 reporting")
    yield cmd("mysqladmin-password", "mysqladmin -uroot --password {pw} status")
    yield cmd("sshpass", "sshpass -p {pw} ssh ec2-user@10.0.1.20 uptime")
    yield cmd("redis-cli-auth", "redis-cli -h cache.abc123.use1.cache.amazonaws.com -a {pw} --tls ping")
    yield cmd(
        "mongosh-password",
        "mongosh --username admin --password {pw} --host docdb.cluster-x.eu-west-1.docdb.amazonaws.com",
    )
    yield cmd("psql-url", "psql postgresql://app_user:{pw}@prod-db.internal:5432/app?sslmode=require")
    yield cmd("git-clone-credentials", "git clone https://oauth2:{pw}@gitlab.corp.example/platform/infra.git")
    yield cmd("htpasswd-batch", "htpasswd -b -c /etc/nginx/.htpasswd admin {pw}")
    yield cmd("docker-login-password", "docker login -u deploy -p {pw} registry.corp.example")
    yield cmd("smbclient-credentials", "smbclient //fs01/share -U corp/backup%{pw} -c 'ls'")
    yield cmd(
        "ldapsearch-password", 'ldapsearch -x -H ldaps://dc01.corp.example -D "cn=svc,dc=corp" -w {pw} "(uid=alice)"'
    )
    yield cmd("openssl-passin", "openssl pkcs12 -in cert.p12 -nodes -passin pass:{pw} -out cert.pem")
    yield cmd("keytool-storepass", "keytool -list -keystore app.jks -storepass {pw}")
    yield cmd("rabbitmqctl-password", "rabbitmqctl add_user deploy {pw}", g.password())
    yield cmd("sqlcmd-password", "sqlcmd -S tcp:10.0.2.5,1433 -U sa -P {pw} -Q 'SELECT 1'")
    yield cmd("ftp-url", "lftp ftp://uploader:{pw}@ftp.partner.example/incoming")


def _file_shapes(g: _Gen) -> Iterator[Shape]:
    pw = g.password()
    yield Shape(
        "netrc-line", f"machine api.heroku.com login ops@contoso.example password {pw}", (pw,), frozenset({"file"})
    )
    pw2 = g.password()
    yield Shape(
        "netrc-multiline",
        _lines("machine artifacts.corp.example", "  login deploy", f"  password {pw2}"),
        (pw2,),
        frozenset({"file", "multiline"}),
    )
    pw3 = g.password()
    yield Shape("netrc-default", f"default login anonymous password {pw3}", (pw3,), frozenset({"file"}))
    pw4 = g.password()
    yield Shape(
        "pgpass-line",
        f"prod-db.cluster-c1a2b3.eu-west-1.rds.amazonaws.com:5432:app:app_user:{pw4}",
        (pw4,),
        frozenset({"file"}),
    )
    pw5 = g.password()
    yield Shape("pgpass-wildcards", f"*:*:*:replicator:{pw5}", (pw5,), frozenset({"file"}))
    token = f"ghp_{g.alnum(36)}"
    yield Shape("git-credentials-line", f"https://octo-bot:{token}@github.com", (token,), frozenset({"file"}))
    db_pw, api = g.password(), g.hex(40)
    manifest = _lines(
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        "  name: app-secrets",
        "  namespace: prod",
        "type: Opaque",
        "data:",
        f"  DB_PASSWORD: {g.b64_of(db_pw.encode())}",
        f"  api-key: {g.b64_of(api.encode())}",
        f"  username: {g.b64_of(b'app_user')}",
    )
    yield Shape(
        "kubernetes-secret-yaml",
        manifest,
        (g.b64_of(db_pw.encode()), g.b64_of(api.encode()), db_pw, api),
        frozenset({"file", "multiline"}),
    )
    tls_body = g.pem_body(1190)
    tls_key = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(tls_body) + "\n-----END RSA PRIVATE KEY-----\n").encode()
    url_pw = g.password()
    conn = f"postgres://app:{url_pw}@db:5432/app".encode()
    secret_json = json.dumps(
        {
            "apiVersion": "v1",
            "data": {
                "database-url": g.b64_of(conn),
                "tls.crt": g.b64_of(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
                "tls.key": g.b64_of(tls_key),
            },
            "kind": "Secret",
            "metadata": {"name": "web-tls", "namespace": "prod"},
            "type": "kubernetes.io/tls",
        },
        indent=4,
    )
    # The base64 of the key begins and ends as the certificate's does ("-----BEGIN ", "-----END "): only the
    # part between is its own.
    yield Shape(
        "kubernetes-secret-json",
        secret_json,
        (g.b64_of(conn), g.b64_of(tls_key)[44:-40], url_pw),
        frozenset({"file", "multiline"}),
    )
    reg_pw = g.password()
    auth = g.b64_of(f"deploy:{reg_pw}".encode())
    docker = {"auths": {"registry.corp.example": {"username": "deploy", "password": reg_pw, "auth": auth}}}
    docker_json = json.dumps(docker)
    yield Shape("dockerconfigjson", docker_json, (reg_pw, auth), frozenset({"file"}))
    docker_b64 = g.b64_of(docker_json.encode())
    pull_secret = _lines(
        "apiVersion: v1",
        "kind: Secret",
        "metadata:",
        "  name: regcred",
        "type: kubernetes.io/dockerconfigjson",
        "data:",
        f"  .dockerconfigjson: {docker_b64}",
    )
    yield Shape("dockerconfigjson-in-secret", pull_secret, (docker_b64,), frozenset({"file", "multiline"}))
    rows = [(f"user{n}", f"user{n}@contoso.example", g.password(), g.rng.choice(["admin", "viewer"])) for n in range(3)]
    csv_text = _lines("username,email,password,role", *(",".join(row) for row in rows))
    yield Shape("csv-password-column", csv_text, tuple(row[2] for row in rows), frozenset({"file", "multiline"}))
    keys = [g.hex(32) for _ in range(2)]
    csv_keys = _lines('"service";"api_key";"owner"', *(f'"svc-{n}";"{key}";"team-{n}"' for n, key in enumerate(keys)))
    yield Shape("csv-api-key-column", csv_keys, tuple(keys), frozenset({"file", "multiline"}))
    tsv_pw = g.password()
    yield Shape(
        "tsv-secret-column",
        _lines("name\tclient_secret\tredirect", f"portal\t{tsv_pw}\thttps://portal.example/cb"),
        (tsv_pw,),
        frozenset({"file", "multiline"}),
    )
    inner_pw = g.password()
    inner = json.dumps({"username": "admin", "password": inner_pw, "host": "db.internal"})
    double = json.dumps(json.dumps({"SecretString": inner}))
    yield Shape("double-escaped-json", double, (inner_pw,))
    triple = json.dumps(json.dumps(json.dumps({"db": {"password": inner_pw[::-1]}})))
    yield Shape("triple-escaped-json", triple, (inner_pw[::-1],))
    env_pw, env_key = g.password(), g.hex(40)
    yield Shape(
        "dotenv-file",
        _lines("APP_ENV=production", f"DB_PASSWORD={env_pw}", f"STRIPE_API_KEY={env_key}", "LOG_LEVEL=info"),
        (env_pw, env_key),
        frozenset({"file", "multiline"}),
    )
    compose_pw = g.password()
    yield Shape(
        "compose-environment",
        _lines(
            "services:", "  db:", "    image: mysql:8", "    environment:", f"      MYSQL_ROOT_PASSWORD: {compose_pw}"
        ),
        (compose_pw,),
        frozenset({"file", "multiline"}),
    )
    tf_pw = g.password()
    yield Shape("tfvars", f'db_password = "{tf_pw}"', (tf_pw,), frozenset({"file"}))
    mvn_pw = g.password()
    yield Shape(
        "maven-settings",
        _lines(
            "<server>",
            "  <id>corp-releases</id>",
            "  <username>deploy</username>",
            f"  <password>{mvn_pw}</password>",
            "</server>",
        ),
        (mvn_pw,),
        frozenset({"file", "multiline"}),
    )
    props_pw = g.password()
    yield Shape("spring-properties", f"spring.datasource.password={props_pw}", (props_pw,), frozenset({"file"}))
    jdbc_pw = g.password()
    yield Shape("jdbc-url", f"jdbc:mysql://prod-db:3306/app?user=app&password={jdbc_pw}&useSSL=true", (jdbc_pw,))
    odbc_pw = g.password()
    yield Shape(
        "odbc-connection-string",
        f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:db,1433;Uid=sa;Pwd={odbc_pw};Encrypt=yes",
        (odbc_pw,),
    )
    api_key = g.alnum(32)
    yield Shape("api-key-header", f"X-Api-Key: {api_key}", (api_key,))
    session = g.b64url(48)
    yield Shape("session-cookie-header", f"Set-Cookie: session={session}; Path=/; HttpOnly; Secure", (session,))
    basic = g.b64_of(f"admin:{g.password()}".encode())
    yield Shape("basic-auth-header", f"Authorization: Basic {basic}", (basic,))
    ini_pw = g.password()
    yield Shape(
        "ini-section",
        _lines("[database]", "host = db.internal", "user = app", f"password = {ini_pw}"),
        (ini_pw,),
        frozenset({"file", "multiline"}),
    )
    yaml_pw = g.password()
    yield Shape(
        "yaml-nested-password",
        _lines("database:", "  host: db.internal", "  credentials:", "    user: app", f"    password: {yaml_pw}"),
        (yaml_pw,),
        frozenset({"file", "multiline"}),
    )
    wp = g.password()
    yield Shape("php-define", f"define('DB_PASSWORD', '{wp}');", (wp,))
    rails = g.hex(128)
    yield Shape("rails-secret-key-base", f"SECRET_KEY_BASE={rails}", (rails,))
    django = g.mixed(_ALNUM + "!@#%^&*(-_=+)", 50)
    yield Shape("django-secret-key", f"SECRET_KEY = '{django}'", (django,))
    wg = g.b64(43) + "="
    yield Shape(
        "wireguard-private-key",
        _lines("[Interface]", "Address = 10.8.0.2/32", f"PrivateKey = {wg}"),
        (wg,),
        frozenset({"file", "multiline"}),
    )
    psk = g.password(20)
    yield Shape("wpa-supplicant-psk", f'  psk="{psk}"', (psk,))
    radius = g.password()
    yield Shape(
        "radius-secret",
        _lines("client vpn-gw {", "    ipaddr = 10.0.0.1", f"    secret = {radius}", "}"),
        (radius,),
        frozenset({"file", "multiline"}),
    )


_GROUPS: tuple[Callable[[_Gen], Iterator[Shape]], ...] = (
    _aws_shapes,
    _chat_shapes,
    _forge_shapes,
    _package_shapes,
    _payment_and_mail_shapes,
    _cloud_shapes,
    _ai_shapes,
    _jose_shapes,
    _private_key_shapes,
    _command_shapes,
    _file_shapes,
)


@cache
def shapes(seed: int = 10) -> tuple[Shape, ...]:
    """Every shape, generated from ``seed``; the same seed gives the same corpus."""
    g = _Gen(seed)
    found: list[Shape] = []
    for group in _GROUPS:
        found.extend(group(g))
    return tuple(found)


# --- where a secret shows up ------------------------------------------------------------------------------

_CLI_ARGS = argparse.Namespace(query=None, color="off")


def _log_events(text: str) -> dict[str, object]:
    return {
        "events": [
            {"timestamp": 1717236902000, "message": "deploy started", "ingestionTime": 1717236903000},
            {"timestamp": 1717236903000, "message": text, "ingestionTime": 1717236904000},
        ],
        "nextForwardToken": "f/38314219284119234829384729384729384729384729384729384712/s",
        "nextBackwardToken": "b/38314219284119234829384729384729384729384729384729384700/s",
    }


def _format(formatter: type, response: dict[str, object]) -> str:
    out = io.StringIO()
    formatter(_CLI_ARGS)("get-log-events", response, out)
    return out.getvalue()


CONTEXTS = ("log-line", "cli-json", "cli-text", "cli-table", "yaml", "s3-object", "error-message")


def contexts(shape: Shape) -> Iterator[tuple[str, str]]:
    """``shape``'s text in each of ``CONTEXTS``."""
    text = shape.text
    first, _, rest = text.partition("\n")
    yield "log-line", f"2024-06-01T10:15:03.118Z 7f3c INFO worker: {first}" + (f"\n{rest}" if rest else "")
    response = _log_events(text)
    yield "cli-json", _format(JSONFormatter, response)
    yield "cli-text", _format(TextFormatter, response)
    yield "cli-table", _format(TableFormatter, response)
    yield (
        "yaml",
        yaml.safe_dump(
            {"Parameter": {"Name": "/app/notes", "Type": "String", "Value": text, "Version": 4}},
            sort_keys=False,
            width=4096,
        ),
    )
    yield "s3-object", f"# synced from s3://contoso-config/app/settings.txt\n{text}\n# end\n"
    yield (
        "error-message",
        "\nAn error occurred (ValidationException) when calling the PutParameter operation: 1 validation error "
        f"detected: Value '{text}' at 'description' failed to satisfy constraint: Member must have length less "
        "than or equal to 1024\n",
    )


def survivors(shape: Shape, output: str) -> list[str]:
    """The pieces of ``shape``'s secrets still in ``output`` (also as JSON would escape them)."""
    if len(output) > _LONG_OUTPUT:
        # One pass over a long output (a data file, a whole export) instead of one per piece.
        automaton = _pieces(shape)
        return sorted({window for _, window in automaton.iter(output)}) if len(automaton) else []
    found = []
    for window in shape.windows():
        escaped = json.dumps(window)[1:-1]
        if window in output or escaped in output:
            found.append(window)
    return sorted(found)


_LONG_OUTPUT = 20_000


@cache
def _pieces(shape: Shape) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for window in shape.windows():
        automaton.add_word(window, window)
        automaton.add_word(json.dumps(window)[1:-1], window)
    automaton.make_automaton()
    return automaton
