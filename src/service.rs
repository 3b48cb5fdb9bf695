//! The gRPC handlers: parse the request into domain types, call Cognito within
//! the time budget, map the result. Errors become statuses in `status.rs`.

use tonic::{Request, Response, Status};

use crate::{
    cognito::Cognito,
    convert,
    deadline::Deadline,
    error::{Error, ErrorKind, Operation},
    proto::{self, user_attribute_verification_service_server::UserAttributeVerificationService},
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

#[tonic::async_trait]
impl UserAttributeVerificationService for VerificationService {
    async fn get_user_attribute_verification_code(
        &self,
        request: Request<proto::GetUserAttributeVerificationCodeRequest>,
    ) -> Result<Response<proto::GetUserAttributeVerificationCodeResponse>, Status> {
        const OP: Operation = Operation::GetUserAttributeVerificationCode;
        let deadline = Deadline::from_metadata(request.metadata());
        let req = convert::send_code(request).map_err(|k| Error::new(OP, k))?;
        let delivery = self
            .cognito
            .send_code(req, self.budget(OP, deadline)?)
            .await?;
        Ok(Response::new(
            proto::GetUserAttributeVerificationCodeResponse {
                code_delivery_details: delivery.map(Into::into),
            },
        ))
    }

    async fn verify_user_attribute(
        &self,
        request: Request<proto::VerifyUserAttributeRequest>,
    ) -> Result<Response<proto::VerifyUserAttributeResponse>, Status> {
        const OP: Operation = Operation::VerifyUserAttribute;
        let deadline = Deadline::from_metadata(request.metadata());
        let req = convert::verify_code(request).map_err(|k| Error::new(OP, k))?;
        self.cognito.verify(req, self.budget(OP, deadline)?).await?;
        Ok(Response::new(proto::VerifyUserAttributeResponse {}))
    }
}
