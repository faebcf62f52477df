//! SDES keying: RFC 4568 inline key parameters turned into master keys.

use srtpd::keying::{KeyingError, sdes};
use srtpd::srtp::{MasterKey, SrtpProfile};

/// RFC 4568 section 5.1's example key (AES_CM_128_HMAC_SHA1_80).
const RFC4568_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

#[test]
fn inline_and_bare_forms_give_the_same_key() {
    let a = sdes::parse_inline(
        SrtpProfile::AesCm128HmacSha1_80,
        "tx",
        &format!("inline:{RFC4568_KEY}"),
    )
    .unwrap();
    let b = sdes::parse_inline(SrtpProfile::AesCm128HmacSha1_80, "tx", RFC4568_KEY).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.key(), b"=-n@%^x!Bjufr9)?");
    assert_eq!(a.salt(), b",#5h\\`=&]{qiPQ");
    assert_eq!(sdes::encode_inline(&a), RFC4568_KEY);
}

#[test]
fn call_keys_per_direction() {
    let tx = MasterKey::new(SrtpProfile::AeadAes256Gcm, &[1; 32], &[2; 12]).unwrap();
    let rx = MasterKey::new(SrtpProfile::AeadAes256Gcm, &[3; 32], &[4; 12]).unwrap();
    let keys = sdes::call_keys(
        "AEAD_AES_256_GCM",
        &sdes::encode_inline(&tx),
        &format!("inline:{}", sdes::encode_inline(&rx)),
    )
    .unwrap();
    assert_eq!(keys.profile, SrtpProfile::AeadAes256Gcm);
    assert_eq!((keys.tx, keys.rx), (tx, rx));
}

#[test]
fn bad_parameters_name_the_field_and_the_problem() {
    let p = SrtpProfile::AesCm128HmacSha1_80;
    let err = sdes::parse_inline(p, "rx", &format!("inline:{RFC4568_KEY}|2^20|1:4")).unwrap_err();
    assert!(
        matches!(err, KeyingError::Unsupported { field: "rx", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lifetime and MKI"), "{err}");

    let err = sdes::parse_inline(p, "tx", "c2hvcnQ=").unwrap_err();
    assert_eq!(
        err,
        KeyingError::BadLength {
            field: "tx",
            expected: 30,
            got: 5
        }
    );
    assert_eq!(err.to_string(), "tx: 5 bytes, expected 30");

    let err = sdes::parse_inline(p, "tx", "not base64 at all!").unwrap_err();
    assert!(
        matches!(err, KeyingError::BadBase64 { field: "tx", .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains("not base64"),
        "the error echoes the input: {err}"
    );

    let err = sdes::call_keys("AES_CM_129", RFC4568_KEY, RFC4568_KEY).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown SRTP profile \"AES_CM_129\""),
        "{err}"
    );

    // A 256-bit profile refuses a 128-bit key.
    let err = sdes::call_keys("AES_256_CM_HMAC_SHA1_80", RFC4568_KEY, RFC4568_KEY).unwrap_err();
    assert_eq!(
        err,
        KeyingError::BadLength {
            field: "tx",
            expected: 46,
            got: 30
        }
    );
}
