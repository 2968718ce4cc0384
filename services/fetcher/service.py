"""Fetcher gRPC servicer: translates messages to calls on the domain modules and back."""

from __future__ import annotations

from services.fetcher.settings import FetcherSettings
from technic.v1 import fetcher_pb2_grpc


class FetcherService(fetcher_pb2_grpc.FetcherServicer):
    """Every RPC answers UNIMPLEMENTED until the fetcher's domain code lands."""

    def __init__(self, settings: FetcherSettings) -> None:
        self.settings = settings
