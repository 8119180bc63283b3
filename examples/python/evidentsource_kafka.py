"""What both Python examples share: the protobuf modules, the topic names,
header access and the command/response constants.

The protobuf modules are generated at start-up from the repository's
`proto/` folder with grpcio-tools' bundled protoc, into a temporary folder:
the examples then always match the .proto files they sit next to, and
nothing generated is committed. Point EVIDENTSOURCE_PROTO_DIR elsewhere to
use another copy of the schema.
"""

import importlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.environ.get(
    "EVIDENTSOURCE_PROTO_DIR", os.path.join(HERE, "..", "..", "proto")
)
PROTO_FILES = [
    "evidentsource/v1/database.proto",
    "evidentsource/v1/commands.proto",
    "io/cloudevents/v1/cloudevents.proto",
]

# Topic names: the contract's defaults, overridden by the same variables
# the suite reads (`make dev` writes them to .local/stack.env).
DATABASE_EVENTS_TOPIC = os.environ.get(
    "DATABASE_EVENTS_KAFKA_TOPIC", "evidentsource-database-events"
)
ASYNC_COMMANDS_TOPIC = os.environ.get(
    "ASYNC_COMMANDS_KAFKA_TOPIC", "evidentsource-async-commands"
)
ASYNC_RESPONSES_TOPIC = os.environ.get(
    "ASYNC_RESPONSES_KAFKA_TOPIC", "evidentsource-async-responses"
)

CREATED = "com.evidentsource.database.created.v1"
TRANSACTED = "com.evidentsource.batch.transacted.v1"
DELETED = "com.evidentsource.database.deleted.v1"
EVENT_KINDS = {CREATED: "created", TRANSACTED: "transacted", DELETED: "deleted"}

CREATE_DATABASE = "com.evidentsource.command.create-database.v1"
TRANSACT = "com.evidentsource.command.transact.v1"
DELETE_DATABASE = "com.evidentsource.command.delete-database.v1"
SUCCEEDED = "com.evidentsource.command.succeeded.v1"
FAILED = "com.evidentsource.command.failed.v1"


def brokers():
    value = os.environ.get("KAFKA_BROKERS", "")
    found = [b.strip() for b in value.split(",") if b.strip()]
    if not found:
        sys.exit("KAFKA_BROKERS is not set (e.g. `set -a; . .local/stack.env; set +a`)")
    return found


def load_protos():
    """Generates and imports the modules.

    Returns (database_pb2, commands_pb2, cloudevents_pb2).
    """
    out = tempfile.mkdtemp(prefix="evidentsource-proto-")
    import grpc_tools

    # protoc needs google/protobuf/timestamp.proto: grpcio-tools ships it.
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{well_known}",
         f"--python_out={out}", *PROTO_FILES],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"protoc failed on {PROTO_DIR}:\n{done.stderr}")
    # The CloudEvents schema's package path starts with `io`, which is also
    # Python's standard `io` module: `import io.cloudevents` cannot work.
    # Move it to `io_cloudevents` and point the generated imports there
    # (the descriptors keep the .proto file names, so nothing else changes).
    os.rename(os.path.join(out, "io"), os.path.join(out, "io_cloudevents"))
    for folder, _, files in os.walk(out):
        for name in files:
            if name.endswith("_pb2.py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    code = f.read()
                with open(path, "w") as f:
                    f.write(code.replace("from io.cloudevents.", "from io_cloudevents.cloudevents."))
    sys.path.insert(0, out)
    database_pb2 = importlib.import_module("evidentsource.v1.database_pb2")
    commands_pb2 = importlib.import_module("evidentsource.v1.commands_pb2")
    cloudevents_pb2 = importlib.import_module("io_cloudevents.cloudevents.v1.cloudevents_pb2")
    return database_pb2, commands_pb2, cloudevents_pb2


def header_map(message):
    """kafka-python gives headers as a list of (str, bytes); a name may repeat.

    Returns {name: [values]} so that a repeated header is noticed instead of
    silently overwritten.
    """
    found = {}
    for name, value in message.headers or []:
        found.setdefault(name, []).append(value)
    return found


def single(headers, name):
    """The header's value as text, None when absent; error when repeated."""
    values = headers.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise ValueError(f"header {name} appears {len(values)} times")
    return values[0].decode("utf-8") if values[0] is not None else ""


def fingerprint(message):
    """What a byte-identical duplicate shares: key, headers and value."""
    return (message.key, tuple(message.headers or []), message.value)


def error_code_name(commands_pb2, code):
    return commands_pb2.ErrorCode.Name(code)


def response_summary(commands_pb2, headers, value):
    """Decodes an async response into the summary both examples report."""
    response = commands_pb2.CommandResponse()
    response.ParseFromString(value)
    result = response.WhichOneof("result")
    entry = {
        "type": single(headers, "ce_type"),
        "subject": single(headers, "ce_subject"),
        "result": result,
        "code": None,
        "basis": None,
        "revision": None,
    }
    if result == "database":
        entry["basis"] = response.database.basis
        entry["revision"] = response.database.revision
    elif result == "batch_summary":
        entry["basis"] = response.batch_summary.basis
        entry["revision"] = response.batch_summary.revision
    elif result == "error":
        entry["code"] = error_code_name(commands_pb2, response.error.code)
    return entry
