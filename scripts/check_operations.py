"""The operations side of template.yaml, checked by check_template.py:

1. the parameters: AlarmTopicArn (empty by default), MetricsNamespace,
   Tracing (Disabled or Active) and one numeric threshold per alarm;
2. every alarm against the table below (namespace, metric, statistic,
   dimensions naming the right resource, threshold from its parameter,
   missing data not breaching, a description), no alarm outside the table,
   Errors and Throttles alarms for every function; in several deployments:
   notifications to AlarmTopicArn exactly when it is given, the OffsetLag
   alarm on the function the Kafka event source invokes (MSK and
   self-managed alike), the iterator age alarms on exactly the table
   stream's consumers, the failure queue's alarm exactly when the queue
   exists;
3. METRICS_NAMESPACE from the parameter in every function;
4. tracing: no tracing config and no X-Ray policy when Disabled (the
   default); with Active, every function traced and its role given the
   X-Ray write policy and nothing else;
5. the dashboard: a body that parses, names only known variables, and
   shows every alarm's metric and every function's own metrics (the
   metrics contract, docs/metrics.md), latencies at p50 and p99 and the
   async commands by each outcome;
6. README "Operations" explains every alarm and threshold parameter.

Breakages planted in copies of the template and README must each be
caught: scripts/check_operations_planted.py.
"""

import json
import os
import re

from check_template import MSK, Deployment

TOPIC = "arn:aws:sns:eu-west-1:123456789012:evidentsource-alarms"
NAMESPACE = "EvidentSource"
FUNCTIONS = (
    "CommandIngestionFunction",
    "StreamPublisherFunction",
    "IndexerFunction",
    "AsyncCommandsFunction",
    "ReclaimFunction",
)
EMF = {"Ref": "MetricsNamespace"}
XRAY_POLICIES = {
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}
FAILURE_QUEUE_ALARM = "AsyncCommandsFailureQueueAlarm"
OFFSET_LAG_ALARM = "AsyncCommandsOffsetLagAlarm"


def ref(name):
    return {"Ref": name}


def alarm(ns, metric, dims, stat, threshold, condition=None):
    return {
        "Namespace": ns,
        "MetricName": metric,
        "Dimensions": dims,
        "Statistic": stat,
        "Threshold": threshold,
        "Condition": condition,
    }


def lambda_alarm(metric, function, stat, threshold):
    return alarm("AWS/Lambda", metric, {"FunctionName": ref(function)}, stat, threshold)


def queue_alarm(queue, condition=None):
    dims = {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}}
    return alarm(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum",
        "DeadLetterQueueDepthThreshold", condition,
    )


# Every alarm the template may have (README "Operations" documents each).
ALARMS = {
    "PublisherIteratorAgeAlarm": lambda_alarm(
        "IteratorAge", "StreamPublisherFunction", "Maximum", "PublisherIteratorAgeThresholdMs"
    ),
    "IndexerIteratorAgeAlarm": lambda_alarm(
        "IteratorAge", "IndexerFunction", "Maximum", "IndexerIteratorAgeThresholdMs"
    ),
    "PublisherDeadLetterQueueAlarm": queue_alarm("PublisherDeadLetterQueue"),
    FAILURE_QUEUE_ALARM: queue_alarm("AsyncCommandsFailureQueue", "AsyncProvisioned"),
    # The metrics contract: EMF metrics on the FunctionName dimension set.
    "PoisonRecordsAlarm": alarm(
        EMF, "PoisonRecords", {"FunctionName": ref("StreamPublisherFunction")}, "Sum",
        "PoisonRecordsThreshold",
    ),
    "IndexLagAlarm": alarm(
        EMF, "IndexLag", {"FunctionName": ref("IndexerFunction")}, "Maximum", "IndexLagThreshold"
    ),
    OFFSET_LAG_ALARM: lambda_alarm(
        "OffsetLag", "AsyncCommandsFunction", "Maximum", "AsyncCommandsOffsetLagThreshold"
    ),
    # Metric math: the sum of 5xx over the sum of requests.
    "ApiServerErrorsAlarm": dict(
        alarm(
            "AWS/ApiGateway", "5xx", {"ApiId": ref("HttpApi"), "Stage": ref("HttpApiStage")},
            "Sum", "ApiServerErrorRateThreshold",
        ),
        Ratio={"errors": "5xx", "requests": "Count"},
    ),
}
RATE = "IF(requests > 0, FILL(errors, 0) / requests, 0)"
for _function in FUNCTIONS:
    _short = _function[: -len("Function")]
    ALARMS[_short + "ErrorsAlarm"] = lambda_alarm("Errors", _function, "Sum", "FunctionErrorsThreshold")
    ALARMS[_short + "ThrottlesAlarm"] = lambda_alarm(
        "Throttles", _function, "Sum", "FunctionThrottlesThreshold"
    )
