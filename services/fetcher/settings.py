"""Fetcher settings (environment only; see services/common/settings.py for the shared ones)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from services.common.settings import CommonSettings

SIMULATOR_API_KEY = "technic-simulator"


class FetcherSettings(CommonSettings):
    fetcher_port: int = 50052
    polygon_api_key: str = Field(default=SIMULATOR_API_KEY,
                                 validation_alias=AliasChoices("POLYGON_API_KEY", "TECHNIC_POLYGON_API_KEY"))
    polygon_base_url: str = Field(default="http://127.0.0.1:8900",
                                  validation_alias=AliasChoices("POLYGON_BASE_URL", "TECHNIC_POLYGON_BASE_URL"))
