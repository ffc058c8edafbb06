"""Genesys Cloud regions and their hosts (docs/genesys-api.md §2.1, from the SDK's
``PureCloudRegionHosts``).

Login host rule (§2): the SDKs replace ``//api.`` with ``//login.`` in the API base URL; a
base without ``api.`` (the emulator's ``http://127.0.0.1:8089``) logs in on the same base.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["REGION_API_HOSTS", "login_base"]

REGION_API_HOSTS: Mapping[str, str] = MappingProxyType(
    {
        "us_east_1": "https://api.mypurecloud.com",
        "eu_west_1": "https://api.mypurecloud.ie",
        "ap_southeast_2": "https://api.mypurecloud.com.au",
        "ap_northeast_1": "https://api.mypurecloud.jp",
        "eu_central_1": "https://api.mypurecloud.de",
        "us_west_2": "https://api.usw2.pure.cloud",
        "ca_central_1": "https://api.cac1.pure.cloud",
        "ap_northeast_2": "https://api.apne2.pure.cloud",
        "eu_west_2": "https://api.euw2.pure.cloud",
        "ap_south_1": "https://api.aps1.pure.cloud",
        "us_east_2": "https://api.use2.us-gov-pure.cloud",
        "sa_east_1": "https://api.sae1.pure.cloud",
        "me_central_1": "https://api.mec1.pure.cloud",
        "ap_northeast_3": "https://api.apne3.pure.cloud",
        "eu_central_2": "https://api.euc2.pure.cloud",
        "mx_central_1": "https://api.mxc1.pure.cloud",
        "ap_southeast_1": "https://api.apse1.pure.cloud",
        "eusc_de_east_1": "https://api.edee1.eusc-pure.cloud",
    }
)


def login_base(api_base: str) -> str:
    """The login base for an API base: ``//api.`` → ``//login.``, else the same base."""
    return api_base.rstrip("/").replace("//api.", "//login.", 1)
