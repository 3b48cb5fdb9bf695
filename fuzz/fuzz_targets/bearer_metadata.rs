//! The `authorization: Bearer <token>` metadata, read when the request's
//! `access_token` field is empty (the private `convert::access_token`,
//! reached through `convert::verify_code`). The input is the header value's
//! bytes. Checks: no panic, and an accepted token is exactly the trimmed text
//! after a case-insensitive `bearer` scheme, in Cognito's token alphabet.

#![no_main]
#![forbid(unsafe_code)]

use cognito_verify::{convert, ErrorKind, proto::VerifyUserAttributeRequest};
use libfuzzer_sys::fuzz_target;
use tonic::{metadata::MetadataValue, Request};

fuzz_target!(|data: &[u8]| {
    let mut request = Request::new(VerifyUserAttributeRequest {
        access_token: String::new(),
        attribute_name: "email".to_owned(),
        code: "123456".to_owned(),
    });
    // Bytes an HTTP/2 header cannot carry never reach the service.
    let Ok(value) = MetadataValue::try_from(data) else {
        return;
    };
    request.metadata_mut().insert("authorization", value);
    let text = std::str::from_utf8(data).ok().filter(|t| t.is_ascii());
    match convert::verify_code(request) {
        Ok(parsed) => {
            let text = text.expect("an accepted header is ASCII");
            let (scheme, rest) = text.split_once(' ').expect("scheme and token");
            assert!(scheme.eq_ignore_ascii_case("bearer"));
            let token = parsed.token.expose();
            assert_eq!(token, rest.trim());
            assert!(!token.is_empty());
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.')));
        }
        Err(ErrorKind::MissingToken) => {}
        Err(ErrorKind::InvalidRequest(v)) => assert_eq!(v.field, "authorization"),
        Err(other) => panic!("unexpected rejection {other:?}"),
    }
});
