"""Offline checks of template.yaml, run by `make template-check` (part of
`make test`):

1. translate the SAM template with aws-sam-translator and lint the result
   with cfn-lint (plain `cfn-lint template.yaml` skips SAM event checks);
2. lint template.yaml itself, and `sam validate --lint`;
3. assert the IAM policies of the translated template: no wildcard
   actions, only the expected managed policies, `*` resources only for
   actions that support no resource scoping, Kafka rights scoped to the
   named topics and consumer group, and each function's Kafka writes
   limited to its own topic (the publisher: Database Events only);
4. evaluate the translated template under several deployments (MSK or
   self-managed, with and without a SASL secret, a private CA secret and a
   customer managed KMS key, each compression codec) and assert the broker
   security wiring: the CA secret reaches every Kafka function's
   environment (KAFKA_SSL_CA_SECRET_ARN) and the self-managed event source
   (SERVER_ROOT_CA_CERTIFICATE); each Kafka function's role reads exactly
   the Kafka secrets given; kms:Decrypt is granted only on the key
   parameter, through Secrets Manager, only in roles that read a Kafka
   secret and only when a key is given; KafkaCompressionType reaches every
   producing function; every parameter is in one console group;
5. the async commands' event source in each poller mode (MSK and
   self-managed): on demand it has no error handling (Lambda refuses it
   there), no failure queue and no SQS right; provisioned, it has the
   pollers, bisects, retries a bounded number of times, passes the record
   age and sends to the failure queue, which only its role may write to;
6. the indexer: its function (512 MB, 60 s), its event source on the
   table's stream from TRIM_HORIZON with the publisher's filter plus
   active heads only, partial batch responses, bisection and bounded
   retries, and a role with exactly the table, stream and ListStreams
   rights the writer uses.
7. the operations side (scripts/check_operations.py, its planted
   breakages in check_operations_planted.py): the alarms, their
   thresholds and notifications, METRICS_NAMESPACE, tracing (translated a
   second time with Tracing Active) and the dashboard.

The checks check themselves first against broken copies of the template,
so a checker that cannot fail does not pass.
"""

import copy
import json
import logging
import os
import subprocess
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)

