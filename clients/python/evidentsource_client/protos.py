"""The suite's protobuf modules, generated from the repository's `proto/`
folder with grpcio-tools' bundled protoc into a temporary folder, once per
process: they then always match the .proto files of the suite they talk to,
and nothing generated is committed. EVIDENTSOURCE_PROTO_DIR (or the
`proto_dir` argument) points at another copy of the schema."""

import importlib
import os
import subprocess
import sys
import tempfile

# clients/python/evidentsource_client -> the repository's proto/.
DEFAULT_PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "..", "..", "..", "proto")
PROTO_FILES = [
    "evidentsource/v1/database.proto",
    "evidentsource/v1/commands.proto",
    "io/cloudevents/v1/cloudevents.proto",
]

_loaded = None


def load_protos(proto_dir=None):
    """Generates and imports the modules.

    Returns (database_pb2, commands_pb2, cloudevents_pb2). Raises
    RuntimeError naming the folder when protoc fails on it.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    proto_dir = proto_dir or os.environ.get("EVIDENTSOURCE_PROTO_DIR", DEFAULT_PROTO_DIR)
    out = tempfile.mkdtemp(prefix="evidentsource-proto-")
    import grpc_tools

    # protoc needs google/protobuf/timestamp.proto: grpcio-tools ships it.
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}",
         f"--python_out={out}", *PROTO_FILES],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed on {proto_dir}:\n{done.stderr}")
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
    _loaded = (
        importlib.import_module("evidentsource.v1.database_pb2"),
        importlib.import_module("evidentsource.v1.commands_pb2"),
        importlib.import_module("io_cloudevents.cloudevents.v1.cloudevents_pb2"),
    )
    return _loaded
