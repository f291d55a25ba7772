//! RFC 8785 canonicalisation against the published test vectors.

use std::fs;
use std::path::Path;

use evidence::jcs::{self, JcsError};

/// The cyberphone/json-canonicalization testdata (input → expected output), embedded under tests/data/jcs.
#[test]
fn rfc8785_testdata_files() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jcs");
    for name in [
        "arrays",
        "french",
        "structures",
        "unicode",
        "values",
        "weird",
    ] {
        let input = fs::read(data.join(format!("input/{name}.json"))).expect("read input");
        let expected = fs::read(data.join(format!("output/{name}.json"))).expect("read output");
        let value: serde_json::Value = serde_json::from_slice(&input).expect("parse input");
        let canonical = jcs::canonicalize(&value).expect("canonicalize");
        assert_eq!(
            String::from_utf8_lossy(&canonical),
            String::from_utf8_lossy(&expected),
            "vector {name}"
        );
    }
}

/// RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation.
#[test]
fn rfc8785_appendix_b_numbers() {
    let vectors = [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ];
    for (bits, expected) in vectors {
        let float = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex"));
        let mut out = Vec::new();
        jcs::write_f64(float, &mut out).expect("finite");
        assert_eq!(String::from_utf8_lossy(&out), expected, "bits {bits}");
    }
    for bits in ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"] {
        let float = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex"));
        assert!(
            matches!(
                jcs::write_f64(float, &mut Vec::new()),
                Err(JcsError::NonFinite(_))
            ),
            "bits {bits}"
        );
    }
}

#[test]
fn integers_beyond_two_to_the_53_are_rejected() {
    let value = serde_json::json!({"n": 9007199254740993u64});
    assert!(matches!(
        jcs::canonicalize(&value),
        Err(JcsError::UnsafeInteger(_))
    ));
    let value = serde_json::json!({"n": -9007199254740992i64, "m": 9007199254740992u64});
    assert_eq!(
        jcs::canonicalize(&value).expect("safe"),
        br#"{"m":9007199254740992,"n":-9007199254740992}"#
    );
}

#[test]
fn keys_sort_by_utf16_code_units_not_code_points() {
    // U+1F600 is D83D DE00 in UTF-16, which sorts before U+FB33 although its code point is larger.
    let value = serde_json::json!({"\u{fb33}": 1, "\u{1f600}": 2});
    assert_eq!(
        String::from_utf8(jcs::canonicalize(&value).expect("ok")).expect("utf8"),
        "{\"\u{1f600}\":2,\"\u{fb33}\":1}"
    );
}
