"""A protoc plugin that runs grpcio-tools' built-in `grpc_python` generator.

buf runs only protoc's own generators as `protoc_builtin`; grpcio-tools links
`grpc_python` into its protoc instead of shipping it as a plugin. This reads
buf's CodeGeneratorRequest, hands its files to grpcio-tools' protoc as a
descriptor set, and answers with what that generated.
"""
import os
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> None:
    req = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    resp = plugin_pb2.CodeGeneratorResponse()
    # grpc_python handles proto3 `optional` (grpcio-tools' protoc refuses
    # such a file to a generator that does not): say so, or buf warns about
    # any such file in its input (google/rpc/error_details.proto, there for
    # the TypeScript client) even when `types:` keeps it from this plugin.
    resp.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        fds = descriptor_pb2.FileDescriptorSet(file=req.proto_file)
        fds_path = os.path.join(tmp, "in.binpb")
        with open(fds_path, "wb") as f:
            f.write(fds.SerializeToString())
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        opt = (req.parameter + ":") if req.parameter else ""
        rc = protoc.main(["protoc", f"--descriptor_set_in={fds_path}",
                          f"--grpc_python_out={opt}{out}", *req.file_to_generate])
        if rc != 0:
            resp.error = f"grpc_tools.protoc exited {rc}"
        for root, _, files in os.walk(out):
            for name in sorted(files):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    resp.file.add(name=os.path.relpath(path, out), content=f.read())
    sys.stdout.buffer.write(resp.SerializeToString())


if __name__ == "__main__":
    main()
