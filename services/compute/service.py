"""Compute gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

from services.compute.settings import ComputeSettings
from technic.v1 import compute_pb2_grpc


class ComputeService(compute_pb2_grpc.ComputeServicer):
    """Every RPC answers UNIMPLEMENTED until the compute domain code lands."""

    def __init__(self, settings: ComputeSettings) -> None:
        self.settings = settings
