"""Demo backends: real grpc.aio servers for users, orders, notifications and the echo service.

Nothing here imports gateway/; the gateway reaches these only over gRPC.
"""