MANAGED_ALLOWED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}
# Actions that support no resource-level scoping.
UNSCOPED_ALLOWED = {
    "dynamodb:ListStreams",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
}
TOPIC_PARAMETERS = {
    "TransactionProposalsTopic",
    "DatabaseEventsTopic",
    "AsyncCommandsTopic",
    "AsyncResponsesTopic",
}
# Per role: the Kafka topics (by parameter) each Kafka action may touch.
KAFKA_TOPIC_RIGHTS = {
    "CommandIngestionFunctionRole": {
        "kafka-cluster:WriteData": {"AsyncCommandsTopic"},
        "kafka-cluster:DescribeTopic": {"AsyncCommandsTopic"},
    },
    "StreamPublisherFunctionRole": {
        "kafka-cluster:WriteData": {"DatabaseEventsTopic"},
        "kafka-cluster:DescribeTopic": {"DatabaseEventsTopic"},
        "kafka-cluster:Connect": {"DatabaseEventsTopic"},
    },
    "AsyncCommandsFunctionRole": {
        "kafka-cluster:ReadData": {"AsyncCommandsTopic"},
        "kafka-cluster:DescribeTopic": {"AsyncCommandsTopic", "AsyncResponsesTopic"},
        "kafka-cluster:WriteData": {"AsyncResponsesTopic"},
    },
}
# The only Kafka actions each role may have at all.
KAFKA_ACTIONS = {
    "CommandIngestionFunctionRole": {
        "kafka-cluster:Connect",
        "kafka-cluster:WriteData",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:WriteDataIdempotently",
    },
    # docs/contract.md §4, exactly.
    "StreamPublisherFunctionRole": {
        "kafka-cluster:Connect",
        "kafka-cluster:WriteData",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:WriteDataIdempotently",
    },
    "AsyncCommandsFunctionRole": {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
        "kafka-cluster:WriteDataIdempotently",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:WriteData",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    },
}
GROUP_PARAMETER = "AsyncCommandsConsumerGroupId"

# Broker security and producer settings (check_kafka_wiring).
KAFKA_FUNCTIONS = ("CommandIngestionFunction", "StreamPublisherFunction", "AsyncCommandsFunction")
# The ones that produce: the publisher, the async responses, the async submit.
PRODUCING_FUNCTIONS = KAFKA_FUNCTIONS
SASL_SECRET_PARAMETER = "KafkaSaslSecretArn"
CA_SECRET_PARAMETER = "KafkaCaSecretArn"
KEY_PARAMETER = "KafkaSecretKmsKeyArn"
COMPRESSION_PARAMETER = "KafkaCompressionType"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CA_ENV = "KAFKA_SSL_CA_SECRET_ARN"
COMPRESSION_ENV = "KAFKA_COMPRESSION_TYPE"
VIA_SECRETS_MANAGER = {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
SELF_MANAGED_SOURCE = "AsyncCommandsSelfManagedSource"

MSK = "arn:aws:kafka:eu-west-1:123456789012:cluster/dev/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2"
SASL = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_evidentsource-AbCdEf"
CA = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-private-ca-GhIjKl"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Deployments to evaluate the template under (parameters not named keep
# their defaults).
SCENARIOS = {
    "defaults": {},
    "self-managed SCRAM, private CA, KMS key, in a VPC": {
        "KafkaSecurityProtocol": "SASL_SSL",
        "KafkaSaslMechanism": "SCRAM-SHA-512",
        SASL_SECRET_PARAMETER: SASL,
        CA_SECRET_PARAMETER: CA,
        KEY_PARAMETER: KEY,
        "VpcId": "vpc-0123456789abcdef0",
        "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        COMPRESSION_PARAMETER: "zstd",
    },
    "self-managed SSL, private CA only": {
        "KafkaSecurityProtocol": "SSL",
        CA_SECRET_PARAMETER: CA,
        COMPRESSION_PARAMETER: "gzip",
    },
    "self-managed PLAIN, secret without a KMS key": {
        "KafkaSecurityProtocol": "SASL_SSL",
        "KafkaSaslMechanism": "PLAIN",
        SASL_SECRET_PARAMETER: SASL,
        COMPRESSION_PARAMETER: "snappy",
    },
    "a KMS key but no secret": {KEY_PARAMETER: KEY, "KafkaSecurityProtocol": "SSL"},
    "MSK SCRAM with a KMS key": {
        "MskClusterArn": MSK,
        "KafkaSecurityProtocol": "SASL_SSL",
        "KafkaSaslMechanism": "SCRAM-SHA-512",
        SASL_SECRET_PARAMETER: SASL,
        KEY_PARAMETER: KEY,
        "VpcId": "vpc-0123456789abcdef0",
        "VpcSubnetIds": "subnet-0123456789abcdef0",
        COMPRESSION_PARAMETER: "lz4",
    },
    "MSK IAM": {
        "MskClusterArn": MSK,
        "KafkaSecurityProtocol": "SASL_SSL",
        "KafkaSaslMechanism": "AWS_MSK_IAM",
    },
}
REQUIRED_VALUES = {
    "KafkaBrokers": "broker-1.example.com:9096",
    "BaseUri": "https://api.example.com",
}


def translate(template_path, parameter_values=None):
    with open(template_path) as f:
        template = yaml_parse(f.read())
    # The code is built by `sam build`; translation only needs a location.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/key"

    class NoManagedPolicyLookups:
        def load(self):
            return {}

    return transform(template, dict(parameter_values or {}), NoManagedPolicyLookups())


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(document):
    """The statements of a policy document, both branches of every Fn::If."""
    for item in as_list(document.get("Statement", [])):
        yield from branches(item)


def branches(item):
    if isinstance(item, dict) and "Fn::If" in item:
        _, yes, no = item["Fn::If"]
        yield from branches(yes)
        yield from branches(no)
    elif isinstance(item, dict) and item.get("Ref") == "AWS::NoValue":
        return
    elif isinstance(item, dict):
        yield item


def kafka_resource(resource):
    """('cluster', None), ('topic', parameter), ('group', parameter) or
    ('other', text) for a Kafka resource expression."""
    if resource == {"Ref": "MskClusterArn"}:
        return ("cluster", None)
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        text = text[0] if isinstance(text, list) else text
        for kind in ("topic", "group"):
            prefix = ":" + kind + "/${Cluster}/${"
            if prefix in text and text.endswith("}"):
                return (kind, text.split(prefix, 1)[1][:-1])
        return ("other", text)
    return ("other", json.dumps(resource))


def check_iam(translated):
    problems = []
    roles = {
        name: r for name, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"
    }
    for name, role in roles.items():
        props = role["Properties"]
        for arn in props.get("ManagedPolicyArns", []):
            if arn not in MANAGED_ALLOWED:
                problems.append(f"{name}: managed policy {arn}")
        kafka_actions = set()
        for policy in props.get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                actions = as_list(st.get("Action", []))
                resources = as_list(st.get("Resource", []))
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    problems.append(f"{name}: NotAction/NotResource")
                for action in actions:
                    if not isinstance(action, str) or "*" in action:
                        problems.append(f"{name}: wildcard action {action!r}")
                    if isinstance(action, str) and action.startswith("kafka-cluster:"):
                        kafka_actions.add(action)
                for resource in resources:
                    if resource == "*":
                        wide = [a for a in actions if a not in UNSCOPED_ALLOWED]
                        if wide:
                            problems.append(f"{name}: {wide} on every resource")
                    elif isinstance(resource, str) and "*" in resource:
                        problems.append(f"{name}: wildcard resource {resource}")
                if not any(isinstance(a, str) and a.startswith("kafka-cluster:") for a in actions):
                    continue
                for resource in resources:
                    kind, what = kafka_resource(resource)
                    if kind == "other":
                        problems.append(f"{name}: Kafka rights on {what}")
                    if kind == "topic" and what not in TOPIC_PARAMETERS:
                        problems.append(f"{name}: Kafka rights on topic {what}")
                    if kind == "group" and what != GROUP_PARAMETER:
                        problems.append(f"{name}: Kafka rights on group {what}")
                    if kind == "topic":
                        rights = KAFKA_TOPIC_RIGHTS.get(name, {})
                        for action in actions:
                            if what not in rights.get(action, set()):
                                problems.append(f"{name}: {action} on topic {what}")
                    if kind == "group":
                        for action in actions:
                            if action not in ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"):
                                problems.append(f"{name}: {action} on the consumer group")
        allowed = KAFKA_ACTIONS.get(name, set())
        for action in sorted(kafka_actions - allowed):
            problems.append(f"{name}: Kafka action {action} not expected")
    expected = set(KAFKA_ACTIONS)
    missing = expected - set(roles)
    if missing:
        problems.append(f"roles missing: {sorted(missing)}")
    # The publisher must be able to do exactly its job.
    publisher = roles.get("StreamPublisherFunctionRole")
    if publisher:
        granted = set()
        for policy in publisher["Properties"].get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                for resource in as_list(st.get("Resource", [])):
                    kind, what = kafka_resource(resource)
                    for action in as_list(st.get("Action", [])):
                        granted.add((action, kind, what))
        for need in (
            ("kafka-cluster:Connect", "cluster", None),
            ("kafka-cluster:WriteData", "topic", "DatabaseEventsTopic"),
            ("kafka-cluster:DescribeTopic", "topic", "DatabaseEventsTopic"),
        ):
            if need not in granted:
                problems.append(f"StreamPublisherFunctionRole lacks {need}")
    return problems


NO_VALUE = object()


class Deployment:
    """The translated template as CloudFormation would create it for given
    parameter values: conditions evaluated, Fn::If chosen, AWS::NoValue
    dropped, parameters substituted. Other intrinsics stay as they are."""

    def __init__(self, template, values):
        self.parameters = {}
        for name, p in template.get("Parameters", {}).items():
            value = values.get(name, REQUIRED_VALUES.get(name, p.get("Default")))
            if value is None:
                raise SystemExit(f"check_template: no value for parameter {name}")
            if p["Type"] == "CommaDelimitedList":
                value = str(value).split(",")
            self.parameters[name] = value
        self.condition_defs = template.get("Conditions", {})
        self.conditions = {}
        self.resources = {
            name: self.value(r)
            for name, r in template["Resources"].items()
            if "Condition" not in r or self.condition(r["Condition"])
        }

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.condition_defs[name]))
        return self.conditions[name]

    def value(self, x):
        if isinstance(x, list):
            return [v for v in map(self.value, x) if v is not NO_VALUE]
        if not isinstance(x, dict):
            return x
        if len(x) == 1:
            (fn, arg), = x.items()
            if fn == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.parameters.get(arg, x)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                a, b = (self.value(v) for v in arg)
                return a == b
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::And":
                return all(self.value(v) for v in arg)
            if fn == "Fn::Or":
                return any(self.value(v) for v in arg)
            if fn in ("Fn::Join", "Fn::Split", "Fn::Select"):
                first, second = (self.value(v) for v in arg)
                if fn == "Fn::Join" and isinstance(second, list):
                    if all(isinstance(v, str) for v in second):
                        return first.join(second)
                if fn == "Fn::Split" and isinstance(second, str):
                    return second.split(first)
                if fn == "Fn::Select" and isinstance(second, list):
                    return second[int(first)]
                return {fn: [first, second]}
        out = {}
        for k, v in x.items():
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out

    def environment(self, function):
        props = self.resources[function]["Properties"]
        return props.get("Environment", {}).get("Variables", {})

    def statements(self, role):
        for policy in self.resources[role]["Properties"].get("Policies", []):
            yield from as_list(policy["PolicyDocument"].get("Statement", []))


