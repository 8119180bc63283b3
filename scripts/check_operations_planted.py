"""Breakages planted in copies of the translated template (and of README)
that check_operations must each catch, so that a check that cannot fail
does not pass. Run by check_template.py."""

import copy
import re

from check_operations import FAILURE_QUEUE_ALARM, NAMESPACE, OFFSET_LAG_ALARM, README, XRAY_POLICIES
from check_operations import check, ref


def props(template, name):
    return template["Resources"][name]["Properties"]


def set_dimension(template, alarm_name, value):
    props(template, alarm_name)["Dimensions"][0]["Value"] = value


def edit_dashboard(template, old, new):
    body = props(template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    if old not in body[0]:
        raise SystemExit(f"check_operations: the dashboard has no {old!r} to break")
    body[0] = body[0].replace(old, new, 1)


def drop_dashboard_line(template, needle):
    body = props(template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    lines = body[0].split("\n")
    kept = [line for line in lines if needle not in line]
    if len(kept) == len(lines):
        raise SystemExit(f"check_operations: the dashboard has no line with {needle!r}")
    # Keep the JSON valid: the line before a closing bracket loses its comma.
    text = "\n".join(kept)
    body[0] = re.sub(r",(\s*\])", r"\1", text)


def self_check(translated, traced):
    """The checks must catch these."""
    both = {
        "an alarm on the wrong function": lambda t, _: set_dimension(
            t, "PublisherIteratorAgeAlarm", ref("IndexerFunction")
        ),
        "a hard-coded threshold": lambda t, _: props(t, "IndexLagAlarm").update(Threshold=10000),
        "the topic not wired to one alarm": lambda t, _: props(t, "ReclaimThrottlesAlarm").pop(
            "AlarmActions"
        ),
        "no OK notification": lambda t, _: props(t, "PoisonRecordsAlarm").pop("OKActions"),
        "notifications without a topic": lambda t, _: props(t, "CommandIngestionErrorsAlarm").update(
            AlarmActions=[ref("AlarmTopicArn")]
        ),
        "poison records read from AWS/Lambda": lambda t, _: props(t, "PoisonRecordsAlarm").update(
            Namespace="AWS/Lambda"
        ),
        "index lag from a fixed namespace": lambda t, _: props(t, "IndexLagAlarm").update(
            Namespace=NAMESPACE
        ),
        "a function without an errors alarm": lambda t, _: t["Resources"].pop("IndexerErrorsAlarm"),
        "offset lag for the MSK source only": lambda t, _: t["Resources"][OFFSET_LAG_ALARM].update(
            Condition="UseMsk"
        ),
        "offset lag on the function that does not consume Kafka": lambda t, _: set_dimension(
            t, OFFSET_LAG_ALARM, ref("CommandIngestionFunction")
        ),
        "the dead-letter alarm on another queue": lambda t, _: set_dimension(
            t, "PublisherDeadLetterQueueAlarm", {"Fn::GetAtt": ["PublisherDeadLetterQueue", "Arn"]}
        ),
        "a failure queue alarm without the queue": lambda t, _: t["Resources"][FAILURE_QUEUE_ALARM].pop(
            "Condition"
        ),
        "missing data breaching": lambda t, _: props(t, "StreamPublisherErrorsAlarm").update(
            TreatMissingData="breaching"
        ),
        "iterator age averaged": lambda t, _: props(t, "IndexerIteratorAgeAlarm").update(Statistic="Average"),
        "the 5xx rate over another API": lambda t, _: props(t, "ApiServerErrorsAlarm")["Metrics"][1][
            "MetricStat"
        ]["Metric"]["Dimensions"][0].update(Value=ref("HttpApiIntegration")),
        "the 5xx count averaged": lambda t, _: props(t, "ApiServerErrorsAlarm")["Metrics"][0][
            "MetricStat"
        ].update(Stat="Average"),
        "the 5xx alarm on the error count": lambda t, _: props(t, "ApiServerErrorsAlarm")["Metrics"][
            2
        ].update(Expression="errors"),
        "the dashboard without the 5xx rate": lambda t, _: drop_dashboard_line(t, '"id": "rate"'),
        "an alarm outside the table": lambda t, _: t["Resources"].update(
            ExtraAlarm=copy.deepcopy(t["Resources"]["IndexLagAlarm"])
        ),
        "a threshold that is no number": lambda t, _: t["Parameters"]["IndexLagThreshold"].update(
            Type="String", Default="high"
        ),
        "a function without METRICS_NAMESPACE": lambda t, _: props(t, "ReclaimFunction")["Environment"][
            "Variables"
        ].pop("METRICS_NAMESPACE"),
        "a fixed METRICS_NAMESPACE": lambda t, _: props(t, "IndexerFunction")["Environment"][
            "Variables"
        ].update(METRICS_NAMESPACE=NAMESPACE),
        "tracing on by default": lambda t, _: props(t, "StreamPublisherFunction").update(
            TracingConfig={"Mode": "Active"}
        ),
        "one function not traced": lambda _, a: props(a, "ReclaimFunction").pop("TracingConfig"),
        "a traced function without the X-Ray policy": lambda _, a: props(a, "IndexerFunctionRole").update(
            ManagedPolicyArns=[
                p for p in props(a, "IndexerFunctionRole")["ManagedPolicyArns"] if p not in XRAY_POLICIES
            ]
        ),
        "the dashboard without index lag": lambda t, _: drop_dashboard_line(t, '"IndexLag"'),
        "the dashboard on a fixed namespace": lambda t, _: edit_dashboard(
            t, '["${MetricsNamespace}", "Commits"', f'["{NAMESPACE}", "Commits"'
        ),
        "the dashboard without a p99": lambda t, _: edit_dashboard(
            t,
            '{"stat": "p99", "label": "ResponseLatency p99"}',
            '{"stat": "p90", "label": "ResponseLatency p90"}',
        ),
        "the dashboard without failed commands": lambda t, _: drop_dashboard_line(t, '"Outcome", "failed"'),
        "the dashboard without the failure queue": lambda t, _: drop_dashboard_line(t, "${FailureQueueName}"),
        "the dashboard naming an unknown resource": lambda t, _: edit_dashboard(
            t, "${ReclaimFunction}", "${ReclaimFunktion}"
        ),
    }
    with open(README) as f:
        readme = f.read()
    for what, (old, new) in {
        "an alarm README does not explain": ("| `index-lag` |", "| index lag |"),
        "a threshold README does not mention": ("`IndexLagThreshold`", "the lag threshold"),
        "the errors alarms unexplained": ("| `<function>-errors` (all five) |", "| errors |"),
    }.items():
        if old not in readme:
            raise SystemExit(f"check_operations: README has no {old!r} to break")
        if not check(translated, traced, readme.replace(old, new)):
            raise SystemExit(f"check_operations: the checks miss {what}")
    for what, breakage in both.items():
        broken, broken_traced = copy.deepcopy(translated), copy.deepcopy(traced)
        try:
            breakage(broken, broken_traced)
        except (KeyError, IndexError, TypeError) as e:
            # The template already lacks what the breakage removes.
            raise SystemExit(f"check_operations: cannot plant {what}: the template has no {e}")
        if not check(broken, broken_traced):
            raise SystemExit(f"check_operations: the checks miss {what}")
    return len(both) + 3