THRESHOLDS = sorted({a["Threshold"] for a in ALARMS.values()})
# The Errors and Throttles alarms' names: README explains them in one row each.
FUNCTION_ALARM_NAMES = {
    re.sub(r"(?<!^)(?=[A-Z])", "-", f[: -len("Function")]).lower() + "-" + kind
    for f in FUNCTIONS
    for kind in ("errors", "throttles")
}

# The functions' own metrics the dashboard shows (the metrics contract).
DASHBOARD_EMF = {
    "CommandIngestionFunction": [
        "Commits", "CommitRetries", "ConditionFailures", "ClientErrors", "ServerErrors",
        "CommitLatency", "RequestLatency",
    ],
    "StreamPublisherFunction": [
        "RecordsPublished", "RecordsResent", "PoisonRecords", "FailedTransient",
        "FailedPermanent", "BatchDuration", "NewestRecordAge",
    ],
    "AsyncCommandsFunction": ["Commands", "CommandsRejected", "ResponseLatency"],
    "IndexerFunction": ["EventsIndexed", "IndexLag", "IndexWriteUnits"],
    "ReclaimFunction": ["DatabasesReclaimed", "ItemsReclaimed"],
}
LATENCIES = {
    "CommandIngestionFunction": ["CommitLatency", "RequestLatency"],
    "StreamPublisherFunction": ["BatchDuration", "NewestRecordAge"],
    "AsyncCommandsFunction": ["ResponseLatency"],
}
# One record per invocation has one Outcome (the batch's worst), so the
# dashboard splits out only "failed" (batches delivered again); exact counts
# of answered and rejected commands are Commands and CommandsRejected.
OUTCOMES = ["failed"]

# Deployments for the alarms' wiring: (values, topic given).
SCENARIOS = {
    "no topic, self-managed, on demand": {},
    "a topic, self-managed, provisioned": {
        "AlarmTopicArn": TOPIC,
        "AsyncCommandsPollerMode": "Provisioned",
    },
    "a topic, MSK, on demand": {"AlarmTopicArn": TOPIC, "MskClusterArn": MSK},
    "no topic, MSK, provisioned": {"MskClusterArn": MSK, "AsyncCommandsPollerMode": "Provisioned"},
}


def of_type(template, kind):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def check_parameters(translated):
    problems = []
    params = translated.get("Parameters", {})
    fixed = {
        "AlarmTopicArn": {"Type": "String", "Default": ""},
        "MetricsNamespace": {"Type": "String", "Default": NAMESPACE},
        "Tracing": {"Type": "String", "Default": "Disabled", "AllowedValues": ["Disabled", "Active"]},
    }
    for name, want in fixed.items():
        got = {k: params.get(name, {}).get(k) for k in want}
        if got != want:
            problems.append(f"parameter {name} is {got}, not {want}")
    for name in THRESHOLDS:
        p = params.get(name, {})
        if p.get("Type") != "Number" or not isinstance(p.get("Default"), (int, float)):
            problems.append(f"threshold parameter {name}: not a Number with a default ({p})")
    return problems


def check_metric(name, props, want, stat_key="Statistic"):
    """One metric: namespace, name, statistic and exactly these dimensions."""
    problems = []
    for key, wanted in (("Namespace", want["Namespace"]), ("MetricName", want["MetricName"]),
                        (stat_key, want["Statistic"])):
        if props.get(key) != wanted:
            problems.append(f"{name}: {key} is {props.get(key)!r}, not {wanted!r}")
    dims = {d.get("Name"): d.get("Value") for d in props.get("Dimensions", [])}
    if dims != want["Dimensions"] or len(props.get("Dimensions", [])) != len(dims):
        problems.append(f"{name}: dimensions {json.dumps(dims)}, not {json.dumps(want['Dimensions'])}")
    return problems