def check_kafka_wiring(translated):
    """Broker security (CA secret, KMS key) and compression, in every
    scenario; plus the parameters themselves."""
    problems = []
    params = translated.get("Parameters", {})
    # Optional: empty by default, nothing to read or decrypt.
    for name in (CA_SECRET_PARAMETER, KEY_PARAMETER):
        if params.get(name, {}).get("Default") != "":
            problems.append(f"parameter {name} missing or not empty by default")
    # One codec for every producer, chosen in one place.
    compression = params.get(COMPRESSION_PARAMETER, {})
    if compression.get("AllowedValues") != CODECS:
        allowed = compression.get("AllowedValues")
        problems.append(f"{COMPRESSION_PARAMETER} allows {allowed}, not {CODECS}")
    if compression.get("Default") not in CODECS:
        problems.append(f"{COMPRESSION_PARAMETER} defaults to {compression.get('Default')!r}")

    # The console groups: every parameter in exactly one, no stale names.
    interface = translated.get("Metadata", {}).get("AWS::CloudFormation::Interface", {})
    groups = interface.get("ParameterGroups", [])
    grouped = [n for g in groups for n in g.get("Parameters", [])]
    for name in params:
        if grouped.count(name) != 1:
            problems.append(f"parameter {name} is in {grouped.count(name)} parameter groups")
    for name in set(grouped) - set(params):
        problems.append(f"parameter group lists unknown parameter {name}")

    # Statically, in every branch: KMS only as kms:Decrypt on the key parameter.
    for role, r in translated["Resources"].items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        for policy in r["Properties"].get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                actions = as_list(st.get("Action", []))
                if not any(isinstance(a, str) and a.startswith("kms:") for a in actions):
                    continue
                if actions != ["kms:Decrypt"]:
                    problems.append(f"{role}: KMS actions {actions} (only kms:Decrypt, alone)")
                if as_list(st.get("Resource")) != [{"Ref": KEY_PARAMETER}]:
                    on = json.dumps(st.get("Resource"))
                    problems.append(f"{role}: kms:Decrypt on {on}, not the {KEY_PARAMETER} parameter")

    for scenario, values in SCENARIOS.items():
        d = Deployment(translated, values)
        ca, key = d.parameters[CA_SECRET_PARAMETER], d.parameters[KEY_PARAMETER]
        secrets = {v for v in (d.parameters[SASL_SECRET_PARAMETER], ca) if v}
        codec = d.parameters[COMPRESSION_PARAMETER]
        where = f"[{scenario}]"

        for function in KAFKA_FUNCTIONS:
            if function not in d.resources:
                problems.append(f"{where} {function} missing")
                continue
            env = d.environment(function)
            if ca and env.get(CA_ENV) != ca:
                got = env.get(CA_ENV)
                problems.append(f"{where} {function}: {CA_ENV} is {got!r}, not the CA secret")
            if not ca and CA_ENV in env:
                problems.append(f"{where} {function}: {CA_ENV} set without a CA secret")
        for function in PRODUCING_FUNCTIONS:
            env = d.environment(function) if function in d.resources else {}
            if env.get(COMPRESSION_ENV) != codec:
                got = env.get(COMPRESSION_ENV)
                problems.append(
                    f"{where} {function}: {COMPRESSION_ENV} is {got!r},"
                    f" not {codec!r} from {COMPRESSION_PARAMETER}"
                )

        source = d.resources.get(SELF_MANAGED_SOURCE)
        if d.parameters["MskClusterArn"] == "" and source is None:
            problems.append(f"{where} {SELF_MANAGED_SOURCE} missing")
        if source is not None:
            access = as_list(source["Properties"].get("SourceAccessConfigurations", []))
            roots = [a.get("URI") for a in access if a.get("Type") == "SERVER_ROOT_CA_CERTIFICATE"]
            want = [ca] if ca else []
            if roots != want:
                problems.append(
                    f"{where} {SELF_MANAGED_SOURCE}: SERVER_ROOT_CA_CERTIFICATE {roots}, expected {want}"
                )

        roles = [n for n, r in d.resources.items() if r["Type"] == "AWS::IAM::Role"]
        for role in roles:
            read, decrypt = set(), []
            for st in d.statements(role):
                actions = as_list(st.get("Action", []))
                resources = as_list(st.get("Resource", []))
                if "secretsmanager:GetSecretValue" in actions:
                    read.update(json.dumps(r) if not isinstance(r, str) else r for r in resources)
                if "kms:Decrypt" in actions:
                    decrypt.append(st)
            expected = secrets if role in (f + "Role" for f in KAFKA_FUNCTIONS) else set()
            if read != expected:
                problems.append(
                    f"{where} {role}: reads secrets {sorted(read)}, expected {sorted(expected)}"
                )
            if decrypt and not read:
                problems.append(f"{where} {role}: kms:Decrypt in a role that reads no Kafka secret")
            if read and key and not decrypt:
                problems.append(f"{where} {role}: reads a Kafka secret but may not decrypt it")
            for st in decrypt:
                resources = as_list(st.get("Resource", []))
                if not key:
                    problems.append(f"{where} {role}: kms:Decrypt on {resources} but no key given")
                elif resources != [key]:
                    problems.append(f"{where} {role}: kms:Decrypt on {resources}, not exactly {key}")
                via = st.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
                if via != VIA_SECRETS_MANAGER:
                    problems.append(f"{where} {role}: kms:Decrypt not only via Secrets Manager ({via})")
    return problems


