"""Gateway: scan orchestration, the public gRPC Scanner API, the HTTP API and the technic CLI."""
