"""What this engine has reviewed of the aws CLI's own code: its argument classes and its customized commands.

The aws CLI adds code of its own to what botocore's models describe: argument classes that read or write
local files, and commands that are not one API operation (``emr create-cluster``, ``aws deploy install``).
Code is not data, so each such class and command is named here after someone has read it, with what it
does. Anything the aws CLI adds that is not named here is refused: a new customization may read or write
files or make calls nobody has looked at, and failing closed until someone has is the safe default.
"""

from __future__ import annotations

from types import MappingProxyType

# Argument classes, by the aws CLI's own class names. A customized argument of a class not named here is
# refused when a command uses it.

PLAIN_ARGUMENTS = frozenset(
    f"awscli.{name}"
    for name in (
        "arguments.CLIArgument",
        "arguments.ListArgument",
        "arguments.BooleanArgument",
        "customizations.cliinputjson.CliInputJSONArgument",
        "customizations.paginate.PageArgument",
        "customizations.toplevelbool.PositiveBooleanArgument",
        "customizations.toplevelbool.NegativeBooleanParameter",
        "customizations.arguments._NestedBlobArgumentParamOverwrite",
        "customizations.arguments.StatefulArgument",
        "customizations.flatten.FlattenedArgument",
        "customizations.putmetricdata.PutMetricArgument",
        "customizations.ec2.bundleinstance.BundleArgument",
        "customizations.ec2.secgroupsimplify.ProtocolArgument",
        "customizations.ec2.secgroupsimplify.PortArgument",
        "customizations.ec2.secgroupsimplify.CidrArgument",
        "customizations.ec2.secgroupsimplify.SourceGroupArgument",
        "customizations.ec2.secgroupsimplify.GroupOwnerArgument",
        "customizations.ec2.addcount.CountArgument",
        "customizations.ec2.runinstances.SecondaryPrivateIpAddressesArgument",
        "customizations.ec2.runinstances.SecondaryPrivateIpAddressCountArgument",
        "customizations.ec2.runinstances.AssociatePublicIpAddressArgument",
        "customizations.ec2.runinstances.NoAssociatePublicIpAddressArgument",
        "customizations.sessendemail.AddressesArgument",
        "customizations.sessendemail.BodyArgument",
        "customizations.codedeploy.locationargs.S3LocationArgument",
        "customizations.codedeploy.locationargs.GitHubLocationArgument",
        "customizations.datapipeline.ParameterValuesInlineArgument",
        "customizations.datapipeline.ParameterValuesArgument",
        "customizations.datapipeline.ParameterObjectsArgument",
        "customizations.datapipeline.PipelineDefinitionArgument",
        "customizations.awslambda.ZipFileArgument",
        "customizations.awslambda.ReplacedZipFileArgument",
        "customizations.binaryhoist.OriginalArgument",
        "customizations.binaryhoist.InjectingArgument",
        "customizations.cloudfront.OriginDomainName",
        "customizations.cloudfront.CreateDefaultRootObject",
        "customizations.cloudfront.PathsArgument",
        "customizations.emr.addtags.TagsArgument",
        "customizations.emr.listclusters.CreatedAfter",
        "customizations.emr.listclusters.CreatedBefore",
        "customizations.emr.listclusters.ClusterStatesArgument",
        "customizations.emr.listclusters.ActiveStateArgument",
        "customizations.emr.listclusters.TerminatedStateArgument",
        "customizations.emr.listclusters.FailedStateArgument",
        "customizations.configservice.putconfigurationrecorder.ConfigurationRecorderArgument",
        "customizations.configservice.putconfigurationrecorder.RecordingGroupArgument",
    )
)
# The value is a local file the CLI reads (``ec2 get-password-data --priv-launch-key``).
LOCAL_READ_ARGUMENTS = frozenset({"awscli.customizations.ec2.decryptpassword.LaunchKeyArgument"})
# The value is a local file the CLI writes the response (or part of it) to.
LOCAL_WRITE_ARGUMENTS = frozenset(
    {
        "awscli.customizations.streamingoutputarg.StreamingOutputArgument",
        "awscli.customizations.s3events.S3SelectStreamOutputArgument",
        "awscli.customizations.arguments.QueryOutFileArgument",
        "awscli.customizations.iamvirtmfa.FileArgument",
    }
)
REFUSED_ARGUMENTS = {
    "awscli.customizations.cloudfront.UpdateDefaultRootObject": (
        "the aws CLI reads the distribution's configuration from AWS to build the request, so what would run "
        "cannot be known before approval; use `get-distribution-config` and `update-distribution "
        "--distribution-config`"
    ),
    "awscli.customizations.generatecliskeleton.GenerateCliSkeletonArgument": (
        "it prints a request template instead of running the command"
    ),
}