POLLER_PARAMETER = "AsyncCommandsPollerMode"
FAILURE_QUEUE = "AsyncCommandsFailureQueue"
ASYNC_SOURCES = ("AsyncCommandsMskSource", SELF_MANAGED_SOURCE)
ERROR_HANDLING = (
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "DestinationConfig",
)
POLLER_SCENARIOS = {
    "self-managed on demand": {},
    "self-managed provisioned": {
        POLLER_PARAMETER: "Provisioned",
        "AsyncCommandsMaximumRetryAttempts": "3",
        "AsyncCommandsMaximumRecordAgeSeconds": "3600",
    },
    "MSK on demand": {"MskClusterArn": MSK},
    "MSK provisioned": {"MskClusterArn": MSK, POLLER_PARAMETER: "Provisioned"},
}


def check_poller_modes(translated):
    """The async commands' event source in each poller mode."""
    problems = []
    mode = translated.get("Parameters", {}).get(POLLER_PARAMETER, {})
    if mode.get("AllowedValues") != ["OnDemand", "Provisioned"] or mode.get("Default") != "OnDemand":
        problems.append(f"{POLLER_PARAMETER} is not OnDemand (default) or Provisioned")
    for scenario, values in POLLER_SCENARIOS.items():
        d = Deployment(translated, values)
        where = f"[{scenario}]"
        provisioned = d.parameters[POLLER_PARAMETER] == "Provisioned"
        sources = [d.resources[s] for s in ASYNC_SOURCES if s in d.resources]
        if len(sources) != 1:
            problems.append(f"{where} {len(sources)} async commands event sources")
        queue_arn = {"Fn::GetAtt": [FAILURE_QUEUE, "Arn"]}
        for source in sources:
            props = source["Properties"]
            if not provisioned:
                for key in ("ProvisionedPollerConfig",) + ERROR_HANDLING:
                    if key in props:
                        problems.append(f"{where} {key} on demand")
                continue
            pollers = props.get("ProvisionedPollerConfig", {})
            if pollers.get("MinimumPollers") != d.parameters["AsyncCommandsMinimumPollers"]:
                problems.append(f"{where} MinimumPollers is {pollers.get('MinimumPollers')!r}")
            if pollers.get("MaximumPollers") != d.parameters["AsyncCommandsMaximumPollers"]:
                problems.append(f"{where} MaximumPollers is {pollers.get('MaximumPollers')!r}")
            if props.get("BisectBatchOnFunctionError") is not True:
                problems.append(f"{where} a failing batch is not halved")
            retries = props.get("MaximumRetryAttempts")
            if retries != d.parameters["AsyncCommandsMaximumRetryAttempts"] or int(retries) < 0:
                problems.append(f"{where} MaximumRetryAttempts is {retries!r}, not the bounded parameter")
            age = props.get("MaximumRecordAgeInSeconds")
            if age != d.parameters["AsyncCommandsMaximumRecordAgeSeconds"]:
                problems.append(f"{where} MaximumRecordAgeInSeconds is {age!r}")
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination != queue_arn:
                problems.append(f"{where} the on-failure destination is {destination!r}")
            if "FunctionResponseTypes" in props:
                problems.append(f"{where} FunctionResponseTypes set (the function reports no partial batches)")
        if (FAILURE_QUEUE in d.resources) != provisioned:
            problems.append(f"{where} {FAILURE_QUEUE} exists: {FAILURE_QUEUE in d.resources}")
        for role, r in d.resources.items():
            if r["Type"] != "AWS::IAM::Role":
                continue
            sends = [
                st for st in d.statements(role)
                if "sqs:SendMessage" in as_list(st.get("Action", []))
                and queue_arn in as_list(st.get("Resource", []))
            ]
            expected = provisioned and role == "AsyncCommandsFunctionRole"
            if bool(sends) != expected:
                problems.append(f"{where} {role} may send to the failure queue: {bool(sends)}")
    return problems


