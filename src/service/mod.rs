//! The gRPC handlers: parse the request into domain types, pass the
//! [`checks`] (token, idempotency, limits; for a code by SMS the SMS guard,
//! after Cognito's GetUser gave the number), call Cognito within the time
//! budget, map the result; count codes sent and attributes verified, and
//! write the audit event. Errors become statuses in `status.rs`.
//! [`status`] answers GetVerificationStatus.
//!
//! Each RPC's work runs in a task of its own that outlives the RPC: once a
//! call has gone to Cognito, the SMS is sent whether or not the caller still
//! listens, so a caller that cancels must not make that call vanish from the
//! metrics and the audit trail. The task keeps the RPC's admission slot, and
//! shutdown waits for these tasks within the drain.

pub mod checks;
mod status;

use std::{future::Future, time::Duration};

use bytes::Bytes;
use prost::Message as _;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use self::checks::{caller_of, Checks};
use crate::{
    audit::Entry,
    cognito::Cognito,
    convert,
    deadline::Deadline,
    domain::{AccessToken, AttributeName, DeliveryMedium, Sent},
    error::{Error, ErrorKind},
    idempotency::{Begin, Ticket},
    middleware::AdmissionSlot,
    proto::{self, user_attribute_verification_service_server::UserAttributeVerificationService},
    rpc::Operation,
    sms::NumberFacts,
    telemetry::metrics::metrics,
};

/// Implements `cognito.verify.v1.UserAttributeVerificationService`.
#[derive(Debug, Clone)]
pub struct VerificationService {
    cognito: Cognito,
    checks: Checks,
    tasks: TaskTracker,
}

/// What a send did.
enum Outcome {
    /// Cognito sent a code; the ticket records the answer for repeats; what
    /// the SMS guard knew of the number, for a code by SMS.
    Sent(Sent, Option<Ticket>, Option<SmsSent>),
    /// A repeat of an idempotent send: the first answer, encoded.
    Replayed(Bytes),
}

impl VerificationService {
    /// A service calling Cognito through `cognito`, after `checks`.
    pub fn new(cognito: Cognito, checks: Checks) -> Self {
        Self {
            cognito,
            checks,
            tasks: TaskTracker::new(),
        }
    }

