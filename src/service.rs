//! The gRPC handlers: parse the request into domain types, call Cognito within
//! the time budget, map the result; count codes sent and attributes
//! verified, and write the audit event. Errors become statuses in
//! `status.rs`.

use tonic::{Request, Response, Status};

use crate::{
    audit::Entry,
    cognito::Cognito,
    convert,
    deadline::Deadline,
    domain::{AttributeName, DeliveryMedium, Sent},
    error::{Error, ErrorKind, Operation},
    proto::{self, user_attribute_verification_service_server::UserAttributeVerificationService},
    telemetry::metrics::metrics,
};

/// Implements `cognito.verify.v1.UserAttributeVerificationService`.
#[derive(Debug, Clone)]
pub struct VerificationService {
    cognito: Cognito,
}

impl VerificationService {
    /// A service calling Cognito through `cognito`.
    pub fn new(cognito: Cognito) -> Self {
        Self { cognito }
    }

    /// The Cognito call's time budget, or DEADLINE_EXCEEDED without calling
    /// Cognito when the caller's deadline leaves no time.
    fn budget(&self, op: Operation, deadline: Deadline) -> Result<std::time::Duration, Error> {
        deadline
            .budget(self.cognito.call_timeout())
            .ok_or(Error::new(
                op,
                ErrorKind::Timeout {
                    budget: std::time::Duration::ZERO,
                },
            ))
    }
}

impl VerificationService {
    /// Parses and sends; fills the audit entry on the way.
    async fn send(
        &self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
        audit: &mut Entry,
    ) -> Result<Sent, Error> {
        const OP: Operation = Operation::GetUserAttributeVerificationCode;
        let deadline = Deadline::from_metadata(request.metadata());
        let req = convert::send_code(request).map_err(|k| Error::new(OP, k))?;
        audit.user(&req.token, &req.attribute);
        self.cognito
            .send_code(req, self.budget(OP, deadline)?)
            .await
    }

    /// Parses and verifies; fills the audit entry on the way. The attribute
    /// name, for the metrics.
    async fn verify(
        &self,
        request: Request<proto::VerifyUserAttributeRequest>,
        audit: &mut Entry,
    ) -> Result<AttributeName, Error> {
        const OP: Operation = Operation::VerifyUserAttribute;
        let deadline = Deadline::from_metadata(request.metadata());
        let req = convert::verify_code(request).map_err(|k| Error::new(OP, k))?;
        audit.user(&req.token, &req.attribute);
        let attribute = req.attribute.clone();
        let request_id = self.cognito.verify(req, self.budget(OP, deadline)?).await?;
        audit.request_id(request_id);
        Ok(attribute)
    }
}

#[tonic::async_trait]
impl UserAttributeVerificationService for VerificationService {
    async fn get_user_attribute_verification_code(
        &self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<proto::GetUserAttributeVerificationCodeResponse>, Status> {
        let mut audit = Entry::start(
            Operation::GetUserAttributeVerificationCode,
            request.extensions(),
        );
        match self.send(request, &mut audit).await {
            Ok(sent) => {
                metrics().code_sent(medium_label(&sent));
                audit.sent(&sent);
                audit.finish(Ok(()));
                Ok(Response::new(
                    proto::GetUserAttributeVerificationCodeResponse {
                        code_delivery_details: sent.delivery.map(Into::into),
                    },
                ))
            }
            Err(e) => Err(finish_failed(audit, e)),
        }
    }

    async fn verify_user_attribute(
        &self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        let mut audit = Entry::start(Operation::VerifyUserAttribute, request.extensions());
        match self.verify(request, &mut audit).await {
            Ok(attribute) => {
                metrics().attribute_verified(attribute.as_str());
                audit.finish(Ok(()));
                Ok(Response::new(proto::VerifyUserAttributeResponse {}))
            }
            Err(e) => Err(finish_failed(audit, e)),
        }
    }
}

/// The status of a failed RPC, written to the audit trail.
fn finish_failed(audit: Entry, error: Error) -> Status {
    let status = Status::from(error);
    audit.finish(Err(&status));
    status
}

/// The `medium` label of a delivered code.
fn medium_label(sent: &Sent) -> &'static str {
    match sent.delivery.as_ref().and_then(|d| d.medium) {
        Some(DeliveryMedium::Email) => "email",
        Some(DeliveryMedium::Sms) => "sms",
        _ => "unknown",
    }
}
