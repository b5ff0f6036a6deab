// Command grpc-gateway is the benchmark's peer: grpc-gateway v2 on the users.v1 protos, in
// front of the same users backend as our gateway. It is built by bench/peers/grpc_gateway.py,
// which generates gen/users/v1 (protoc-gen-go, -go-grpc, -grpc-gateway) before `go build`.
//
// Changed from grpc-gateway's defaults, and why: only the JSON marshaler's EmitUnpopulated
// (default true, here false), so that the body equals json_format.MessageToDict of the User
// (lowerCamelCase names, unpopulated fields omitted) as our gateway's does; equal work for a
// fair comparison. It stays a runtime.HTTPBodyMarshaler over runtime.JSONPb with
// DiscardUnknown, as the default. Everything else (ServeMux options, error handler, header
// matchers, net/http server, gRPC client options apart from insecure loopback credentials)
// is the default. The google.rpc error detail types are linked in so that error bodies carry
// the backend's details (ResourceInfo, ...) instead of failing to marshal them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // error details the backend sends
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	usersv1 "grpcgatewaypeer/gen/users/v1"
)

const loopback = "127.0.0.1"

func main() {
	backend := flag.String("backend", "", "users gRPC backend, HOST:PORT")
	port := flag.Int("port", 0, "REST port on 127.0.0.1 (0: ephemeral)")
	flag.Parse()
	if *backend == "" {
		log.Fatal("grpc-gateway: -backend HOST:PORT is required")
	}
	if err := serve(*backend, *port); err != nil {
		log.Fatalf("grpc-gateway: %v", err)
	}
}

func serve(backend string, port int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	conn, err := grpc.NewClient(backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()

	marshaler := &gwruntime.HTTPBodyMarshaler{Marshaler: &gwruntime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}
	mux := gwruntime.NewServeMux(gwruntime.WithMarshalerOption(gwruntime.MIMEWildcard, marshaler))
	if err := usersv1.RegisterUsersHandler(ctx, mux, conn); err != nil {
		return err
	}

	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	server := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	// stderr: for the log only; stdout: the one line the runner reads (unbuffered in Go).
	fmt.Fprintf(os.Stderr, "grpc-gateway: GOMAXPROCS=%d NumCPU=%d backend=%s\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), backend)
	fmt.Printf("grpc-gateway listening on %s\n", listener.Addr())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
