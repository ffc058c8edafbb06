"""Region hosts and the login host rule (docs/genesys-api.md §2)."""

from __future__ import annotations

import pytest

from pipeline.core.genesys.regions import REGION_API_HOSTS, login_base


def test_regions_match_the_official_sdk() -> None:
    import PureCloudPlatformClientV2 as gc

    for region, host in REGION_API_HOSTS.items():
        assert gc.PureCloudRegionHosts[region].get_api_host() == host


@pytest.mark.parametrize(
    ("api", "login"),
    [
        ("https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        ("https://api.usw2.pure.cloud/", "https://login.usw2.pure.cloud"),
        ("http://127.0.0.1:8089", "http://127.0.0.1:8089"),
    ],
)
def test_login_base(api: str, login: str) -> None:
    assert login_base(api) == login
