//! The vocabulary of an RPC that every part of the service shares: the
//! error model, the limits, the metrics, the audit trail and the middleware
//! name a call by its [`Operation`], its trace by [`RpcTraceId`], its
//! outcome by [`code_name`]. It depends on no module of the service.

use opentelemetry::trace::TraceId;
use tonic::Code;

/// The RPC an error, a limit or a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GetUserAttributeVerificationCode.
    GetUserAttributeVerificationCode,
    /// VerifyUserAttribute.
    VerifyUserAttribute,
    /// GetVerificationStatus (Cognito's GetUser, and the limits read).
    GetVerificationStatus,
}

impl Operation {
    /// Every RPC.
    pub const ALL: [Operation; 3] = [
        Self::GetUserAttributeVerificationCode,
        Self::VerifyUserAttribute,
        Self::GetVerificationStatus,
    ];

    /// The RPC's name, as our proto spells it (the first two are Cognito's
    /// operations of the same names).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetUserAttributeVerificationCode => "GetUserAttributeVerificationCode",
            Self::VerifyUserAttribute => "VerifyUserAttribute",
            Self::GetVerificationStatus => "GetVerificationStatus",
        }
    }

    /// The gRPC path of the operation's RPC.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Self::GetUserAttributeVerificationCode => {
                "/cognito.verify.v1.UserAttributeVerificationService/GetUserAttributeVerificationCode"
            }
            Self::VerifyUserAttribute => {
                "/cognito.verify.v1.UserAttributeVerificationService/VerifyUserAttribute"
            }
            Self::GetVerificationStatus => {
                "/cognito.verify.v1.UserAttributeVerificationService/GetVerificationStatus"
            }
        }
    }

    /// The operation served at a gRPC path, if any.
    pub fn from_grpc_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.grpc_path() == path)
    }
}

/// A Cognito API operation the service calls. An RPC calls one or two:
/// a send for a phone number asks GetUser for the number first (the SMS
/// guard), the status RPC only GetUser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CognitoOperation {
    /// GetUserAttributeVerificationCode.
    GetUserAttributeVerificationCode,
    /// VerifyUserAttribute.
    VerifyUserAttribute,
    /// GetUser.
    GetUser,
}

impl CognitoOperation {
    /// Every operation called.
    pub const ALL: [CognitoOperation; 3] = [
        Self::GetUserAttributeVerificationCode,
        Self::VerifyUserAttribute,
        Self::GetUser,
    ];

    /// The operation's name, as Cognito spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetUserAttributeVerificationCode => "GetUserAttributeVerificationCode",
            Self::VerifyUserAttribute => "VerifyUserAttribute",
            Self::GetUser => "GetUser",
        }
    }
}

/// The trace id of an RPC, in the request's extensions for the handler and
/// the audit trail (present when the caller sent one or traces are on).
#[derive(Debug, Clone, Copy)]
pub struct RpcTraceId(pub TraceId);

/// The code as tonic's `Debug` spells it, without formatting per RPC.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
