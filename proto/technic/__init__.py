"""Generated gRPC contract of the Technic scan cluster (``technic.v1``)."""
