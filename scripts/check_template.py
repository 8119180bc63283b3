"""Offline checks of template.yaml, run by `make template-check` (part of
`make test`):

1. translate the SAM template with aws-sam-translator and lint the result
   with cfn-lint (plain `cfn-lint template.yaml` skips SAM event checks);
2. lint template.yaml itself, and `sam validate --lint`;
3. assert the IAM policies of the translated template: no wildcard
   actions, only the expected managed policies, `*` resources only for
   actions that support no resource scoping, Kafka rights scoped to the
   named topics and consumer group, and each function's Kafka writes
   limited to its own topic (the publisher: Database Events only).

The IAM checker checks itself first against broken copies of the template,
so a checker that cannot fail does not pass.
"""

import copy
import json
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
    # CONTRACT §4, exactly.
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


def translate(template_path):
    with open(template_path) as f:
        template = yaml_parse(f.read())
    # The code is built by `sam build`; translation only needs a location.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/key"

    class NoManagedPolicyLookups:
        def load(self):
            return {}

    return transform(template, {}, NoManagedPolicyLookups())


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
    }
    for what, breakage in breakages.items():
        broken = copy.deepcopy(translated)
        breakage(broken)
        if not check_iam(broken):
            raise SystemExit(f"check_template: the IAM check misses {what}")


def first_kafka_statement(template, role):
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in statements(policy["PolicyDocument"]):
            if any(str(a).startswith("kafka-cluster:") for a in as_list(st["Action"])):
                st["Action"] = as_list(st["Action"])
                return st
    raise SystemExit(f"no Kafka statement in {role}")


def retarget(template, role, old, new):
    text = json.dumps(template["Resources"][role])
    template["Resources"][role] = json.loads(text.replace("${" + old + "}", "${" + new + "}"))


def run(args, env=None):
    print("+", " ".join(args), flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"check_template: {args[0]} failed ({result.returncode})")


def main():
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

    run([os.path.join(VENV_BIN, "cfn-lint"), translated_path])
    run([os.path.join(VENV_BIN, "cfn-lint"), "template.yaml"])
    run([os.path.join(VENV_BIN, "sam"), "validate", "--lint", "--template", "template.yaml"], env)

    self_check(translated)
    problems = check_iam(translated)
    if problems:
        for p in problems:
            print("IAM:", p)
        raise SystemExit(f"check_template: {len(problems)} IAM problems")
    print("IAM: least privilege holds (and the checker catches 4 planted breakages)")
    print("template: OK")


if __name__ == "__main__":
    main()
