"""An independent gRPC client for the coordinator: Python's grpcio (BoringSSL),
none of fedseg's own code.

Reads a JSON plan on stdin and prints one JSON object, {"grpcio": version,
"results": {name: result}}, with a result per call of the plan:

    {"target": "127.0.0.1:PORT", "server_name": "coordinator",
     "ca": "pki/ca.crt", "proto": "proto",
     "calls": [{"name": "participant", "call": "health",
                "cert": "pki/bank-a.crt", "key": "pki/bank-a.key"},
               {"name": "auditor", "call": "read_journal",
                "cert": "...", "key": "...", "out": "journal-copy.log"},
               {"name": "no certificate", "call": "health"}]}

A result is {"ok": true, "status": "SERVING"} for a health check,
{"ok": true, "records": N} for a journal read (the records, reassembled as
`body_len:u32 LE | body | signature`, are written to "out"), or
{"ok": false, "code": "UNAVAILABLE", "details": "..."} for a refused call.

The fedseg.v1 stubs are generated from the .proto files at run time with
grpcio-tools into a temporary directory.
"""

import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_S = 10


def generate_stubs(proto_dir: Path, out_dir: Path) -> None:
    files = sorted(str(p) for p in (proto_dir / "fedseg" / "v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files],
        check=True,
    )
    sys.path.insert(0, str(out_dir))


def channel(plan: dict, call: dict) -> grpc.Channel:
    ca = Path(plan["ca"]).read_bytes()
    if "cert" in call:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=Path(call["key"]).read_bytes(),
            certificate_chain=Path(call["cert"]).read_bytes(),
        )
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    options = [("grpc.ssl_target_name_override", plan["server_name"])]
    return grpc.secure_channel(plan["target"], credentials, options=options)


def health(ch: grpc.Channel, _call: dict) -> dict:
    stub = health_pb2_grpc.HealthStub(ch)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
    return {"ok": True, "status": health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}


def read_journal(ch: grpc.Channel, call: dict) -> dict:
    from fedseg.v1 import coordinator_pb2, coordinator_pb2_grpc

    stub = coordinator_pb2_grpc.AuditStub(ch)
    records = stub.ReadJournal(
        coordinator_pb2.ReadJournalRequest(from_sequence=0), timeout=TIMEOUT_S
    )
    data = bytearray()
    count = 0
    for record in records:
        data += struct.pack("<I", len(record.body)) + record.body + record.signature
        count += 1
    Path(call["out"]).write_bytes(bytes(data))
    return {"ok": True, "records": count}


CALLS = {"health": health, "read_journal": read_journal}


def run(plan: dict, call: dict) -> dict:
    try:
        with channel(plan, call) as ch:
            return CALLS[call["call"]](ch, call)
    except grpc.RpcError as error:
        return {"ok": False, "code": error.code().name, "details": error.details() or ""}


def main() -> None:
    plan = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as stubs:
        generate_stubs(Path(plan["proto"]), Path(stubs))
        results = {call["name"]: run(plan, call) for call in plan["calls"]}
    print(json.dumps({"grpcio": grpc.__version__, "results": results}))


if __name__ == "__main__":
    main()
