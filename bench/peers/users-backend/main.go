// Command users-backend is the benchmark's Go users backend: users.v1.Users/GetUser on grpc-go,
// so that the process in front of it (the gateway, a façade, a peer) saturates before the
// backend does. It is built by bench/peers/users_backend.py.
//
// The users come from -seed, a file the bench writes from services.seed: each User as the
// Python backend serializes it (deterministically, map entries in key order), length-prefixed
// (varint). GetUser answers those bytes as they are (a codec that passes bytes through), so
// the reply is the Python backend's byte for byte up to map entry order, which the Python
// backend varies per process; the runner checks the bytes at start. The request is parsed
// (field 1, the id) with protowire.
// An unknown id is NOT_FOUND; every other method UNIMPLEMENTED. grpc.health.v1 answers
// SERVING, as the Python backend's does. Everything else is grpc-go's default server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const loopback = "127.0.0.1"

// raw is a message kept as its wire bytes.
type raw struct{ data []byte }

// codec passes *raw through untouched and leaves every other message to proto (health).
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*raw); ok {
		return r.data, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("codec: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (codec) Unmarshal(data []byte, v any) error {
	if r, ok := v.(*raw); ok {
		r.data = append(r.data[:0], data...)
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("codec: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

// field1 is the first string field numbered 1 in a message's wire bytes (User.id,
// GetUserRequest.id), or an error if the bytes are not a message.
func field1(data []byte) (string, error) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		data = data[n:]
		if num == 1 && typ == protowire.BytesType {
			value, m := protowire.ConsumeBytes(data)
			if m < 0 {
				return "", protowire.ParseError(m)
			}
			return string(value), nil
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return "", protowire.ParseError(m)
		}
		data = data[m:]
	}
	return "", nil
}

// readSeed reads the length-prefixed Users of path: id -> the User's bytes.
func readSeed(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	for len(data) > 0 {
		user, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, fmt.Errorf("%s: %w", path, protowire.ParseError(n))
		}
		data = data[n:]
		id, err := field1(user)
		if err != nil || id == "" {
			return nil, fmt.Errorf("%s: a User without an id", path)
		}
		users[id] = user
	}
	if len(users) == 0 {
		return nil, errors.New(path + ": no users")
	}
	return users, nil
}

type usersServer interface{}

func serviceDesc(users map[string][]byte) *grpc.ServiceDesc {
	getUser := func(_ any, _ context.Context, decode func(any) error,
		_ grpc.UnaryServerInterceptor) (any, error) {
		var request raw
		if err := decode(&request); err != nil {
			return nil, err
		}
		id, err := field1(request.data)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "GetUserRequest does not parse")
		}
		if id == "" {
			return nil, status.Error(codes.InvalidArgument, "id: is required")
		}
		user, ok := users[id]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "user %q not found", id)
		}
		return &raw{data: user}, nil
	}
	return &grpc.ServiceDesc{
		ServiceName: "users.v1.Users",
		HandlerType: (*usersServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "GetUser", Handler: getUser}},
		Metadata:    "users/v1/users.proto",
	}
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: ephemeral)")
	seed := flag.String("seed", "", "the Users, length-prefixed, as the Python backend serializes them")
	flag.Parse()
	users, err := readSeed(*seed)
	if err != nil {
		log.Fatalf("users-backend: %v", err)
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, fmt.Sprint(*port)))
	if err != nil {
		log.Fatalf("users-backend: %v", err)
	}
	server := grpc.NewServer(grpc.ForceServerCodec(codec{}))
	server.RegisterService(serviceDesc(users), struct{}{})
	healthpb.RegisterHealthServer(server, health.NewServer()) // "" and every service: SERVING

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		server.GracefulStop()
	}()
	// stderr: for the log only; stdout: the line the runner reads (services.cli's form).
	fmt.Fprintf(os.Stderr, "users-backend: GOMAXPROCS=%d NumCPU=%d users=%d\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), len(users))
	fmt.Printf("users listening on %s\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		log.Fatalf("users-backend: %v", err)
	}
}
