//! Tests that the shipped catalogue is valid and that every kind of broken runbook is reported with file and line.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use expect_test::{Expect, expect};

use catalog::{SourceFile, load};

const GOOD: &str = r#"id = "T-GOOD-001"
title = "A good runbook"
description = "d"
platforms = ["linux"]
severity = "high"

[controls]
hipaa = ["164.312(b)"]

[params.max_days]
type = "integer"
default = 90
min = 1

[detect]
script = "scripts/t.sh"

[[expect]]
field = "days"
op = "le"
param = "max_days"
"#;

#[track_caller]
fn check(files: &[(&str, &str)], expect: Expect) {
    let mut all = vec![("scripts/t.sh", "echo '{}'")];
    all.extend_from_slice(files);
    let sources: Vec<SourceFile<'_>> = all
        .iter()
        .map(|(path, text)| SourceFile { path, text })
        .collect();
    let actual = match load(&sources) {
        Ok(catalog) => format!("ok: {} runbooks", catalog.runbooks().len()),
        Err(errors) => errors.to_string(),
    };
    expect.assert_eq(&actual);
}

#[test]
fn shipped_catalogue_is_valid() {
    let catalog = catalog::embedded()
        .unwrap_or_else(|errors| panic!("shipped catalogue is broken:\n{errors}"));
    let linux = catalog.for_platform(model::Platform::Linux).count();
    assert!(linux >= 15, "only {linux} Linux runbooks");
    for runbook in catalog.runbooks() {
        assert!(
            runbook
                .controls
                .iter()
                .any(|c| c.framework == model::Framework::Hipaa),
            "{} maps no HIPAA control",
            runbook.id
        );
        let is_sh = runbook.detect.shell == model::Shell::Sh;
        assert!(
            !is_sh || runbook.detect.body.contains("json_str"),
            "{} does not get the prelude",
            runbook.id
        );
    }
    let windows = catalog.for_platform(model::Platform::WindowsServer).count();
    assert!(windows >= 28, "only {windows} Windows Server runbooks");
    assert!(
        !catalog.powershell_prelude().trim().is_empty(),
        "the PowerShell prelude (windows/lib/prelude.ps1) is not exposed"
    );
    assert!(catalog.version().starts_with("0.0.0+"));
}

