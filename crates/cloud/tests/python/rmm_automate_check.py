"""ConnectWise Automate's computers as an independent client reads them: the `pyconnectwise`
package (its typed models generated from Automate's API description) logs in with the
integrator and the integration's ClientId and pages through /cwa/api/v1/Computers for one
client. Prints JSON: the computers (Id, ComputerName, Client.Id, DomainName, Type, Status,
RemoteAgentLastContact as UTC seconds) and the pages read; a wrong password must fail there too.

Usage: rmm_automate_check.py HOST:PORT CLIENT_ID USER PASSWORD CLIENT (SSL trust from
REQUESTS_CA_BUNDLE)."""

import datetime as dt
import json
import sys

from pyconnectwise import ConnectWiseAutomateAPIClient
from pyconnectwise.endpoints.automate.ComputersEndpoint import ComputersEndpoint
from pyconnectwise.exceptions import ConnectWiseException


def main():
    host, client_id, user, password, client = sys.argv[1:6]
    api = ConnectWiseAutomateAPIClient(host, client_id, user, password)
    computers, page, pages = [], 1, 0
    while True:
        # pyconnectwise's own paging guesses pages without end for Automate; stop at a short page
        # as the API's paging rule says.
        batch = ComputersEndpoint(api).get(params={"condition": f"Client.Id = {client}",
                                                   "pageSize": 4, "page": page})
        pages += 1
        computers.extend(batch)
        if len(batch) < 4:
            break
        page += 1
    out = []
    for c in computers:
        seen = c.remote_agent_last_contact
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=dt.timezone.utc)
        out.append({"id": c.id, "name": c.computer_name, "client": c.client.id, "domain": c.domain_name,
                    "type": c.type, "online": c.status == "Online", "seen": int(seen.timestamp())})
    try:
        ConnectWiseAutomateAPIClient(host, client_id, user, password + "-wrong")
        refused = None
    except ConnectWiseException as err:
        refused = type(err).__name__
    print(json.dumps({"computers": out, "pages": pages, "wrong_password": refused}))


if __name__ == "__main__":
    main()
