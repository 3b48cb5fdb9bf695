//! The service's two requests as the tests and the bench build them, so
//! that a field added to either message is added here once. A test that is
//! about one field sets it over these with `..`.
//!
//! The bench includes this file by path (`#[path = ...] mod requests;`), as
//! it includes `common/flags.rs`: a bench cannot import a module of the test
//! binary. Hence this file uses nothing but the library, and every item in
//! it is used by both.

use cognito_verify::{
    proto::GetUserAttributeVerificationCodeRequest, proto::GetVerificationStatusRequest,
    proto::VerifyUserAttributeRequest,
};

/// A send (GetUserAttributeVerificationCode) of a code for `attribute`, with
/// `token`: no client metadata, no request id.
pub fn send_request(token: &str, attribute: &str) -> GetUserAttributeVerificationCodeRequest {
    GetUserAttributeVerificationCodeRequest {
        access_token: token.to_owned(),
        attribute_name: attribute.to_owned(),
        client_metadata: Default::default(),
        request_id: String::new(),
    }
}

/// A verify (VerifyUserAttribute) of `code` for `attribute`, with `token`.
pub fn verify_request(token: &str, attribute: &str, code: &str) -> VerifyUserAttributeRequest {
    VerifyUserAttributeRequest {
        access_token: token.to_owned(),
        attribute_name: attribute.to_owned(),
        code: code.to_owned(),
    }
}

/// A status question (GetVerificationStatus) with `token`.
pub fn status_request(token: &str) -> GetVerificationStatusRequest {
    GetVerificationStatusRequest {
        access_token: token.to_owned(),
    }
}