INDEXER = "IndexerFunction"
INDEXER_SOURCE = "IndexerEventSource"
PUBLISHER_SOURCE = "StreamPublisherEventSource"
# What the indexer's filter adds to the publisher's: a tombstone has
# nothing to index.
ACTIVE_ONLY = {"dynamodb": {"NewImage": {"state": {"S": ["active"]}}}}
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
STREAM_ARN = {"Fn::GetAtt": ["Table", "StreamArn"]}
# (action, resource) the indexer's role has, every one of them: the
# writer's calls (storage/src/index/writer.rs) and the stream's reads.
INDEXER_RIGHTS = {
    ("dynamodb:GetItem", json.dumps(TABLE_ARN)),
    ("dynamodb:Query", json.dumps(TABLE_ARN)),
    ("dynamodb:BatchWriteItem", json.dumps(TABLE_ARN)),
    ("dynamodb:UpdateItem", json.dumps(TABLE_ARN)),
    ("dynamodb:ConditionCheckItem", json.dumps(TABLE_ARN)),
    ("dynamodb:DescribeStream", json.dumps(STREAM_ARN)),
    ("dynamodb:GetRecords", json.dumps(STREAM_ARN)),
    ("dynamodb:GetShardIterator", json.dumps(STREAM_ARN)),
    ("dynamodb:ListStreams", json.dumps("*")),
}


