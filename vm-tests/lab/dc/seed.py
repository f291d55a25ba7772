#!/usr/bin/env python3
"""Deterministic seed for the lab's Samba AD DC.

Writes, for one profile (small | big | huge):
  - seed.ldif: OUs and computer objects, loaded with `ldbadd` into sam.ldb before Samba starts;
  - seed-modify.ldif: whenCreated overrides (system-only attribute: `ldbmodify --controls=relax:0`);
  - expected.json: every computer the directory will hold (the DC included) with the class,
    disabled and stale flags that discovery must report when run at expected["now"] with
    expected["stale_after_days"].

Everything is a pure function of the profile and the base DN, so the DC cache key (a hash of this
file, the dc script and the parameters) identifies the directory exactly.

Usage: seed.py PROFILE BASE_DN DNS_DOMAIN OUT_DIR
"""

import base64
import json
import sys
from datetime import datetime, timedelta, timezone

# Discovery in tests runs "as of" this instant, so stale flags never drift with the wall clock.
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
STALE_AFTER_DAYS = 90
FILETIME_EPOCH_OFFSET = 11644473600
PROFILES = {"small": 0, "big": 1200, "huge": 10000}

UAC_WORKSTATION_TRUST = 0x1000
UAC_DISABLED = 0x2


def filetime(days_ago):
    instant = NOW - timedelta(days=days_ago)
    return (int(instant.timestamp()) + FILETIME_EPOCH_OFFSET) * 10_000_000


def attr(name, value):
    """One LDIF line; base64 when the value is not SAFE-STRING (RFC 2849)."""
    raw = value.encode("utf-8")
    unsafe = (
        any(b < 0x20 or b > 0x7E for b in raw)
        or value[:1] in (" ", ":", "<")
        or value.endswith(" ")
    )
    if unsafe:
        return f"{name}:: {base64.b64encode(raw).decode()}"
    return f"{name}: {value}"