    /// The tasks of the RPCs in progress (shutdown waits for them).
    pub fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }

    /// Runs an RPC's work in its own task, in the RPC's span, holding the
    /// RPC's admission slot until the work is done.
    ///
    /// The work's future is made inside the task: passed in made, it would
    /// sit in this future's state too (the caller's, on the connection's
    /// task) next to the spawned copy, and the SDK call's future is tens of
    /// KiB: the bench measured ~35 KiB more RSS per RPC in flight.
    async fn run<T: Send + 'static, F>(
        &self,
        slot: Option<AdmissionSlot>,
        work: impl FnOnce() -> F + Send + 'static,
    ) -> Result<T, Status>
    where
        F: Future<Output = Result<T, Status>> + Send + 'static,
    {
        // The work's future (the SDK call's, tens of KiB) is boxed where it
        // is made: spawning a future copies it, twice, and so would every
        // move of a task that held it inline.
        let task = self.tasks.spawn(
            async move {
                let _slot = slot;
                Box::pin(work()).await
            }
            .in_current_span(),
        );
        task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "RPC task failed");
            Err(Status::internal("internal error"))
        })
    }

    /// The Cognito call's time budget, or DEADLINE_EXCEEDED without calling
    /// Cognito when the caller's deadline leaves no time.
    fn budget(&self, op: Operation, deadline: Deadline) -> Result<Duration, Error> {
        deadline
            .budget(self.cognito.call_timeout())
            .ok_or(Error::new(
                op,
                ErrorKind::Timeout {
                    budget: Duration::ZERO,
                },
            ))
    }

    /// GetUserAttributeVerificationCode, with its metrics and audit event.
    async fn send(
        self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<proto::GetUserAttributeVerificationCodeResponse>, Status> {
        const OP: Operation = Operation::GetUserAttributeVerificationCode;
        let mut audit = Entry::start(OP, request.extensions());
        let caller = caller_of(request.extensions());
        let deadline = Deadline::from_metadata(request.metadata());
        let outcome = async {
            let req = convert::send_code(request).map_err(|k| Error::new(OP, k))?;
            audit.user(&req.token, &req.attribute);
            let who = self
                .checks
                .token(OP, &req.token, key_wait(deadline))
                .await?;
            audit.checked(&who.token);
            let ticket = match req.request_id {
                None => None,
                Some(id) => {
                    let wait_until = Instant::now() + self.budget(OP, deadline)?;
                    match self
                        .checks
                        .idempotent(&who, &req.attribute, id, wait_until)
                        .await?
                    {
                        Begin::Replay(answer) => return Ok(Outcome::Replayed(answer)),
                        Begin::First(ticket) => Some(ticket),
                    }
                }
            };
            let sms = if req.attribute.as_str() == PHONE {
                self.guard_sms(&who, &req.token, deadline, &caller, &mut audit)
                    .await?
            } else {
                self.checks
                    .admit(OP, &who, req.attribute.as_str(), &caller)
                    .await?;
                None
            };
            let budget = self.budget(OP, deadline)?;
            let sent = self
                .cognito
                .send_code(&who.token.region, req, budget)
                .await?;
            Ok::<_, Error>(Outcome::Sent(sent, ticket, sms))
        }
        .await;
        let response = match outcome {
            Ok(Outcome::Sent(sent, ticket, sms)) => {
                metrics().code_sent(medium_label(&sent));
                if let Some(sms) = sms.filter(|_| medium_label(&sent) == "sms") {
                    metrics().sms_sent(&sms.country);
                    if sms.monitored {
                        metrics().sms_monitored(&sms.country);
                    }
                }
                audit.sent(&sent);
                let response = proto::GetUserAttributeVerificationCodeResponse {
                    code_delivery_details: sent.delivery.map(Into::into),
                };
                if let Some(ticket) = ticket {
                    ticket.succeeded(response.encode_to_vec().into()).await;
                }
                response
            }
            Ok(Outcome::Replayed(answer)) => {
                metrics().replayed();
                audit.replayed();
                proto::GetUserAttributeVerificationCodeResponse::decode(answer).map_err(|e| {
                    tracing::error!(error = %e, "a recorded answer does not decode");
                    Status::internal("internal error")
                })?
            }
            Err(e) => return Err(audit.failed(e)),
        };
        audit.succeeded();
        Ok(Response::new(response))
    }

    /// VerifyUserAttribute, with its metrics and audit event.
    async fn verify(
        self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        const OP: Operation = Operation::VerifyUserAttribute;
        let mut audit = Entry::start(OP, request.extensions());
        let caller = caller_of(request.extensions());
        let deadline = Deadline::from_metadata(request.metadata());
        let verified = async {
            let req = convert::verify_code(request).map_err(|k| Error::new(OP, k))?;
            audit.user(&req.token, &req.attribute);
            let who = self
                .checks
                .token(OP, &req.token, key_wait(deadline))
                .await?;
            audit.checked(&who.token);
            self.checks
                .admit(OP, &who, req.attribute.as_str(), &caller)
                .await?;
            let attribute: AttributeName = req.attribute.clone();
            let token = req.token.clone();
            let budget = self.budget(OP, deadline)?;
            let request_id = self.cognito.verify(&who.token.region, req, budget).await?;
            Ok::<_, Error>((attribute, request_id, token, who.token.region))
        }
        .await;
        match verified {
            Ok((attribute, request_id, token, region)) => {
                metrics().attribute_verified(attribute.as_str());
                if attribute.as_str() == PHONE {
                    self.count_verified_number(region, token);
                }
                audit.request_id(request_id);
                audit.succeeded();
                Ok(Response::new(proto::VerifyUserAttributeResponse {}))
            }
            Err(e) => Err(audit.failed(e)),
        }
    }
}