REFUSED_COMMANDS = {
    "configure": "it reads and writes the local aws credential and config files",
    "help": "it prints documentation",
    "history": "it reads the aws CLI's local command history",
    "sdb": "it is a preview service the aws CLI refuses unless its config enables it",
}
# Commands of a service that are not one API operation, by the word that names them; a reason given for
# (service, word) in REFUSED_CUSTOMIZATIONS wins over the one here.
REFUSED_SUBCOMMANDS = {
    "wait": "a waiter polls until a state is reached; run the describe operation instead",
    "help": "it prints documentation",
    "get-login": "it prints a docker login command holding a credential",
    "get-login-password": "it prints a registry credential",
    "get-token": "it prints a cluster credential",
    "update-kubeconfig": "it writes the local kubeconfig file",
    "package": "it reads local files and uploads them",
    "deploy": "it is a multi-step aws CLI workflow, not one API operation",
    "push": "it bundles and uploads a local directory",
    "ssh": "it opens an interactive ssh session",
    "socks": "it opens a local SOCKS tunnel",
    "put": "it copies local files over ssh",
    "get": "it copies remote files to local disk over ssh",
    "presign": "it creates a pre-signed URL, which is a bearer credential",
    "website": "use `aws s3api put-bucket-website` instead",
}

_LOCAL_SESSION = "it opens an interactive session through the local Session Manager plugin"
_UNREVIEWED_WORKFLOW = (
    "it is an aws CLI workflow of several API calls that this engine has not reviewed; "
    "write its API operations as separate commands"
)
REFUSED_CUSTOMIZATIONS = {
    ("deploy", "install"): "it installs the CodeDeploy agent on the machine that runs it",
    ("deploy", "uninstall"): "it removes the CodeDeploy agent from the machine that runs it",
    ("deploy", "register"): "it creates an IAM user's access key and writes it to a local file",
    ("deploy", "deregister"): "it deletes the IAM user of an on-premises instance and reads local configuration",
    ("codeartifact", "login"): "it writes a registry credential into a local package manager's configuration",
    ("codecommit", "credential-helper"): "it prints git credentials",
    ("ecs", "execute-command"): _LOCAL_SESSION,
    ("ssm", "start-session"): _LOCAL_SESSION,
    ("ecs", "deploy"): "it reads local task definition and AppSpec files and runs a multi-step deployment",
    ("gamelift", "upload-build"): "it uploads a local directory",
    ("gamelift", "get-game-session-log"): "it downloads a log file to local disk",
    ("rds", "generate-db-auth-token"): "it creates a database authentication token, which is a bearer credential",
    ("cloudfront", "sign"): "it signs a URL with a local private key",
    ("logs", "start-live-tail"): "it streams log events until it is interrupted",
    ("servicecatalog", "generate"): _UNREVIEWED_WORKFLOW,
    ("cloudtrail", "create-subscription"): _UNREVIEWED_WORKFLOW,
    ("cloudtrail", "update-subscription"): _UNREVIEWED_WORKFLOW,
    ("cloudtrail", "validate-logs"): _UNREVIEWED_WORKFLOW,
    ("configservice", "subscribe"): _UNREVIEWED_WORKFLOW,
    ("dlm", "create-default-role"): _UNREVIEWED_WORKFLOW,
    ("emr", "create-default-roles"): _UNREVIEWED_WORKFLOW,
    ("datapipeline", "create-default-roles"): _UNREVIEWED_WORKFLOW,
    ("emr-containers", "update-role-trust-policy"): _UNREVIEWED_WORKFLOW,
}

_EMR_STEPS = ("AddJobFlowSteps",)
# Customized commands that only call API operations of their own service, with the operations each may call
# (botocore's names), read from the command's code. Their options are read with the command's own argument
# table, and ``file://`` / ``http(s)://`` values with the same rules as any command's; they run on the aws
# CLI executor, and policy and risk apply to every operation listed.
API_CUSTOMIZATIONS: MappingProxyType[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {
        ("emr", "create-cluster"): ("RunJobFlow",),
        ("emr", "add-steps"): _EMR_STEPS,
        ("emr", "install-applications"): _EMR_STEPS,
        ("emr", "create-hbase-backup"): _EMR_STEPS,
        ("emr", "restore-from-hbase-backup"): _EMR_STEPS,
        ("emr", "schedule-hbase-backup"): _EMR_STEPS,
        ("emr", "disable-hbase-backups"): _EMR_STEPS,
        ("emr", "add-instance-groups"): ("AddInstanceGroups",),
        ("emr", "terminate-clusters"): ("TerminateJobFlows",),
        ("emr", "describe-cluster"): (
            "DescribeCluster",
            "ListInstanceFleets",
            "ListInstanceGroups",
            "ListBootstrapActions",
        ),
        ("emr", "modify-cluster-attributes"): (
            "SetVisibleToAllUsers",
            "SetTerminationProtection",
            "SetKeepJobFlowAliveWhenNoSteps",
            "SetUnhealthyNodeReplacement",
        ),
        ("datapipeline", "list-runs"): ("QueryObjects", "DescribeObjects"),
        ("configservice", "get-status"): (
            "DescribeConfigurationRecorderStatus",
            "DescribeDeliveryChannelStatus",
        ),
    }
)
# The argument class of a customized command's own options: a plain value the command reads itself.
CUSTOM_ARGUMENT = "awscli.arguments.CustomArgument"
