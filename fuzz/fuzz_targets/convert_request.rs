//! Request conversion and validation (`convert::send_code`/`verify_code`):
//! the request message decoded from its protobuf bytes as the server's prost
//! codec decodes it, plus optional `authorization` metadata. A rejection is
//! mapped to a `tonic::Status` too. Checks: no panic, and what passes
//! validation keeps the domain types' bounds.
//!
//! Input: one flags byte (bit 0: VerifyUserAttribute, else
//! GetUserAttributeVerificationCode; bit 1: an `authorization` value follows,
//! up to the first newline), then the message's protobuf encoding.

#![no_main]
#![forbid(unsafe_code)]

use cognito_verify::{convert, ATTRIBUTE_NAME_MAX_CHARS, CLIENT_METADATA_MAX_CHARS, CLIENT_METADATA_MAX_TOTAL_BYTES, CODE_MAX_CHARS, Error, ErrorKind, Operation, proto::GetUserAttributeVerificationCodeRequest, proto::VerifyUserAttributeRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tonic::{
    metadata::{MetadataMap, MetadataValue},
    Code, Request, Status,
};

fn token_ok(token: &str) {
    assert!(!token.is_empty());
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.')));
}

fn attribute_ok(name: &str) {
    assert!((1..=ATTRIBUTE_NAME_MAX_CHARS).contains(&name.chars().count()));
}

/// A rejection becomes a status the caller can act on.
fn rejected(operation: Operation, kind: ErrorKind) {
    assert!(matches!(
        kind,
        ErrorKind::InvalidRequest(_) | ErrorKind::MissingToken
    ));
    let status = Status::from(Error::new(operation, kind));
    assert!(matches!(
        status.code(),
        Code::InvalidArgument | Code::Unauthenticated
    ));
}

fn verify(metadata: MetadataMap, wire: &[u8]) {
    let Ok(msg) = VerifyUserAttributeRequest::decode(wire) else {
        return;
    };
    let mut request = Request::new(msg);
    *request.metadata_mut() = metadata;
    match convert::verify_code(request) {
        Ok(v) => {
            token_ok(v.token.expose());
            attribute_ok(v.attribute.as_str());
            let code = v.code.expose();
            assert!((1..=CODE_MAX_CHARS).contains(&code.chars().count()));
            assert!(!code.chars().any(char::is_whitespace));
        }
        Err(kind) => rejected(Operation::VerifyUserAttribute, kind),
    }
}

fn send(metadata: MetadataMap, wire: &[u8]) {
    let Ok(msg) = GetUserAttributeVerificationCodeRequest::decode(wire) else {
        return;
    };
    let request_id = msg.request_id.clone();
    let mut request = Request::new(msg);
    *request.metadata_mut() = metadata;
    match convert::send_code(request) {
        Ok(s) => {
            token_ok(s.token.expose());
            attribute_ok(s.attribute.as_str());
            assert_eq!(s.request_id.is_none(), request_id.is_empty());
            let entries = s.client_metadata.into_inner().unwrap_or_default();
            let mut total = 0;
            for (k, v) in &entries {
                assert!(k.chars().count() <= CLIENT_METADATA_MAX_CHARS);
                assert!(v.chars().count() <= CLIENT_METADATA_MAX_CHARS);
                total += k.len() + v.len();
            }
            assert!(total <= CLIENT_METADATA_MAX_TOTAL_BYTES);
        }
        Err(kind) => rejected(Operation::GetUserAttributeVerificationCode, kind),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut wire)) = data.split_first() else {
        return;
    };
    let mut metadata = MetadataMap::new();
    if flags & 2 != 0 {
        let (value, rest) = match wire.iter().position(|&b| b == b'\n') {
            Some(at) => (&wire[..at], &wire[at + 1..]),
            None => (wire, &[][..]),
        };
        wire = rest;
        // Bytes an HTTP/2 header cannot carry never reach the service.
        let Ok(value) = MetadataValue::try_from(value) else {
            return;
        };
        metadata.insert("authorization", value);
    }
    if flags & 1 != 0 {
        verify(metadata, wire);
    } else {
        send(metadata, wire);
    }
});
