"""Runs scim2-tester against a SCIM server and prints one JSON line per check.

Usage: python check.py BASE_URL TOKEN

Every check scim2-tester has for the discovery endpoints and for each
resource type the server publishes is run; the caller judges the statuses.
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    for result in check_server(client, raise_exceptions=False):
        print(
            json.dumps(
                {
                    "title": result.title,
                    "status": result.status.name,
                    "resource_type": result.resource_type,
                    "reason": result.reason,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