#[test]
fn good_runbook_loads() {
    check(&[("T-GOOD-001.toml", GOOD)], expect![[r#"ok: 1 runbooks"#]]);
}

#[test]
fn syntax_error_names_file_and_line() {
    let broken = GOOD.replace("severity = \"high\"", "severity = \"high");
    check(
        &[("T-GOOD-001.toml", &broken)],
        expect![[r#"T-GOOD-001.toml:5:17: invalid basic string, expected `"`"#]],
    );
}

#[test]
fn duplicate_ids_are_rejected() {
    check(
        &[
            ("a/T-GOOD-001.toml", GOOD),
            ("a/scripts/t.sh", "echo '{}'"),
            ("b/T-GOOD-001.toml", GOOD),
            ("b/scripts/t.sh", "echo '{}'"),
        ],
        expect![
            "b/T-GOOD-001.toml:1:1: duplicate runbook id `T-GOOD-001` (first defined at a/T-GOOD-001.toml:1); give this runbook a new id"
        ],
    );
}

#[test]
fn unknown_framework_is_rejected() {
    let broken = GOOD.replace("hipaa = [", "hippa = [");
    check(
        &[("T-GOOD-001.toml", &broken)],
        expect![[
            r#"T-GOOD-001.toml:8:1: unknown field `hippa`, expected one of `hipaa`, `soc2`, `pci_dss`, `nist_csf`, `cis`"#
        ]],
    );
}

#[test]
fn missing_script_is_rejected() {
    let broken = GOOD.replace("scripts/t.sh", "scripts/missing.sh");
    check(
        &[("T-GOOD-001.toml", &broken)],
        expect![
            "T-GOOD-001.toml:16:10: script `scripts/missing.sh` not found; create it or fix the path (relative to the runbook's directory)"
        ],
    );
}

#[test]
fn untyped_parameter_is_rejected() {
    let broken = GOOD.replace("type = \"integer\"\n", "");
    check(
        &[("T-GOOD-001.toml", &broken)],
        expect![[r#"
            T-GOOD-001.toml:10:1: parameter `max_days` has no `type` (one of integer, boolean, string, enum, path)
            T-GOOD-001.toml:17:1: expectation refers to undeclared parameter `max_days`; declare it under [params.max_days]"#]],
    );
}

#[test]
fn bad_default_unknown_op_and_undeclared_param_are_all_reported() {
    let broken = GOOD
        .replace("default = 90", "default = 0")
        .replace("op = \"le\"", "op = \"lte\"")
        .replace("[controls]\nhipaa = [\"164.312(b)\"]", "[controls]");
    check(
        &[("T-GOOD-001.toml", &broken)],
        expect![[r#"
            T-GOOD-001.toml:7:1: no framework controls: map the runbook to at least one control
            T-GOOD-001.toml:9:1: default value rejected: parameter `max_days`: 0 is below the minimum 1
            T-GOOD-001.toml:19:6: unknown op `lte` (known: eq, ne, in, not_in, lt, le, gt, ge, empty)"#]],
    );
}

#[test]
fn an_interval_is_a_whole_number_of_minutes_hours_or_days() {
    let with = |interval: &str| {
        GOOD.replace(
            "severity = \"high\"\n",
            &format!("severity = \"high\"\ninterval = {interval}\n"),
        )
    };
    check(
        &[("T-GOOD-001.toml", &with("\"6h\""))],
        expect!["ok: 1 runbooks"],
    );
    check(
        &[("T-GOOD-001.toml", &with("\"1d\""))],
        expect!["ok: 1 runbooks"],
    );
    check(
        &[("T-GOOD-001.toml", &with("\"90s\""))],
        expect![[
            r#"T-GOOD-001.toml:6:12: interval "90s" is not a duration: write a whole number of minutes, hours or days, such as "30m", "6h" or "1d" (10 minutes to 30 days)"#
        ]],
    );
    check(
        &[("T-GOOD-001.toml", &with("\"5m\""))],
        expect![[
            r#"T-GOOD-001.toml:6:12: interval "5m" is not a duration: write a whole number of minutes, hours or days, such as "30m", "6h" or "1d" (10 minutes to 30 days)"#
        ]],
    );
    check(
        &[("T-GOOD-001.toml", &with("\"+1h\""))],
        expect![[
            r#"T-GOOD-001.toml:6:12: interval "+1h" is not a duration: write a whole number of minutes, hours or days, such as "30m", "6h" or "1d" (10 minutes to 30 days)"#
        ]],
    );
    // The shipped catalogue's intervals survive the agent's JSON form.
    let catalog = catalog::embedded().unwrap();
    let json = catalog::Catalog::from_json(&catalog.to_json()).unwrap();
    let hourly = json.get("LIN-PWQUALITY-001").unwrap();
    assert_eq!(hourly.interval, Some(std::time::Duration::from_secs(3600)));
    assert_eq!(json.get("LIN-SSH-001").unwrap().interval, None);
}

#[test]
fn id_must_match_file_name() {
    check(
        &[("T-OTHER-001.toml", GOOD)],
        expect![[
            r#"T-OTHER-001.toml:1:6: runbook id `T-GOOD-001` does not match its file name `T-OTHER-001.toml`; rename one of them"#
        ]],
    );
}

const PS_GOOD: &str = r#"id = "T-PS-001"
title = "A PowerShell runbook"
description = "d"
platforms = ["windows-server"]
severity = "high"

[controls]
hipaa = ["164.312(b)"]

[detect]
shell = "powershell"
script = "scripts/t.ps1"

[[expect]]
field = "ok"
op = "eq"
value = true
"#;

#[track_caller]
fn check_ps(body: &str, expect: Expect) {
    let files = [
        SourceFile {
            path: "w/T-PS-001.toml",
            text: PS_GOOD,
        },
        SourceFile {
            path: "w/scripts/t.ps1",
            text: body,
        },
    ];
    let actual = match load(&files) {
        Ok(catalog) => format!(
            "ok: body {:?}",
            catalog.get("T-PS-001").unwrap().detect.body
        ),
        Err(errors) => errors.to_string(),
    };
    expect.assert_eq(&actual);
}

#[test]
fn powershell_body_is_not_given_the_prelude() {
    let files = [
        SourceFile {
            path: "w/T-PS-001.toml",
            text: PS_GOOD,
        },
        SourceFile {
            path: "w/scripts/t.ps1",
            text: "[ordered]@{ ok = $true }",
        },
        SourceFile {
            path: catalog::POWERSHELL_PRELUDE,
            text: "function Get-X { 1 }",
        },
    ];
    let catalog = load(&files).unwrap();
    assert_eq!(
        catalog.get("T-PS-001").unwrap().detect.body,
        "[ordered]@{ ok = $true }"
    );
    assert_eq!(catalog.powershell_prelude(), "function Get-X { 1 }");
    assert_eq!(load(&[]).unwrap().powershell_prelude(), "");
}

#[test]
fn powershell_here_string_terminator_is_rejected() {
    check_ps(
        "$x = @'\nhello\n'@\n[ordered]@{ ok = $true }\n",
        expect![[
            r#"w/scripts/t.ps1:3:1: a line starting with `'@` would end the here-string the body travels in; indent it or rewrite the string"#
        ]],
    );
}

#[test]
fn powershell_code_from_data_is_rejected() {
    check_ps(
        "$c = 'Get-Date'\n[ordered]@{ ok = (Invoke-Expression $c) }\n",
        expect![[
            r#"w/scripts/t.ps1:2:19: `invoke-expression` builds or compiles code at run time; runbooks must only read data, so use cmdlets, CIM or the registry instead"#
        ]],
    );
    check_ps(
        "[ordered]@{ ok = ('1' | IEX) }\n",
        expect![[
            r#"w/scripts/t.ps1:1:25: `iex` builds or compiles code at run time; runbooks must only read data, so use cmdlets, CIM or the registry instead"#
        ]],
    );
    check_ps(
        "Add-Type -TypeDefinition 'x'\n[ordered]@{ ok = $true }\n",
        expect![[
            r#"w/scripts/t.ps1:1:1: `add-type` builds or compiles code at run time; runbooks must only read data, so use cmdlets, CIM or the registry instead"#
        ]],
    );
}

#[test]
fn powershell_words_containing_iex_are_accepted() {
    check_ps(
        "$complex = 1 # iex in a comment is fine\n[ordered]@{ ok = ($complex -eq 1) }\n",
        expect![[
            r#"ok: body "$complex = 1 # iex in a comment is fine\n[ordered]@{ ok = ($complex -eq 1) }\n""#
        ]],
    );
}

/// The endpoint agent embeds its platform's part of the catalogue as JSON made at build time:
/// read back, it is exactly that part, every script with its prelude, and the JSON holds each
/// prelude once.
#[test]
fn a_platform_subset_survives_its_json_form_exactly() {
    let full = catalog::embedded().unwrap();
    for platforms in [
        &[model::Platform::Linux][..],
        &[
            model::Platform::WindowsWorkstation,
            model::Platform::WindowsServer,
        ][..],
    ] {
        let subset = full.subset(platforms);
        assert!(!subset.runbooks().is_empty());
        assert!(
            subset
                .runbooks()
                .iter()
                .all(|rb| platforms.iter().any(|p| rb.applies_to(*p)))
        );
        assert_eq!(
            subset.runbooks().len(),
            full.runbooks()
                .iter()
                .filter(|rb| platforms.iter().any(|p| rb.applies_to(*p)))
                .count()
        );
        assert_eq!(subset.version(), full.version());
        let json = subset.to_json();
        assert_eq!(catalog::Catalog::from_json(&json).unwrap(), subset);
        if platforms == [model::Platform::Linux] {
            let first = &subset.runbooks()[0].detect.body;
            assert!(first.len() > 1000, "the sh prelude is part of each body");
            assert!(json.len() < 200_000, "{} bytes", json.len());
        }
    }
    assert!(
        catalog::Catalog::from_json("{\"preludes\":[],\"catalog\":{}}")
            .unwrap_err()
            .contains("the embedded catalogue is damaged")
    );
}

#[test]
fn unknown_control_names_runbook_and_control() {
    let text = GOOD.replace(
        r#"hipaa = ["164.312(b)"]"#,
        "hipaa = [\"164.312(b)\", \"164.312(z)\"]\ncis = [\"5.2.10\"]",
    );
    check(
        &[("T-GOOD-001.toml", &text)],
        expect![[r#"
            T-GOOD-001.toml:8:24: runbook T-GOOD-001 maps to unknown HIPAA control `164.312(z)`: HIPAA Security Rule has no such control (see frameworks/hipaa.toml, or `osiris catalog controls hipaa`)
            T-GOOD-001.toml:9:8: runbook T-GOOD-001 maps to unknown CIS control `5.2.10`: CIS Critical Security Controls v8.1, IG1 has no such control (see frameworks/cis.toml, or `osiris catalog controls cis`)"#]],
    );
}

#[test]
fn partial_mapping_needs_a_reason_and_not_applicable_controls_cannot_be_mapped() {
    let text = GOOD.replace(
        r#"hipaa = ["164.312(b)"]"#,
        "hipaa = [{ id = \"164.312(b)\", partial = \" \" }, \"164.308(a)(4)(ii)(A)\"]",
    );
    check(
        &[("T-GOOD-001.toml", &text)],
        expect![[r#"
            T-GOOD-001.toml:8:10: runbook T-GOOD-001: partial mapping to HIPAA `164.312(b)` needs the reason (what the check leaves out)
            T-GOOD-001.toml:8:48: runbook T-GOOD-001 maps to HIPAA control `164.308(a)(4)(ii)(A)`, which frameworks/hipaa.toml marks not applicable; remove the mapping or the mark"#]],
    );
}

#[test]
fn partial_mapping_is_kept_with_its_reason() {
    let text = GOOD.replace(
        r#"hipaa = ["164.312(b)"]"#,
        "hipaa = [{ id = \"164.312(b)\", partial = \"logs kept, not reviewed\" }]",
    );
    let sources = [
        SourceFile {
            path: "scripts/t.sh",
            text: "echo '{}'",
        },
        SourceFile {
            path: "T-GOOD-001.toml",
            text: &text,
        },
    ];
    let catalog = load(&sources).unwrap();
    let control = &catalog.runbooks()[0].controls[0];
    assert_eq!(control.id, "164.312(b)");
    assert_eq!(control.partial.as_deref(), Some("logs kept, not reviewed"));
    assert_eq!(catalog.runbooks()[0].control_refs(), ["HIPAA:164.312(b)"]);
}

#[test]
fn shipped_framework_catalogues_list_every_control() {
    let frameworks = catalog::embedded_frameworks()
        .unwrap_or_else(|errors| panic!("shipped framework catalogues are broken:\n{errors}"));
    let counts: Vec<String> = frameworks
        .catalogs()
        .iter()
        .map(|c| {
            let not_applicable = c
                .controls
                .iter()
                .filter(|d| d.not_applicable.is_some())
                .count();
            format!(
                "{}: {} controls, {not_applicable} not applicable",
                c.framework.key(),
                c.controls.len()
            )
        })
        .collect();
    // HIPAA 164.308–164.316: 65 standards and implementation specifications; NIST CSF 2.0 has
    // 106 subcategories; CIS Controls v8.1 IG1 has 56 safeguards; SOC 2 TSC 2017 has 61 criteria.
    // HIPAA: 22 standards, 21 required and 22 addressable implementation specifications.
    expect![[r#"
        hipaa: 65 controls, 4 not applicable
        soc2: 61 controls, 23 not applicable
        pci_dss: 250 controls, 22 not applicable
        nist_csf: 106 controls, 0 not applicable
        cis: 56 controls, 0 not applicable"#]]
    .assert_eq(&counts.join("\n"));
    let hipaa = frameworks.get(model::Framework::Hipaa).unwrap();
    let kinds = |kind| {
        hipaa
            .controls
            .iter()
            .filter(|c| c.kind == Some(kind))
            .count()
    };
    assert_eq!(
        (
            kinds(catalog::HipaaKind::Standard),
            kinds(catalog::HipaaKind::Required),
            kinds(catalog::HipaaKind::Addressable)
        ),
        (22, 21, 22)
    );
}

#[test]
fn broken_framework_catalogue_is_reported_with_file_and_line() {
    let text = r#"framework = "hipaa"
name = "HIPAA"
version = "x"
source = "y"

[[control]]
id = "164.312(b)"
group = "Technical safeguards"
title = "Audit controls"

[[control]]
id = "164.312(b)"
group = "Technical safeguards"
kind = "optional"
title = "Audit controls"
not_applicable = ""
"#;
    let err = catalog::load_frameworks(&[SourceFile {
        path: "hipaa.toml",
        text,
    }])
    .unwrap_err();
    expect![[r#"
        hipaa.toml:6:1: HIPAA control `164.312(b)` needs `kind` (standard, required or addressable)
        hipaa.toml:12:6: duplicate control id `164.312(b)`; each control is listed once
        hipaa.toml:11:1: control `164.312(b)`: `not_applicable` needs the reason, not an empty string
        hipaa.toml:14:8: unknown kind `optional` (known: standard, required, addressable)"#]]
    .assert_eq(&err.to_string());
}

#[test]
fn cloud_checks_name_a_collector_and_only_cloud_platforms() {
    let cloud = GOOD.replace("[\"linux\"]", "[\"microsoft365\"]").replace(
        "script = \"scripts/t.sh\"",
        "shell = \"cloud\"\ncollector = \"mfa_registration\"",
    );
    check(
        &[("T-GOOD-001.toml", &cloud)],
        expect![[r#"ok: 1 runbooks"#]],
    );
    let with_script = cloud.replace(
        "collector = \"mfa_registration\"",
        "script = \"scripts/t.sh\"",
    );
    check(
        &[("T-GOOD-001.toml", &with_script)],
        expect![[
            r#"T-GOOD-001.toml:17:10: a `shell = "cloud"` step runs no script: name its `collector` instead"#
        ]],
    );
    let bad_name = cloud.replace("mfa_registration", "Mfa Registration");
    check(
        &[("T-GOOD-001.toml", &bad_name)],
        expect![
            "T-GOOD-001.toml:17:13: collector `Mfa Registration` is invalid: use lowercase letters, digits and `_`"
        ],
    );
    let mixed = cloud.replace("[\"microsoft365\"]", "[\"microsoft365\", \"linux\"]");
    check(
        &[("T-GOOD-001.toml", &mixed)],
        expect![[
            r#"T-GOOD-001.toml:1:6: a cloud platform's checks detect with `shell = "cloud"` and name only cloud platforms; host checks name no cloud platform"#
        ]],
    );
    let host_on_cloud = GOOD.replace("[\"linux\"]", "[\"microsoft365\"]");
    check(
        &[("T-GOOD-001.toml", &host_on_cloud)],
        expect![[
            r#"T-GOOD-001.toml:1:6: a cloud platform's checks detect with `shell = "cloud"` and name only cloud platforms; host checks name no cloud platform"#
        ]],
    );
    let collector_on_host = GOOD.replace(
        "script = \"scripts/t.sh\"",
        "script = \"scripts/t.sh\"\ncollector = \"x\"",
    );
    check(
        &[("T-GOOD-001.toml", &collector_on_host)],
        expect![[
            r#"T-GOOD-001.toml:17:13: `collector` belongs to `shell = "cloud"` steps; a script step names its `script`"#
        ]],
    );
}

#[test]
fn shipped_microsoft365_checks_map_hipaa() {
    let catalog = catalog::embedded().unwrap();
    let m365: Vec<_> = catalog
        .for_platform(model::Platform::Microsoft365)
        .collect();
    assert!(m365.len() >= 12, "only {} Microsoft 365 checks", m365.len());
    for runbook in m365 {
        assert_eq!(runbook.detect.shell, model::Shell::Cloud, "{}", runbook.id);
        assert!(
            runbook.remediate.is_none() && !runbook.auto_heal,
            "{}",
            runbook.id
        );
    }
}
