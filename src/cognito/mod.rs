//! Calls to Cognito through the official AWS SDK, and the translation of every
//! SDK outcome into a domain result or a typed [`Error`].
//!
//! One SDK client is built at start-up and shared. Both operations are
//! `noAuth` in Cognito's model, so the client is built with no credentials and
//! the service starts and serves without any. Retries are off (one attempt):
//! neither operation is idempotent, and the SDK would otherwise retry
//! LimitExceeded, TooManyRequests and 5xx answers on its own.
//!
//! [`observe`] puts each call on a client span and in the metrics; [`http`]
//! builds the HTTPS client the SDK calls through.

pub mod http;
mod observe;

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use aws_config::{
    environment::region::EnvironmentVariableRegionProvider, meta::region::RegionProviderChain,
    retry::RetryConfig, stalled_stream_protection::StalledStreamProtectionConfig,
    timeout::TimeoutConfig, BehaviorVersion, Region,
};
use aws_sdk_cognitoidentityprovider::{
    config::http::HttpResponse,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::{
        get_user::GetUserError,
        get_user_attribute_verification_code::GetUserAttributeVerificationCodeError,
        verify_user_attribute::VerifyUserAttributeError, RequestId,
    },
    types::{CodeDeliveryDetailsType, DeliveryMediumType},
    Client,
};

use crate::{
    config::ServeConfig,
    contact::Contacts,
    domain::{AccessToken, CodeDelivery, DeliveryMedium, SendCode, Sent, VerifyCode},
    error::{CognitoError, Error, ErrorKind},
    rpc::{CognitoOperation, Operation},
};

/// Sends a customized SDK call within `budget`: with the SDK's timeouts
/// lowered to it when it is shorter than the configured call timeout, as is
/// otherwise (no per-call override, and its cost, in the common case). A
/// macro because the SDK's `send` bound (`CustomizableSend`) is crate-private:
/// no function can be generic over the two operations' calls.
macro_rules! send_within {
    ($cognito:expr, $call:expr, $budget:expr) => {
        async {
            match $cognito.budget_override($budget) {
                Some(timeouts) => $call.config_override(timeouts).send().await,
                None => $call.send().await,
            }
        }
    };
}

/// A configuration problem found while building the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

/// The Cognito client of the service: one SDK client per region (a pool id
/// names its region, so one deployment serves pools in several regions):
/// the default region's and the `--user-pool` regions' built at start-up,
/// others (with `--any-user-pool`) on first use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cognito {
    default_region: String,
    sdk_config: aws_config::SdkConfig,
    clients: Arc<RwLock<HashMap<String, Client>>>,
    /// With `--user-pool`: no client is added after start-up.
    fixed_regions: bool,
    connect_timeout: Duration,
    call_timeout: Duration,
    throttle_retry_delay: Duration,
}

/// Most regions with a client: AWS has fewer than 40.
const MAX_REGIONS: usize = 64;