def merged(a, b):
    """Pattern `a` with `b`'s fields added (nested objects merged)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def filter_patterns(resource):
    filters = resource.get("Properties", {}).get("FilterCriteria", {}).get("Filters", [])
    try:
        return [json.loads(f["Pattern"]) for f in filters]
    except (KeyError, TypeError, ValueError) as e:
        return [f"unreadable pattern: {e}"]


def check_indexer(translated):
    """The indexer's function, event source and role."""
    problems = []
    resources = translated["Resources"]
    function = resources.get(INDEXER)
    source = resources.get(INDEXER_SOURCE)
    if function is None or source is None:
        return [f"{INDEXER} or {INDEXER_SOURCE} missing"]
    props = function["Properties"]
    for key, want in (("MemorySize", 512), ("Timeout", 60)):
        if props.get(key) != want:
            problems.append(f"{INDEXER}: {key} is {props.get(key)!r}, not {want}")
    src = source["Properties"]
    expected_source = {
        "FunctionName": {"Ref": INDEXER},
        "EventSourceArn": STREAM_ARN,
        "StartingPosition": "TRIM_HORIZON",
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
    }
    for key, want in expected_source.items():
        if src.get(key) != want:
            problems.append(f"{INDEXER_SOURCE}: {key} is {src.get(key)!r}, not {want!r}")
    retries = src.get("MaximumRetryAttempts")
    if not isinstance(retries, int) or not 0 <= retries <= 10000:
        problems.append(f"{INDEXER_SOURCE}: MaximumRetryAttempts {retries!r} is not bounded")
    publisher = filter_patterns(resources.get(PUBLISHER_SOURCE, {}))
    indexer = filter_patterns(source)
    want = [merged(p, ACTIVE_ONLY) for p in publisher if isinstance(p, dict)]
    if not publisher or indexer != want:
        problems.append(
            f"{INDEXER_SOURCE}: filters {indexer}, not the publisher's plus active heads: {want}"
        )
    role = resources.get(INDEXER + "Role")
    if role is None:
        return problems + [f"{INDEXER}Role missing"]
    granted = set()
    for policy in role["Properties"].get("Policies", []):
        for st in statements(policy["PolicyDocument"]):
            if st.get("Effect") != "Allow":
                continue
            for action in as_list(st.get("Action", [])):
                for resource in as_list(st.get("Resource", [])):
                    granted.add((action, json.dumps(resource)))
    for extra in sorted(granted - INDEXER_RIGHTS):
        problems.append(f"{INDEXER}Role: {extra[0]} on {extra[1]} not expected")
    for missing in sorted(INDEXER_RIGHTS - granted):
        problems.append(f"{INDEXER}Role lacks {missing[0]} on {missing[1]}")
    return problems


def check_all(translated):
    return (
        check_iam(translated)
        + check_kafka_wiring(translated)
        + check_poller_modes(translated)
        + check_indexer(translated)
    )