def main():
    profile, base_dn, dns_domain, out_dir = sys.argv[1:5]
    if profile not in PROFILES:
        sys.exit(f"seed.py: unknown profile {profile!r}; use one of {', '.join(PROFILES)}")

    computers = []

    def add(name, ou, os=None, version=None, last_logon_days=None, disabled=False,
            dns=None, description=None, expected_class=None, created_days=None):
        uac = UAC_WORKSTATION_TRUST | (UAC_DISABLED if disabled else 0)
        computers.append({
            "name": name,
            "ou": ou,
            "os": os,
            "version": version,
            "last_logon_days": last_logon_days,
            "uac": uac,
            "dns": dns if dns is not None else f"{name.lower()}.{dns_domain}",
            "description": description,
            "class": expected_class,
            "disabled": disabled,
            "created_days": created_days,
            "stale": (last_logon_days if last_logon_days is not None else created_days or 0)
            > STALE_AFTER_DAYS,
        })

    for i in range(1, 11):
        add(f"WS{i:03}", "Workstations", "Windows 10 Enterprise", "10.0 (19045)", i, expected_class="workstation")
    for i in range(11, 16):
        add(f"WS{i:03}", "Workstations", "Windows 11 Pro", "10.0 (22631)", i, expected_class="workstation")
    add("SRV01", "Servers", "Windows Server 2022 Standard", "10.0 (20348)", 1, expected_class="server")
    add("SRV02", "Servers", "Windows Server 2019 Datacenter", "10.0 (17763)", 2, expected_class="server")
    add("SRV03", "Servers", "Windows Server 2016 Standard", "10.0 (14393)", 3, expected_class="server")
    # Disabled accounts.
    add("WSDIS1", "Workstations", "Windows 10 Pro", "10.0 (19045)", 5, disabled=True, expected_class="workstation")
    add("WSDIS2", "Workstations", "Windows 11 Enterprise", "10.0 (22631)", 6, disabled=True, expected_class="workstation")
    add("SRVDIS", "Servers", "Windows Server 2012 R2 Standard", "6.3 (9600)", 7, disabled=True, expected_class="server")
    # Stale accounts (lastLogonTimestamp 200+ days before NOW).
    add("WSOLD1", "Workstations", "Windows 10 Pro", "10.0 (19044)", 200, expected_class="workstation")
    add("WSOLD2", "Workstations", "Windows 10 Pro", "10.0 (19044)", 400, expected_class="workstation")
    add("SRVOLD", "Servers", "Windows Server 2016 Standard", "10.0 (14393)", 250, expected_class="server")
    add("WSDEAD", "Workstations", "Windows 7 Professional", "6.1 (7601)", 900, disabled=True, expected_class="workstation")
    # Never logged on: stale only when created more than STALE_AFTER_DAYS before NOW.
    add("WSNEW", "Workstations", "Windows 11 Pro", "10.0 (26100)", None, created_days=10,
        expected_class="workstation")
    add("WSNEVER", "Workstations", "Windows 10 Pro", "10.0 (19045)", None, created_days=300,
        expected_class="workstation")
    # Non-Windows and unknown operating systems.
    add("LNX01", "Servers", "Ubuntu", "22.04", 3, expected_class="other")
    add("MAC01", "Workstations", "macOS", "14.1", 4, expected_class="other")
    add("NOOS01", "Workstations", None, None, 5, expected_class="other")
    # A duplicate dNSHostName pair.
    add("DUPA", "Workstations", "Windows 10 Pro", "10.0 (19045)", 2, dns=f"dup.{dns_domain}", expected_class="workstation")
    add("DUPB", "Workstations", "Windows 11 Pro", "10.0 (22631)", 3, dns=f"dup.{dns_domain}", expected_class="workstation")
    # Hostile values: LDAP filter metacharacters and control characters.
    add("HOSTILE1", "Workstations", "Windows 10 Pro (*)", "10.0 (19045)", 1,
        description="*)(cn=*", expected_class="workstation")
    add("HOSTILE2", "Workstations", "Windows 10 Pro\x1b[2J\x07\r\nEdition", "10.0\t(19045)", 1,
        description="line1\nline2\x1b[31m\x7f", expected_class="workstation")
    add("HOSTILE3", "Servers", "Windows Server 2022 \\ Standard", "10.0 (20348)", 1,
        description="back\\slash (paren) star* nul-free", expected_class="server")
    add("DECOY1", "Workstations", "Windows 10 Pro", "10.0 (19045)", 1,
        description="x*)(cn=*y", expected_class="workstation")

    n_bulk = PROFILES[profile]
    for i in range(1, n_bulk + 1):
        stale = i % 10 == 0
        add(f"BULK{i:05}", "Workstations",
            "Windows 11 Pro" if i % 2 else "Windows 10 Enterprise", "10.0 (22631)",
            200 + i % 50 if stale else 1 + i % 30,
            disabled=i % 17 == 0, expected_class="workstation")

    ldif = []
    for ou in ("Workstations", "Servers"):
        ldif += [f"dn: OU={ou},{base_dn}", "objectClass: organizationalUnit", f"ou: {ou}", ""]
    for c in computers:
        ldif.append(f"dn: CN={c['name']},OU={c['ou']},{base_dn}")
        ldif.append("objectClass: computer")
        ldif.append(f"cn: {c['name']}")
        ldif.append(f"sAMAccountName: {c['name']}$")
        ldif.append(f"userAccountControl: {c['uac']}")
        ldif.append(attr("dNSHostName", c["dns"]))
        if c["os"] is not None:
            ldif.append(attr("operatingSystem", c["os"]))
        if c["version"] is not None:
            ldif.append(attr("operatingSystemVersion", c["version"]))
        if c["last_logon_days"] is not None:
            ldif.append(f"lastLogonTimestamp: {filetime(c['last_logon_days'])}")
        if c["description"] is not None:
            ldif.append(attr("description", c["description"].replace("\x00", "")))
        ldif.append("")

    modify = []
    for c in computers:
        if c["created_days"] is not None:
            created = (NOW - timedelta(days=c["created_days"])).strftime("%Y%m%d%H%M%S.0Z")
            modify += [f"dn: CN={c['name']},OU={c['ou']},{base_dn}", "changetype: modify",
                       "replace: whenCreated", f"whenCreated: {created}", ""]

    dns_counts = {}
    for c in computers:
        dns_counts[c["dns"]] = dns_counts.get(c["dns"], 0) + 1
    expected = {
        "profile": profile,
        "now": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stale_after_days": STALE_AFTER_DAYS,
        "count": len(computers) + 1,
        "computers": [
            {
                "name": c["name"],
                "sam_account_name": f"{c['name']}$",
                "dns_host_name": c["dns"],
                "class": c["class"],
                "disabled": c["disabled"],
                "stale": c["stale"],
                "duplicate_dns_host_name": dns_counts[c["dns"]] > 1,
                "description": None if c["description"] is None else c["description"].replace("\x00", ""),
            }
            for c in computers
        ]
        + [
            {
                "name": "DC1",
                "sam_account_name": "DC1$",
                "dns_host_name": f"dc1.{dns_domain}",
                "class": "domain_controller",
                "disabled": False,
                "stale": False,
                "duplicate_dns_host_name": False,
                "description": None,
            }
        ],
    }
    with open(f"{out_dir}/seed.ldif", "w", encoding="utf-8") as f:
        f.write("\n".join(ldif) + "\n")
    with open(f"{out_dir}/seed-modify.ldif", "w", encoding="utf-8") as f:
        f.write("\n".join(modify) + "\n")
    with open(f"{out_dir}/expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