impl Cognito {
    /// Builds the client from the configuration: region from `--region`, else
    /// `AWS_REGION`/`AWS_DEFAULT_REGION` (never the instance metadata service);
    /// endpoint from `--cognito-endpoint`, else the SDK's own resolution
    /// (including `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`).
    pub async fn from_config(config: &ServeConfig) -> Result<Self, SetupError> {
        let region = RegionProviderChain::first_try(config.region.clone().map(Region::new))
            .or_else(EnvironmentVariableRegionProvider::new());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http::https_client())
            .region(region)
            .no_credentials()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(timeouts(config.connect_timeout(), config.call_timeout()))
            // Stalled-stream protection watches long bodies for stalls: the
            // bodies here are a few hundred bytes, bounded by the call's
            // timeout anyway; off, each call skips its timers and wrappers.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(endpoint) = &config.cognito_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            return Err(SetupError(
                "no AWS region: set --region, COGNITO_VERIFY_REGION or AWS_REGION".to_owned(),
            ));
        }
        let default_region = sdk_config
            .region()
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut cognito = Self {
            default_region: default_region.clone(),
            sdk_config,
            clients: Arc::new(RwLock::new(HashMap::new())),
            fixed_regions: false,
            connect_timeout: config.connect_timeout(),
            call_timeout: config.call_timeout(),
            throttle_retry_delay: config.throttled_retry_delay(),
        };
        let pool_regions = config
            .token
            .user_pools
            .iter()
            .filter_map(|pool| pool.trim().rsplit_once('_').map(|(region, _)| region));
        {
            let mut clients = cognito
                .clients
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for region in std::iter::once(default_region.as_str()).chain(pool_regions) {
                if !clients.contains_key(region) {
                    let client = cognito.build_client(region);
                    clients.insert(region.to_owned(), client);
                }
            }
        }
        cognito.fixed_regions = !config.token.any_user_pool;
        Ok(cognito)
    }

    /// The region of calls whose token names none.
    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    /// The client for `region`. The region comes from a token that passed
    /// the local check: with `--user-pool`, one of the named pools' regions,
    /// whose clients were built at start-up; with `--any-user-pool`, a
    /// region whose key set verified the token's signature (so a region
    /// where a real pool exists), built on first use. Callers cannot fill
    /// the table with made-up regions; were it full all the same, the call
    /// is refused here rather than sent to another region.
    fn client(&self, op: Operation, region: &str) -> Result<Client, Error> {
        let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(region) {
            return Ok(client.clone());
        }
        drop(clients);
        let refuse = |why: &str| {
            Err(Error::new(
                op,
                ErrorKind::Internal {
                    detail: format!("no Cognito client for region {region:?}: {why}"),
                },
            ))
        };
        if self.fixed_regions {
            return refuse("not the region of a --user-pool");
        }
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= MAX_REGIONS && !clients.contains_key(region) {
            return refuse("the table of regions is full");
        }
        Ok(clients
            .entry(region.to_owned())
            .or_insert_with(|| self.build_client(region))
            .clone())
    }

    fn build_client(&self, region: &str) -> Client {
        let config = aws_sdk_cognitoidentityprovider::config::Builder::from(&self.sdk_config)
            .region(Region::new(region.to_owned()))
            .interceptor(observe::HttpStatusOnSpan)
            .build();
        Client::from_conf(config)
    }

    /// The configured per-call timeout.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// GetUserAttributeVerificationCode in `region`, within `budget`.
    pub async fn send_code(
        &self,
        region: &str,
        req: SendCode,
        budget: Duration,
    ) -> Result<Sent, Error> {
        let call = self
            .client(Operation::GetUserAttributeVerificationCode, region)?
            .get_user_attribute_verification_code()
            .access_token(req.token.expose())
            .attribute_name(req.attribute.as_str())
            .set_client_metadata(req.client_metadata.into_inner())
            .customize();
        let sent = send_within!(self, call, budget);
        let out = self
            .observed(
                Operation::GetUserAttributeVerificationCode,
                CognitoOperation::GetUserAttributeVerificationCode,
                region,
                budget,
                sent,
                |e| match e {
                    GetUserAttributeVerificationCodeError::InvalidParameterException(p) => {
                        p.reason_code().map(str::to_owned)
                    }
                    _ => None,
                },
            )
            .await?;
        Ok(Sent {
            delivery: out.code_delivery_details().map(delivery),
            request_id: out.request_id().map(str::to_owned),
        })
    }

    /// VerifyUserAttribute in `region`, within `budget`; the AWS request id.
    pub async fn verify(
        &self,
        region: &str,
        req: VerifyCode,
        budget: Duration,
    ) -> Result<Option<String>, Error> {
        let call = self
            .client(Operation::VerifyUserAttribute, region)?
            .verify_user_attribute()
            .access_token(req.token.expose())
            .attribute_name(req.attribute.as_str())
            .code(req.code.expose())
            .customize();
        let sent = send_within!(self, call, budget);
        let out = self
            .observed(
                Operation::VerifyUserAttribute,
                CognitoOperation::VerifyUserAttribute,
                region,
                budget,
                sent,
                |e| match e {
                    VerifyUserAttributeError::InvalidParameterException(p) => {
                        p.reason_code().map(str::to_owned)
                    }
                    _ => None,
                },
            )
            .await?;
        Ok(out.request_id().map(str::to_owned))
    }

    /// GetUser in `region`, within `budget`, for the RPC `op` (the status
    /// RPC, or a send for a phone number that needs the number): the
    /// user's email address and phone number. The token authorizes it, as
    /// it does the other two calls.
    pub async fn get_user(
        &self,
        op: Operation,
        region: &str,
        token: &AccessToken,
        budget: Duration,
    ) -> Result<Contacts, Error> {
        let call = self
            .client(op, region)?
            .get_user()
            .access_token(token.expose())
            .customize();
        let sent = send_within!(self, call, budget);
        let out = self
            .observed(
                op,
                CognitoOperation::GetUser,
                region,
                budget,
                sent,
                |e| match e {
                    GetUserError::InvalidParameterException(p) => {
                        p.reason_code().map(str::to_owned)
                    }
                    _ => None,
                },
            )
            .await?;
        Ok(Contacts::from_attributes(
            out.user_attributes()
                .iter()
                .map(|a| (a.name(), a.value().unwrap_or_default())),
        ))
    }

    /// Runs one SDK call under observation (client span, metrics) and
    /// classifies its failure as an error of the RPC `op`.
    async fn observed<O, E>(
        &self,
        op: Operation,
        call: CognitoOperation,
        region: &str,
        budget: Duration,
        sdk_call: impl std::future::Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        reason_code: impl FnOnce(&E) -> Option<String>,
    ) -> Result<O, Error>
    where
        O: RequestId,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let observed = observe::Call::start(call, region);
        match observed.run(sdk_call).await {
            Ok(out) => {
                observed.succeeded(out.request_id());
                Ok(out)
            }
            Err(err) => {
                let error = self.classify(op, budget, err, reason_code);
                observed.failed(&error);
                Err(error)
            }
        }
    }

    /// Per-call timeouts when the caller's deadline leaves less than the
    /// configured timeout: the whole call and its one attempt get `budget`.
    /// Otherwise `None`: the client's own configuration applies, and no
    /// per-call override (a runtime-plugin merge on every call) is built.
    fn budget_override(
        &self,
        budget: Duration,
    ) -> Option<aws_sdk_cognitoidentityprovider::config::Builder> {
        (budget < self.call_timeout).then(|| {
            aws_sdk_cognitoidentityprovider::config::Builder::default()
                .timeout_config(timeouts(self.connect_timeout, budget))
        })
    }

    /// Turns an SDK failure into a typed error. Cognito errors are told apart
    /// by their type code (the SDK reads `x-amzn-ErrorType` or `__type` and
    /// strips `namespace#` and `:suffix`); a response without a readable type
    /// is "unparseable", whatever its HTTP status.
    fn classify<E>(
        &self,
        operation: Operation,
        budget: Duration,
        err: SdkError<E, HttpResponse>,
        reason_code: impl FnOnce(&E) -> Option<String>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let request_id = err.request_id().map(str::to_owned);
        let http_status = err.raw_response().map(|r| r.status().as_u16());
        let detail = DisplayErrorContext(&err).to_string();
        let kind = match &err {
            SdkError::ServiceError(ctx) => match ctx.err().code() {
                Some(code) => ErrorKind::Cognito(Box::new(CognitoError {
                    code: code.to_owned(),
                    message: ctx.err().message().map(str::to_owned),
                    reason_code: reason_code(ctx.err()),
                    request_id,
                    throttle_retry_delay: self.throttle_retry_delay,
                    detail,
                })),
                None => ErrorKind::UnparseableResponse {
                    http_status,
                    request_id,
                    detail,
                },
            },
            SdkError::ResponseError(_) => ErrorKind::UnparseableResponse {
                http_status,
                request_id,
                detail,
            },
            SdkError::TimeoutError(_) => ErrorKind::Timeout { budget },
            SdkError::DispatchFailure(f) if f.is_timeout() => ErrorKind::Timeout { budget },
            SdkError::DispatchFailure(_) => ErrorKind::Unreachable { detail },
            _ => ErrorKind::Internal { detail },
        };
        Error::new(operation, kind)
    }
}

fn timeouts(connect: Duration, call: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(connect)
        .operation_timeout(call)
        .operation_attempt_timeout(call)
        .build()
}

fn delivery(d: &CodeDeliveryDetailsType) -> CodeDelivery {
    CodeDelivery {
        destination: d.destination().map(str::to_owned),
        medium: d.delivery_medium().map(|m| match m {
            DeliveryMediumType::Email => DeliveryMedium::Email,
            DeliveryMediumType::Sms => DeliveryMedium::Sms,
            _ => DeliveryMedium::Other,
        }),
        attribute_name: d.attribute_name().map(str::to_owned),
    }
}
