//! The gRPC handlers: parse the request into domain types, call Cognito within
//! the time budget, map the result; count codes sent and attributes
//! verified, and write the audit event. Errors become statuses in
//! `status.rs`.
//!
//! Each RPC's work runs in a task of its own that outlives the RPC: once a
//! call has gone to Cognito, the SMS is sent whether or not the caller still
//! listens, so a caller that cancels must not make that call vanish from the
//! metrics and the audit trail. The task keeps the RPC's admission slot, and
//! shutdown waits for these tasks within the drain.

use std::{future::Future, time::Duration};

use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::{
    audit::Entry,
    cognito::Cognito,
    convert,
    deadline::Deadline,
    domain::{AttributeName, DeliveryMedium, Sent},
    error::{Error, ErrorKind, Operation},
    middleware::AdmissionSlot,
    proto::{self, user_attribute_verification_service_server::UserAttributeVerificationService},
    telemetry::metrics::metrics,
};

/// Implements `cognito.verify.v1.UserAttributeVerificationService`.
#[derive(Debug, Clone)]
pub struct VerificationService {
    cognito: Cognito,
    tasks: TaskTracker,
}

impl VerificationService {
    /// A service calling Cognito through `cognito`.
    pub fn new(cognito: Cognito) -> Self {
        Self {
            cognito,
            tasks: TaskTracker::new(),
        }
    }

    /// The tasks of the RPCs in progress (shutdown waits for them).
    pub fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }

    /// Runs an RPC's work in its own task, in the RPC's span, holding the
    /// RPC's admission slot until the work is done.
    async fn run<T: Send + 'static>(
        &self,
        slot: Option<AdmissionSlot>,
        work: impl Future<Output = Result<T, Status>> + Send + 'static,
    ) -> Result<T, Status> {
        let task = self.tasks.spawn(
            async move {
                let _slot = slot;
                work.await
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
        let deadline = Deadline::from_metadata(request.metadata());
        let sent = async {
            let req = convert::send_code(request).map_err(|k| Error::new(OP, k))?;
            audit.user(&req.token, &req.attribute);
            self.cognito
                .send_code(req, self.budget(OP, deadline)?)
                .await
        }
        .await;
        match sent {
            Ok(sent) => {
                metrics().code_sent(medium_label(&sent));
                audit.sent(&sent);
                audit.succeeded();
                Ok(Response::new(
                    proto::GetUserAttributeVerificationCodeResponse {
                        code_delivery_details: sent.delivery.map(Into::into),
                    },
                ))
            }
            Err(e) => Err(audit.failed(e)),
        }
    }

    /// VerifyUserAttribute, with its metrics and audit event.
    async fn verify(
        self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        const OP: Operation = Operation::VerifyUserAttribute;
        let mut audit = Entry::start(OP, request.extensions());
        let deadline = Deadline::from_metadata(request.metadata());
        let verified = async {
            let req = convert::verify_code(request).map_err(|k| Error::new(OP, k))?;
            audit.user(&req.token, &req.attribute);
            let attribute: AttributeName = req.attribute.clone();
            let request_id = self.cognito.verify(req, self.budget(OP, deadline)?).await?;
            Ok::<_, Error>((attribute, request_id))
        }
        .await;
        match verified {
            Ok((attribute, request_id)) => {
                metrics().attribute_verified(attribute.as_str());
                audit.request_id(request_id);
                audit.succeeded();
                Ok(Response::new(proto::VerifyUserAttributeResponse {}))
            }
            Err(e) => Err(audit.failed(e)),
        }
    }
}

#[tonic::async_trait]
impl UserAttributeVerificationService for VerificationService {
    async fn get_user_attribute_verification_code(
        &self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<proto::GetUserAttributeVerificationCodeResponse>, Status> {
        let slot = request.extensions().get::<AdmissionSlot>().cloned();
        self.run(slot, self.clone().send(request)).await
    }

    async fn verify_user_attribute(
        &self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        let slot = request.extensions().get::<AdmissionSlot>().cloned();
        self.run(slot, self.clone().verify(request)).await
    }
}

/// The `medium` label of a delivered code.
fn medium_label(sent: &Sent) -> &'static str {
    match sent.delivery.as_ref().and_then(|d| d.medium) {
        Some(DeliveryMedium::Email) => "email",
        Some(DeliveryMedium::Sms) => "sms",
        _ => "unknown",
    }
}