def self_check(translated):
    """The checker must catch these."""
    breakages = {
        "a wildcard action": lambda t: first_kafka_statement(t, "StreamPublisherFunctionRole")[
            "Action"
        ].append("kafka-cluster:*"),
        "the publisher writing another topic": lambda t: retarget(
            t, "StreamPublisherFunctionRole", "DatabaseEventsTopic", "AsyncResponsesTopic"
        ),
        "a topic wildcard": lambda t: retarget(
            t, "AsyncCommandsFunctionRole", "AsyncResponsesTopic", "*"
        ),
        "a broad managed policy": lambda t: t["Resources"]["ReclaimFunctionRole"]["Properties"][
            "ManagedPolicyArns"
        ].append("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"),
        "the CA secret missing from one function": lambda t: env(t, "StreamPublisherFunction").pop(
            CA_ENV, None
        ),
        "the CA secret missing from the self-managed event source": lambda t: drop_access(
            t, SELF_MANAGED_SOURCE, "SERVER_ROOT_CA_CERTIFICATE"
        ),
        "a role that cannot read the CA secret": lambda t: drop_statement(
            t, "CommandIngestionFunctionRole", "KafkaCaSecret"
        ),
        "kms:Decrypt on every key": lambda t: key_statement(t, "AsyncCommandsFunctionRole").update(
            Resource="*"
        ),
        "kms:Decrypt on another key": lambda t: key_statement(t, "StreamPublisherFunctionRole").update(
            Resource=KEY.replace("1234abcd", "99999999")
        ),
        "kms:Decrypt in a role that reads no Kafka secret": lambda t: inline_statements(
            t, "ReclaimFunctionRole"
        ).append(copy.deepcopy(key_statement(t, "AsyncCommandsFunctionRole"))),
        "kms:Decrypt although no key is given": lambda t: retarget_condition(
            t, "CommandIngestionFunctionRole", "DecryptKafkaSecrets", "HasSaslSecret"
        ),
        "kms:Decrypt for any service": lambda t: key_statement(t, "StreamPublisherFunctionRole").pop(
            "Condition"
        ),
        "a fixed codec in one producer": lambda t: env(t, "CommandIngestionFunction").update(
            {COMPRESSION_ENV: "lz4"}
        ),
        "a codec beyond the five": lambda t: t["Parameters"][COMPRESSION_PARAMETER][
            "AllowedValues"
        ].append("brotli"),
        "error handling on demand": lambda t: source_props(t, SELF_MANAGED_SOURCE).update(
            BisectBatchOnFunctionError=True
        ),
        "provisioned retries without a bound": lambda t: source_props(
            t, "AsyncCommandsMskSource"
        ).update(MaximumRetryAttempts={"Fn::If": ["AsyncProvisioned", -1, {"Ref": "AWS::NoValue"}]}),
        "provisioned without a failure destination": lambda t: source_props(
            t, SELF_MANAGED_SOURCE
        ).pop("DestinationConfig"),
        "a failure queue the role cannot write": lambda t: drop_statement(
            t, "AsyncCommandsFunctionRole", "FailureQueue"
        ),
        "a parameter outside the console groups": lambda t: t["Metadata"][
            "AWS::CloudFormation::Interface"
        ]["ParameterGroups"][0]["Parameters"].remove(CA_SECRET_PARAMETER),
        "the indexer indexing tombstones": lambda t: set_pattern(
            t, INDEXER_SOURCE, lambda p: p["dynamodb"].pop("NewImage")
        ),
        "the indexer invoked for every item": lambda t: set_pattern(
            t, INDEXER_SOURCE, lambda p: p["dynamodb"].pop("Keys")
        ),
        "the indexer's filter drifting from the publisher's": lambda t: set_pattern(
            t, PUBLISHER_SOURCE, lambda p: p["eventName"].append("REMOVE")
        ),
        "the indexer failing whole batches": lambda t: source_props(t, INDEXER_SOURCE).pop(
            "FunctionResponseTypes"
        ),
        "the indexer retrying forever": lambda t: source_props(t, INDEXER_SOURCE).update(
            MaximumRetryAttempts=-1
        ),
        "the indexer starting at the stream's end": lambda t: source_props(
            t, INDEXER_SOURCE
        ).update(StartingPosition="LATEST"),
        "the indexer deleting items": lambda t: inline_statements(t, INDEXER + "Role")[0][
            "Action"
        ].append("dynamodb:DeleteItem"),
        "the indexer without its transaction's condition check": lambda t: inline_statements(
            t, INDEXER + "Role"
        )[0]["Action"].remove("dynamodb:ConditionCheckItem"),
        "the indexer reading another table": lambda t: inline_statements(t, INDEXER + "Role")[
            0
        ].update(Resource="arn:aws:dynamodb:us-east-1:123456789012:table/other"),
    }
    for what, breakage in breakages.items():
        broken = copy.deepcopy(translated)
        breakage(broken)
        if not check_all(broken):
            raise SystemExit(f"check_template: the checks miss {what}")
    return len(breakages)


def first_kafka_statement(template, role):
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in statements(policy["PolicyDocument"]):
            if any(str(a).startswith("kafka-cluster:") for a in as_list(st["Action"])):
                st["Action"] = as_list(st["Action"])
                return st
    raise SystemExit(f"no Kafka statement in {role}")