def check_ratio(name, props, want):
    """RATE over two summed metrics with the same dimensions."""
    problems = []
    queries = {q.get("Id"): q for q in props.get("Metrics", [])}
    for key in ("Namespace", "MetricName", "Statistic", "Dimensions"):
        if key in props:
            problems.append(f"{name}: {key} beside metric math")
    if set(queries) != set(want["Ratio"]) | {"rate"}:
        problems.append(f"{name}: metric math ids {sorted(queries)}")
        return problems
    for qid, metric in want["Ratio"].items():
        stat = queries[qid].get("MetricStat", {})
        part = dict(want, MetricName=metric)
        metric_stat = dict(stat.get("Metric", {}), Stat=stat.get("Stat"))
        problems += check_metric(f"{name}.{qid}", metric_stat, part, "Stat")
        if queries[qid].get("ReturnData") is not False:
            problems.append(f"{name}.{qid}: returned as the alarm's data")
    rate = queries["rate"]
    if rate.get("Expression") != RATE or rate.get("ReturnData") is not True:
        problems.append(f"{name}: the expression is {rate.get('Expression')!r}, not {RATE!r}")
    return problems


def check_alarms(translated):
    problems = []
    alarms = of_type(translated, "AWS::CloudWatch::Alarm")
    for name in sorted(set(alarms) - set(ALARMS)):
        problems.append(f"alarm {name} is not in check_operations.ALARMS (nor README Operations)")
    for name, want in ALARMS.items():
        if name not in alarms:
            problems.append(f"alarm {name} missing")
            continue
        resource = alarms[name]
        props = resource["Properties"]
        if resource.get("Condition") != want["Condition"]:
            problems.append(f"{name}: condition {resource.get('Condition')!r}, not {want['Condition']!r}")
        if "Ratio" in want:
            problems += check_ratio(name, props, want)
        else:
            problems += check_metric(name, props, want)
            if "Metrics" in props:
                problems.append(f"{name}: metric math, not the metric in the table")
        if props.get("Threshold") != ref(want["Threshold"]):
            got = props.get("Threshold")
            problems.append(f"{name}: threshold {got!r}, not the {want['Threshold']} parameter")
        if props.get("ComparisonOperator") != "GreaterThanThreshold":
            problems.append(f"{name}: {props.get('ComparisonOperator')}")
        # Counts and gauges alike: no data is no trouble (no invocations,
        # no requests, no messages).
        if props.get("TreatMissingData") != "notBreaching":
            problems.append(f"{name}: missing data is {props.get('TreatMissingData')!r}")
        if len(str(props.get("AlarmDescription", ""))) < 80:
            problems.append(f"{name}: no description of what it means and what to do")
    # Every function, including one added later, has both alarms.
    for function in of_type(translated, "AWS::Lambda::Function"):
        for metric in ("Errors", "Throttles"):
            covered = [
                n for n, a in alarms.items()
                if a["Properties"].get("MetricName") == metric
                and a["Properties"].get("Namespace") == "AWS/Lambda"
                and {"Name": "FunctionName", "Value": ref(function)} in a["Properties"].get("Dimensions", [])
            ]
            if not covered:
                problems.append(f"{function}: no {metric} alarm")
    return problems


