//! The audit trail: one structured event per GetUserAttributeVerificationCode
//! (`send`), per VerifyUserAttribute (`verify`) and per GetVerificationStatus
//! (`status`), whatever the outcome, on
//! the log target [`AUDIT_TARGET`] with its own output (`--audit-log`):
//! time, trace id, caller (peer address, mTLS identity), user pool and `sub`
//! from the token's claims, attribute, outcome (gRPC code and `reason`), the
//! masked destination Cognito returned, and the AWS request id.
//!
//! The pool and `sub` are the checked token's; the event says
//! `claims=verified` when its signature was checked against the pool's keys,
//! `unverified` otherwise (and for a token the local check refused, whose
//! claims are then read as they stand). A repeat of an idempotent send says
//! `replay=true`. A send for a phone number names the number's country
//! (`sms.country`) and, when it went outside the allowed countries in
//! `monitor` mode, `sms.country_monitored=true`. Never the token, never the
//! code, never a phone number or an email address (only the masked
//! destination Cognito returned).

use std::sync::atomic::{AtomicBool, Ordering};

use tonic::{Code, Status};

use crate::{
    auth::{CheckedToken, Claims, Signature},
    domain::{AccessToken, AttributeName, DeliveryMedium, Sent},
    error::Error,
    rpc::{code_name, Operation, RpcTraceId},
    status::{code_of, reason_of, request_id_of},
    transport::Peer,
};

pub use crate::telemetry::logs::AUDIT_TARGET;

/// Whether audit events are written anywhere (set once, at start-up).
static ON: AtomicBool = AtomicBool::new(false);

/// Turns the audit trail on or off; off skips reading the token's claims.
pub fn set_on(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// One audit event in the making; [`Entry::finish`] writes it.
#[derive(Debug)]
pub struct Entry {
    operation: Operation,
    peer: Option<Peer>,
    trace_id: Option<RpcTraceId>,
    pool: Option<String>,
    sub: Option<String>,
    /// `verified` when the token's signature was checked, else `unverified`.
    claims: Option<&'static str>,
    attribute: Option<String>,
    replay: bool,
    destination: Option<String>,
    medium: Option<&'static str>,
    aws_request_id: Option<String>,
    sms_country: Option<String>,
    sms_monitored: bool,
}

impl Entry {
    /// An event for an RPC of `operation`, with what its request's
    /// extensions say (the peer, the trace id).
    pub fn start(operation: Operation, extensions: &http::Extensions) -> Self {
        let on = on();
        Self {
            operation,
            peer: on.then(|| extensions.get::<Peer>().cloned()).flatten(),
            trace_id: on
                .then(|| extensions.get::<RpcTraceId>().copied())
                .flatten(),
            pool: None,
            sub: None,
            claims: None,
            attribute: None,
            replay: false,
            destination: None,
            medium: None,
            aws_request_id: None,
            sms_country: None,
            sms_monitored: false,
        }
    }

    /// Whose call, for an RPC without an attribute: the token's claims,
    /// unverified, as in [`Entry::user`].
    pub fn token(&mut self, token: &AccessToken) {
        if on() {
            let claims = Claims::unverified(token);
            self.pool = claims.as_ref().and_then(Claims::pool_id).map(capped);
            self.sub = claims.as_ref().and_then(|c| c.sub.as_deref()).map(capped);
            self.claims = claims.map(|_| "unverified");
        }
    }

    /// The country of the phone number a code is for (ISO 3166-1 alpha-2,
    /// or `unknown`), and whether it is outside the allowed countries and
    /// sent anyway (`monitor`).
    pub fn sms_country(&mut self, country: &str, monitored: bool) {
        if on() {
            self.sms_country = Some(country.to_owned());
            self.sms_monitored = monitored;
        }
    }

    /// Whose attribute: the token's claims, unverified (kept when the token
    /// is then rejected: they say who tried).
    pub fn user(&mut self, token: &AccessToken, attribute: &AttributeName) {
        if on() {
            let claims = Claims::unverified(token);
            self.pool = claims.as_ref().and_then(Claims::pool_id).map(capped);
            self.sub = claims.as_ref().and_then(|c| c.sub.as_deref()).map(capped);
            self.claims = claims.map(|_| "unverified");
            self.attribute = Some(attribute.as_str().to_owned());
        }
    }

    /// The token passed the local check: its pool and `sub`, verified when
    /// its signature was.
    pub fn checked(&mut self, token: &CheckedToken) {
        if on() {
            self.pool = Some(capped(&token.pool_id));
            self.sub = Some(capped(&token.sub));
            self.claims = Some(match token.signature {
                Signature::Verified => "verified",
                Signature::Unverified => "unverified",
            });
        }
    }

    /// The answer is a repeat's: nothing was sent.
    pub fn replayed(&mut self) {
        self.replay = true;
    }

    /// What Cognito said about the delivery.
    pub fn sent(&mut self, sent: &Sent) {
        if !on() {
            return;
        }
        if let Some(d) = &sent.delivery {
            self.destination = d.destination.clone();
            self.medium = d.medium.map(medium_name);
        }
        self.aws_request_id = sent.request_id.clone();
    }

    /// The AWS request id of a success.
    pub fn request_id(&mut self, id: Option<String>) {
        if on() {
            self.aws_request_id = id;
        }
    }

    /// Writes the event of a failed RPC and returns its status.
    pub fn failed(self, error: Error) -> Status {
        if !on() {
            return Status::from(error);
        }
        let code = code_of(&error);
        let reason = reason_of(&error.kind).into_owned();
        let request_id = request_id_of(&error.kind).map(str::to_owned);
        let status = Status::from(error);
        self.write(code, Some(&reason), request_id.as_deref());
        status
    }

    /// Writes the event of a successful RPC.
    pub fn succeeded(self) {
        if on() {
            let request_id = self.aws_request_id.clone();
            self.write(Code::Ok, None, request_id.as_deref());
        }
    }

    fn write(self, code: Code, reason: Option<&str>, request_id: Option<&str>) {
        let event = match self.operation {
            Operation::GetUserAttributeVerificationCode => "send",
            Operation::VerifyUserAttribute => "verify",
            Operation::GetVerificationStatus => "status",
        };
        tracing::info!(
            target: AUDIT_TARGET,
            event,
            trace_id = self.trace_id.map(|t| tracing::field::display(t.0)),
            peer.address = self.peer.as_ref().map(|p| tracing::field::display(p.remote_addr())),
            caller = self.peer.as_ref().and_then(Peer::identity),
            user.pool = self.pool.as_deref(),
            user.sub = self.sub.as_deref(),
            claims = self.claims,
            attribute = self.attribute.as_deref(),
            replay = self.replay.then_some(true),
            grpc.code = code_name(code),
            reason,
            destination = self.destination.as_deref(),
            medium = self.medium,
            sms.country = self.sms_country.as_deref(),
            sms.country_monitored = self.sms_monitored.then_some(true),
            aws.request_id = request_id,
            "audit"
        );
    }
}

/// Most characters of a claim written to the trail: claims are unverified
/// input, and Cognito's ids are far shorter.
const CLAIM_MAX_CHARS: usize = 128;

fn capped(claim: &str) -> String {
    match claim.char_indices().nth(CLAIM_MAX_CHARS) {
        Some((end, _)) => claim[..end].to_owned(),
        None => claim.to_owned(),
    }
}

fn medium_name(medium: DeliveryMedium) -> &'static str {
    match medium {
        DeliveryMedium::Email => "EMAIL",
        DeliveryMedium::Sms => "SMS",
        DeliveryMedium::Other => "OTHER",
    }
}