def set_pattern(template, source, edit):
    """Edits the first filter pattern of an event source."""
    f = source_props(template, source)["FilterCriteria"]["Filters"][0]
    pattern = json.loads(f["Pattern"])
    edit(pattern)
    f["Pattern"] = json.dumps(pattern)


def source_props(template, source):
    return template["Resources"][source]["Properties"]


def env(template, function):
    return template["Resources"][function]["Properties"]["Environment"]["Variables"]


def inline_statements(template, role):
    return template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def key_statement(template, role):
    """The kms:Decrypt statement of a role (inside its Fn::If)."""
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in statements(policy["PolicyDocument"]):
            if "kms:Decrypt" in as_list(st.get("Action", [])):
                return st
    raise SystemExit(f"no kms:Decrypt statement in {role}")


def drop_statement(template, role, sid):
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        document["Statement"] = [
            item
            for item in as_list(document["Statement"])
            if sid not in {st.get("Sid") for st in branches(item)}
        ]


def drop_access(template, source, kind):
    text = json.dumps(template["Resources"][source])
    resource = json.loads(text)

    def keep(item):
        return not any(isinstance(b, dict) and b.get("Type") == kind for b in branches(item))

    def walk(x):
        if isinstance(x, list):
            return [walk(v) for v in x if keep(v)]
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        return x

    template["Resources"][source] = walk(resource)


def retarget_condition(template, role, old, new):
    text = json.dumps(template["Resources"][role])
    template["Resources"][role] = json.loads(text.replace(json.dumps(old), json.dumps(new)))


def retarget(template, role, old, new):
    text = json.dumps(template["Resources"][role])
    template["Resources"][role] = json.loads(text.replace("${" + old + "}", "${" + new + "}"))


def run(args, env=None):
    print("+", " ".join(args), flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"check_template: {args[0]} failed ({result.returncode})")


def main():
    # Imported here: check_operations imports this module's helpers.
    import check_operations
    import check_operations_planted

    env = dict(os.environ, AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    env["SAM_CLI_TELEMETRY"] = "0"
    os.environ.update(env)
    out_dir = os.path.join(ROOT, ".local")
    os.makedirs(out_dir, exist_ok=True)
    translated = translate(os.path.join(ROOT, "template.yaml"))
    translated_path = os.path.join(out_dir, "template.translated.json")
    with open(translated_path, "w") as f:
        json.dump(translated, f, indent=1)
    print(f"translated: {len(translated['Resources'])} resources -> .local/template.translated.json")

    # SAM reads Tracing's value itself (the X-Ray policy comes with it), so
    # the traced deployment is a translation of its own.
    # (The translator counts its own usage and warns when nobody publishes
    # the counts; nothing to do with the template.)
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    traced = translate(os.path.join(ROOT, "template.yaml"), {"Tracing": "Active"})
    # Linted as that deployment: Disabled is no Lambda tracing mode (SAM
    # leaves TracingConfig out when it is the value).
    traced["Parameters"]["Tracing"].update(Default="Active", AllowedValues=["Active"])
    traced_path = os.path.join(out_dir, "template.traced.json")
    with open(traced_path, "w") as f:
        json.dump(traced, f, indent=1)

    run([os.path.join(VENV_BIN, "cfn-lint"), translated_path])
    run([os.path.join(VENV_BIN, "cfn-lint"), traced_path])
    run([os.path.join(VENV_BIN, "cfn-lint"), "template.yaml"])
    run([os.path.join(VENV_BIN, "sam"), "validate", "--lint", "--template", "template.yaml"], env)

    planted = self_check(translated)
    problems = check_iam(translated)
    for p in problems:
        print("IAM:", p)
    wiring = check_kafka_wiring(translated)
    for p in wiring:
        print("Kafka:", p)
    pollers = check_poller_modes(translated)
    for p in pollers:
        print("Poller mode:", p)
    indexer = check_indexer(translated)
    for p in indexer:
        print("Indexer:", p)
    operations = check_operations.check(translated, traced)
    for p in operations:
        print("Operations:", p)
    planted += check_operations_planted.self_check(translated, traced)
    if problems or wiring or pollers or indexer or operations:
        raise SystemExit(
            f"check_template: {len(problems)} IAM, {len(wiring)} Kafka wiring,"
            f" {len(pollers)} poller mode, {len(indexer)} indexer,"
            f" {len(operations)} operations problems"
        )
    print("IAM: least privilege holds")
    print(f"Kafka: CA secret, KMS key and compression wired right in {len(SCENARIOS)} deployments")
    print(f"Poller mode: async event source error handling right in {len(POLLER_SCENARIOS)} deployments")
    print("Indexer: function, stream event source (publisher's filter + active heads) and role right")
    print(check_operations.summary())
    print(f"(and the checks catch {planted} planted breakages)")
    print("template: OK")


if __name__ == "__main__":
    main()
