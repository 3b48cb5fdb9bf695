// The Go client of cognito-verify, for use from other modules. It is not
// published: the path is a placeholder under the reserved .invalid domain,
// which never resolves, so go takes the module only from a replace
// directive naming a checkout of this repository (clients/go/README.md).
//
// The versions are those of the Debian bookworm packages the client is
// built and tested against here, in GOPATH mode (clients/go/gobuild): this
// file was written by hand, not by `go mod tidy`, and there is no go.sum,
// since no Go module proxy is reachable where it was made. Run `go mod tidy`
// in your module to complete the graph and the checksums.
module cognito-verify.invalid/clients/go

go 1.19

require (
	github.com/golang/protobuf v1.5.2
	google.golang.org/genproto v0.0.0-20200413115906-b5235f65be36
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
