"""What every service shares: settings, logging, gRPC server and channels, block codec, Redis."""
