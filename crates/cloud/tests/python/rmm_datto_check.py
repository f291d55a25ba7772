"""Datto RMM's devices as a standard OAuth 2.0 client reads them: `requests-oauthlib` with
oauthlib's LegacyApplicationClient runs the resource owner password credentials grant (RFC
6749 section 4.3) against /auth/oauth/token with the `public-client` basic credentials Datto
documents, then follows `pageDetails.nextPageUrl` through /api/v2/site/{siteUid}/devices.
(No maintained Datto client exists on PyPI: `drmmsdk` 0.0.5 awaits a synchronous requests
session and omits the /api prefix.) Prints JSON: the devices (uid, hostname, domain,
deviceClass, deleted, lastSeen in seconds), the pages read, and what a wrong secret gets.

Usage: rmm_datto_check.py API_URL SITE KEY SECRET (SSL trust from REQUESTS_CA_BUNDLE)."""

import json
import sys

from oauthlib.oauth2 import LegacyApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session


def session(api, key, secret):
    oauth = OAuth2Session(client=LegacyApplicationClient(client_id="public-client"))
    oauth.fetch_token(token_url=f"{api}/auth/oauth/token", username=key, password=secret,
                      auth=HTTPBasicAuth("public-client", "public"))
    return oauth


def main():
    api, site, key, secret = sys.argv[1:5]
    oauth = session(api, key, secret)
    url, pages, devices = f"{api}/api/v2/site/{site}/devices?max=4&page=0", 0, []
    while url:
        answer = oauth.get(url)
        answer.raise_for_status()
        body = answer.json()
        pages += 1
        devices.extend(body["devices"])
        url = body["pageDetails"]["nextPageUrl"]
    out = [{"uid": d["uid"], "hostname": d["hostname"], "domain": d["domain"],
            "deviceClass": d["deviceClass"], "deleted": d["deleted"], "seen": d["lastSeen"] // 1000}
           for d in devices]
    try:
        session(api, key, secret + "-wrong")
        refused = None
    except Exception as err:  # oauthlib raises its InvalidGrantError
        refused = type(err).__name__
    print(json.dumps({"devices": out, "pages": pages, "wrong_secret": refused}))


if __name__ == "__main__":
    main()
