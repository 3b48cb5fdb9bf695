//! GetVerificationStatus: where the signed-in user stands. The token is
//! checked and the RPC's own rate decided as for the other two; then
//! Cognito's GetUser (with the user's token) says which attributes the user
//! has and whether they are verified, and the limits are *read* (never
//! consumed, locally or on Redis) for when the next code could go and how
//! many sends and attempts are left.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::{checks::caller_of, key_wait, VerificationService, PHONE};
use crate::{
    audit::Entry,
    contact::Contact,
    convert,
    deadline::Deadline,
    error::Error,
    limits::{
        standing::{Asked, SendStanding},
        Limit,
    },
    proto,
    rpc::Operation,
    sms::NumberFacts,
};

const OP: Operation = Operation::GetVerificationStatus;
const EMAIL: &str = "email";

impl VerificationService {
    /// GetVerificationStatus, with its audit event.
    pub(super) async fn status(
        self,
        request: Request<proto::GetVerificationStatusRequest>,
    ) -> Result<Response<proto::GetVerificationStatusResponse>, Status> {
        let mut audit = Entry::start(OP, request.extensions());
        let caller = caller_of(request.extensions());
        let deadline = Deadline::from_metadata(request.metadata());
        let answer = async {
            let token = convert::status(request).map_err(|k| Error::new(OP, k))?;
            audit.token(&token);
            let who = self.checks.token(OP, &token, key_wait(deadline)).await?;
            audit.checked(&who.token);
            self.checks.admit(OP, &who, "", &caller).await?;
            let budget = self.budget(OP, deadline)?;
            let contacts = self
                .cognito
                .get_user(OP, &who.token.region, &token, budget)
                .await?;
            let phone = contacts.phone.expose().map(NumberFacts::of);
            let asked = [
                Asked {
                    attribute: EMAIL,
                    sms: false,
                    sms_prefix: None,
                },
                Asked {
                    attribute: PHONE,
                    sms: true,
                    sms_prefix: phone.as_ref().and_then(|f| f.prefix.as_deref()),
                },
            ];
            let standing = self.checks.standing(OP, &who, &asked).await?;
            let country_refused = phone
                .as_ref()
                .is_some_and(|f| self.checks.sms_country_refused(f));
            let email = attribute(EMAIL, &contacts.email, standing.sends[0], None, false);
            let phone = attribute(
                PHONE,
                &contacts.phone,
                standing.sends[1],
                phone.as_ref(),
                country_refused,
            );
            Ok::<_, Error>(proto::GetVerificationStatusResponse {
                attributes: vec![email, phone],
                sends_left: standing.sends_left,
                verify_attempts_left: standing.verifies_left,
            })
        }
        .await;
        match answer {
            Ok(response) => {
                audit.succeeded();
                Ok(Response::new(response))
            }
            Err(e) => Err(audit.failed(e)),
        }
    }
}

/// One attribute's status.
fn attribute(
    name: &str,
    contact: &Contact,
    send: SendStanding,
    number: Option<&NumberFacts>,
    country_refused: bool,
) -> proto::AttributeStatus {
    let medium = if name == PHONE {
        proto::DeliveryMedium::Sms
    } else {
        proto::DeliveryMedium::Email
    };
    let blocked = if country_refused {
        Some("SMS_COUNTRY_NOT_ALLOWED")
    } else {
        send.blocked_by.map(Limit::reason)
    };
    proto::AttributeStatus {
        attribute_name: name.to_owned(),
        present: contact.present(),
        destination: contact.masked(name),
        delivery_medium: medium.into(),
        verified: contact.verified,
        next_send_in: Some(duration(send.wait)),
        send_blocked_by: blocked
            .and_then(proto::ErrorReason::from_str_name)
            .unwrap_or(proto::ErrorReason::Unspecified)
            .into(),
        country: number.and_then(|n| n.country.clone()).unwrap_or_default(),
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