def check_wiring(translated):
    """Notifications, and the alarms that follow the event sources and
    queues the conditions create."""
    problems = []
    for scenario, values in SCENARIOS.items():
        d = Deployment(translated, values)
        where = f"[{scenario}]"
        topic = d.parameters["AlarmTopicArn"]
        alarms = {n: r for n, r in d.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
        for name, a in alarms.items():
            props = a["Properties"]
            for key in ("AlarmActions", "OKActions"):
                got = props.get(key, [])
                if got != ([topic] if topic else []):
                    problems.append(f"{where} {name}: {key} {got}, topic {topic!r}")
            if props.get("InsufficientDataActions"):
                problems.append(f"{where} {name}: notifies on insufficient data")
        sources = {n: r for n, r in d.resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
        kafka = {
            json.dumps(s["Properties"]["FunctionName"]) for s in sources.values()
            if "SelfManagedEventSource" in s["Properties"] or s["Properties"].get("EventSourceArn") == MSK
        }
        lag = alarms.get(OFFSET_LAG_ALARM)
        lag_dims = lag["Properties"].get("Dimensions", []) if lag else []
        lag_fn = {json.dumps(dim["Value"]) for dim in lag_dims}
        if not kafka or lag_fn != kafka:
            problems.append(
                f"{where} OffsetLag alarm on {sorted(lag_fn)}, the Kafka source invokes {sorted(kafka)}"
            )
        stream = {
            json.dumps(s["Properties"]["FunctionName"]) for s in sources.values()
            if s["Properties"].get("EventSourceArn") == {"Fn::GetAtt": ["Table", "StreamArn"]}
        }
        aged = {
            json.dumps(dim["Value"]) for a in alarms.values()
            if a["Properties"].get("MetricName") == "IteratorAge"
            for dim in a["Properties"].get("Dimensions", [])
        }
        if aged != stream:
            problems.append(
                f"{where} iterator age alarms on {sorted(aged)}, stream consumers {sorted(stream)}"
            )
        has_queue = "AsyncCommandsFailureQueue" in d.resources
        if (FAILURE_QUEUE_ALARM in alarms) != has_queue:
            problems.append(f"{where} failure queue exists: {has_queue}, its alarm: {not has_queue}")
    return problems


def check_namespace(translated):
    problems = []
    d = Deployment(translated, {"MetricsNamespace": "Custom/Ops"})
    for name, r in d.resources.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        got = d.environment(name).get("METRICS_NAMESPACE")
        if got != "Custom/Ops":
            problems.append(f"{name}: METRICS_NAMESPACE is {got!r}, not the MetricsNamespace parameter")
    return problems


def check_tracing(translated, traced):
    """`translated` with Tracing at its default (Disabled), `traced` with Active."""
    problems = []
    for name, f in of_type(translated, "AWS::Lambda::Function").items():
        if "TracingConfig" in f["Properties"]:
            problems.append(f"{name}: traced although Tracing is Disabled")
    for name, role in of_type(translated, "AWS::IAM::Role").items():
        xray = XRAY_POLICIES & set(role["Properties"].get("ManagedPolicyArns", []))
        if xray:
            problems.append(f"{name}: {sorted(xray)} although Tracing is Disabled")
    d = Deployment(traced, {"Tracing": "Active"})
    functions = of_type(traced, "AWS::Lambda::Function")
    if set(functions) != set(FUNCTIONS):
        problems.append(f"traced functions {sorted(functions)}, expected {sorted(FUNCTIONS)}")
    for name in functions:
        mode = d.resources[name]["Properties"].get("TracingConfig", {}).get("Mode")
        if mode != "Active":
            problems.append(f"{name}: TracingConfig mode {mode!r} with Tracing Active")
        role = traced["Resources"].get(name + "Role", {}).get("Properties", {})
        plain = translated["Resources"].get(name + "Role", {}).get("Properties", {})
        added = set(role.get("ManagedPolicyArns", [])) - set(plain.get("ManagedPolicyArns", []))
        if len(added) != 1 or not added <= XRAY_POLICIES:
            problems.append(f"{name}Role: with Tracing Active it gains {sorted(added)}, not one X-Ray policy")
        if role.get("Policies") != plain.get("Policies"):
            problems.append(f"{name}Role: inline policies change with Tracing")
    return problems


VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def marker(value):
    """How the dashboard body, its ${...} read as <...>, names a template
    value: <Name> for a Ref, <Name.Attr> for a GetAtt."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "<" + value["Ref"] + ">"
    if "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    return json.dumps(value)


def dashboard_metrics(translated):
    """(problems, {(namespace, metric, dims, stat)}) of the one dashboard."""
    dashboards = of_type(translated, "AWS::CloudWatch::Dashboard")
    if len(dashboards) != 1:
        return [f"{len(dashboards)} dashboards, expected 1"], set(), {}
    (name, dashboard), = dashboards.items()
    sub = dashboard["Properties"].get("DashboardBody", {}).get("Fn::Sub")
    text, variables = sub if isinstance(sub, list) else (sub, {})
    if not isinstance(text, str):
        return [f"{name}: DashboardBody is not an Fn::Sub of text"], set(), {}
    problems = []
    known = set(translated.get("Parameters", {})) | set(variables)
    for v in VARIABLE.findall(text):
        base = v.split(".")[0]
        if not (v.startswith("AWS::") or base in known or base in translated["Resources"]):
            problems.append(f"{name}: unknown variable ${{{v}}}")
    # A Sub variable standing for a conditional value counts as the value
    # it has when the condition holds (the failure queue).
    aliases = {}
    for key, value in variables.items():
        if isinstance(value, dict) and "Fn::If" in value:
            aliases[marker(value["Fn::If"][1])] = "<" + key + ">"
    try:
        widgets = json.loads(VARIABLE.sub(lambda m: "<" + m.group(1) + ">", text))["widgets"]
    except (ValueError, KeyError, TypeError) as e:
        return problems + [f"{name}: body does not parse: {e}"], set(), aliases
    shown = set()
    for w in widgets:
        props = w.get("properties", {})
        if w.get("type") != "metric":
            continue
        if props.get("region") != "<AWS::Region>":
            problems.append(f"{name}: widget {props.get('title')!r} region {props.get('region')!r}")
        for m in props.get("metrics", []):
            options = m[-1] if isinstance(m[-1], dict) else {}
            parts = m[:-1] if options else m
            if not parts and "expression" in options:
                shown.add(("expression", options["expression"], frozenset(), None))
                continue
            if len(parts) < 2 or len(parts) % 2 or "." in parts:
                problems.append(f"{name}: metric {m} (write each out, no '.' shorthand)")
                continue
            dims = frozenset(zip(parts[2::2], parts[3::2]))
            shown.add((parts[0], parts[1], dims, options.get("stat", props.get("stat"))))
    return problems, shown, aliases


def check_dashboard(translated):
    problems, shown, aliases = dashboard_metrics(translated)
    if not shown:
        return problems + ["the dashboard shows no metrics"]
    seen = {(ns, metric, dims) for ns, metric, dims, _ in shown}
    ns = "<MetricsNamespace>"

    def has(namespace, metric, dims, stat=None):
        if stat is None:
            return (namespace, metric, frozenset(dims.items())) in seen
        return (namespace, metric, frozenset(dims.items()), stat) in shown

    for name, a in ALARMS.items():
        dims = {k: aliases.get(marker(v), marker(v)) for k, v in a["Dimensions"].items()}
        namespace = marker(a["Namespace"])
        for metric in a.get("Ratio", {a["MetricName"]: a["MetricName"]}).values():
            if not has(namespace, metric, dims):
                problems.append(f"the dashboard lacks {name}'s metric {metric} {dims}")
        if "Ratio" in a and not has("expression", RATE, {}):
            problems.append(f"the dashboard lacks {name}'s expression {RATE}")
    for function, metrics in DASHBOARD_EMF.items():
        dims = {"FunctionName": f"<{function}>"}
        for metric in metrics:
            if not has(ns, metric, dims):
                problems.append(f"the dashboard lacks {function}'s {metric} in {ns}")
        for metric in LATENCIES.get(function, []):
            for stat in ("p50", "p99"):
                if not has(ns, metric, dims, stat):
                    problems.append(f"the dashboard lacks {function}'s {metric} at {stat}")
    for outcome in OUTCOMES:
        dims = {"FunctionName": "<AsyncCommandsFunction>", "Outcome": outcome}
        if not has(ns, "Commands", dims):
            problems.append(f"the dashboard lacks the async commands {outcome}")
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            if not has("AWS/Lambda", metric, {"FunctionName": f"<{function}>"}):
                problems.append(f"the dashboard lacks {function}'s {metric}")
    return problems


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def check_readme(translated, readme):
    """README "Operations" names every alarm (the functions' Errors and
    Throttles alarms as `<function>-errors` / `-throttles`) and every
    threshold parameter."""
    start = readme.find("\n## Operations\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start:end] if start >= 0 else ""
    if not section:
        return ["README has no Operations section"]
    problems = []
    for name, a in of_type(translated, "AWS::CloudWatch::Alarm").items():
        title = a["Properties"].get("AlarmName", {}).get("Fn::Sub", "")
        prefix = "${AWS::StackName}-"
        if not title.startswith(prefix):
            problems.append(f"{name}: AlarmName {title!r} is not <stack>-<name>")
            continue
        short = title[len(prefix):]
        generic = re.sub(r"^.*-(errors|throttles)$", r"<function>-\1", short)
        if short not in FUNCTION_ALARM_NAMES and f"`{short}`" not in section:
            problems.append(f"README Operations does not explain {short}")
        if short in FUNCTION_ALARM_NAMES and f"`{generic}`" not in section:
            problems.append(f"README Operations does not explain {generic}")
    for parameter in THRESHOLDS + ["AlarmTopicArn", "MetricsNamespace", "Tracing"]:
        if f"`{parameter}" not in section:
            problems.append(f"README Operations does not mention {parameter}")
    return problems


def check(translated, traced, readme=None):
    if readme is None:
        with open(README) as f:
            readme = f.read()
    return (
        check_parameters(translated)
        + check_alarms(translated)
        + check_wiring(translated)
        + check_namespace(translated)
        + check_tracing(translated, traced)
        + check_dashboard(translated)
        + check_readme(translated, readme)
    )


def summary():
    return f"Operations: {len(ALARMS)} alarms, notifications, namespace, tracing and dashboard right"
