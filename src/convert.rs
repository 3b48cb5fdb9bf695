//! The boundary between the wire and the domain: proto requests are parsed
//! into domain types (or rejected with the field that is wrong), domain
//! results become proto responses.

use tonic::{metadata::MetadataMap, Request};

use crate::{
    domain::{
        AccessToken, AttributeName, ClientMetadata, CodeDelivery, DeliveryMedium, RequestId,
        SendCode, VerificationCode, VerifyCode,
    },
    error::{ErrorKind, FieldViolation},
    proto,
};

/// Parses a GetUserAttributeVerificationCode request.
pub fn send_code(
    request: Request<proto::GetUserAttributeVerificationCodeRequest>,
) -> Result<SendCode, ErrorKind> {
    let (metadata, _, msg) = request.into_parts();
    Ok(SendCode {
        token: access_token(msg.access_token, &metadata)?,
        attribute: AttributeName::parse(msg.attribute_name).map_err(ErrorKind::InvalidRequest)?,
        client_metadata: ClientMetadata::parse(msg.client_metadata)
            .map_err(ErrorKind::InvalidRequest)?,
        request_id: RequestId::parse(&msg.request_id).map_err(ErrorKind::InvalidRequest)?,
    })
}

/// Parses a VerifyUserAttribute request.
pub fn verify_code(
    request: Request<proto::VerifyUserAttributeRequest>,
) -> Result<VerifyCode, ErrorKind> {
    let (metadata, _, msg) = request.into_parts();
    Ok(VerifyCode {
        token: access_token(msg.access_token, &metadata)?,
        attribute: AttributeName::parse(msg.attribute_name).map_err(ErrorKind::InvalidRequest)?,
        code: VerificationCode::parse(msg.code).map_err(ErrorKind::InvalidRequest)?,
    })
}

/// Parses a GetVerificationStatus request: its token.
pub fn status(
    request: Request<proto::GetVerificationStatusRequest>,
) -> Result<AccessToken, ErrorKind> {
    let (metadata, _, msg) = request.into_parts();
    access_token(msg.access_token, &metadata)
}

/// The token from the `access_token` field or, when that is empty, from
/// `authorization: Bearer <token>` metadata (scheme case-insensitive).
fn access_token(field: String, metadata: &MetadataMap) -> Result<AccessToken, ErrorKind> {
    if !field.is_empty() {
        return AccessToken::parse(field, "access_token").map_err(ErrorKind::InvalidRequest);
    }
    let Some(value) = metadata.get("authorization") else {
        return Err(ErrorKind::MissingToken);
    };
    let value = value.to_str().map_err(|_| {
        ErrorKind::InvalidRequest(FieldViolation::new(
            "authorization",
            "must be `Bearer <token>` in ASCII",
        ))
    })?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(ErrorKind::MissingToken),
    };
    if token.is_empty() {
        return Err(ErrorKind::MissingToken);
    }
    AccessToken::parse(token.to_owned(), "authorization").map_err(ErrorKind::InvalidRequest)
}

impl From<CodeDelivery> for proto::CodeDeliveryDetails {
    fn from(d: CodeDelivery) -> Self {
        let medium = match d.medium {
            Some(DeliveryMedium::Email) => proto::DeliveryMedium::Email,
            Some(DeliveryMedium::Sms) => proto::DeliveryMedium::Sms,
            Some(DeliveryMedium::Other) | None => proto::DeliveryMedium::Unspecified,
        };
        Self {
            destination: d.destination.unwrap_or_default(),
            delivery_medium: medium.into(),
            attribute_name: d.attribute_name.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn field_wins_over_metadata() {
        let t = access_token("field-token".into(), &md("Bearer meta-token")).unwrap();
        assert_eq!(t.expose(), "field-token");
    }

    #[test]
    fn bearer_metadata_is_accepted() {
        assert_eq!(
            access_token(String::new(), &md("Bearer abc.def"))
                .unwrap()
                .expose(),
            "abc.def"
        );
        assert_eq!(
            access_token(String::new(), &md("bearer abc"))
                .unwrap()
                .expose(),
            "abc"
        );
    }

    #[test]
    fn missing_or_foreign_schemes_are_unauthenticated() {
        assert!(matches!(
            access_token(String::new(), &MetadataMap::new()),
            Err(ErrorKind::MissingToken)
        ));
        assert!(matches!(
            access_token(String::new(), &md("Basic abc")),
            Err(ErrorKind::MissingToken)
        ));
        assert!(matches!(
            access_token(String::new(), &md("Bearer ")),
            Err(ErrorKind::MissingToken)
        ));
    }

    #[test]
    fn bad_metadata_token_names_authorization() {
        match access_token(String::new(), &md("Bearer a+b")) {
            Err(ErrorKind::InvalidRequest(v)) => assert_eq!(v.field, "authorization"),
            other => panic!("{other:?}"),
        }
    }
}