impl VerificationService {
    /// The checks of a code for `phone_number`, with the SMS guard: the
    /// caller's and the RPC's rates, Cognito's GetUser for the number (the
    /// request has only the attribute's name), its country, then the
    /// user's limits and the guard's daily and prefix limits in one
    /// decision. `Some` for the metrics of the send; `None` when the user
    /// has no number (only the user's limits apply; Cognito then refuses
    /// the send itself).
    async fn guard_sms(
        &self,
        who: &checks::Admitted,
        token: &AccessToken,
        deadline: Deadline,
        caller: &str,
        audit: &mut Entry,
    ) -> Result<Option<SmsSent>, Error> {
        const OP: Operation = Operation::GetUserAttributeVerificationCode;
        self.checks.admit_rates(OP, who, PHONE, caller).await?;
        let budget = self.budget(OP, deadline)?;
        let contacts = self
            .cognito
            .get_user(OP, &who.token.region, token, budget)
            .await?;
        let facts = contacts.phone.expose().map(NumberFacts::of);
        let monitored = match &facts {
            Some(facts) => {
                let verdict = self.checks.sms_country(OP, facts);
                audit.sms_country(
                    facts.country_label(),
                    verdict.as_ref().is_ok_and(|monitored| *monitored),
                );
                verdict?
            }
            None => false,
        };
        self.checks
            .admit_sms(OP, who, PHONE, caller, facts.as_ref())
            .await?;
        Ok(facts.map(|f| SmsSent {
            country: f.country_label().to_owned(),
            monitored,
        }))
    }

    /// Counts a verified phone number by its country, which only GetUser
    /// knows: asked after the answer went out, in a task of its own (drained
    /// at shutdown like the RPCs'), so the verify is not slower for it.
    fn count_verified_number(&self, region: String, token: AccessToken) {
        let cognito = self.cognito.clone();
        self.tasks.spawn(
            async move {
                let budget = cognito.call_timeout();
                let country = match cognito
                    .get_user(Operation::VerifyUserAttribute, &region, &token, budget)
                    .await
                {
                    Ok(contacts) => contacts
                        .phone
                        .expose()
                        .map(|n| NumberFacts::of(n).country_label().to_owned()),
                    Err(_) => None,
                };
                metrics().sms_verified(country.as_deref().unwrap_or("unknown"));
            }
            .in_current_span(),
        );
    }
}

/// The attribute whose codes go by SMS.
const PHONE: &str = "phone_number";

/// What the SMS guard knew of the number a code went to.
struct SmsSent {
    /// ISO 3166-1 alpha-2, or `unknown`.
    country: String,
    /// Outside the allowed countries, sent because the mode is `monitor`.
    monitored: bool,
}

#[tonic::async_trait]
impl UserAttributeVerificationService for VerificationService {
    async fn get_user_attribute_verification_code(
        &self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<proto::GetUserAttributeVerificationCodeResponse>, Status> {
        let slot = request.extensions().get::<AdmissionSlot>().cloned();
        let service = self.clone();
        self.run(slot, move || service.send(request)).await
    }

    async fn verify_user_attribute(
        &self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        let slot = request.extensions().get::<AdmissionSlot>().cloned();
        let service = self.clone();
        self.run(slot, move || service.verify(request)).await
    }

    async fn get_verification_status(
        &self,
        request: Request<proto::GetVerificationStatusRequest>,
    ) -> Result<Response<proto::GetVerificationStatusResponse>, Status> {
        let slot = request.extensions().get::<AdmissionSlot>().cloned();
        let service = self.clone();
        self.run(slot, move || service.status(request)).await
    }
}

/// How long a token check may wait for its pool's key set: what the
/// caller's deadline leaves, at most [`MAX_KEY_WAIT`]; nothing when it
/// leaves nothing (cached keys still answer at once).
fn key_wait(deadline: Deadline) -> Option<Duration> {
    Some(deadline.budget(MAX_KEY_WAIT).unwrap_or(Duration::ZERO))
}

/// The longest a call waits for a key-set fetch: a fetch's own bound.
const MAX_KEY_WAIT: Duration = Duration::from_secs(4);

/// The `medium` label of a delivered code.
fn medium_label(sent: &Sent) -> &'static str {
    match sent.delivery.as_ref().and_then(|d| d.medium) {
        Some(DeliveryMedium::Email) => "email",
        Some(DeliveryMedium::Sms) => "sms",
        _ => "unknown",
    }
}
