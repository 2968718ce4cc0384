"""Ranker gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

from services.ranker.settings import RankerSettings
from technic.v1 import ranker_pb2_grpc


class RankerService(ranker_pb2_grpc.RankerServicer):
    """Every RPC answers UNIMPLEMENTED until the ranker's domain code lands."""

    def __init__(self, settings: RankerSettings) -> None:
        self.settings = settings
