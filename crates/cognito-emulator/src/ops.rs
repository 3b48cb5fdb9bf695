//! The operations, with Cognito's checks, limits and messages. Each takes the
//! parsed JSON input and returns the JSON output or a Cognito error; none does
//! I/O, and user locks are held only for in-memory work.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rand::Rng as _;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Map, Value};

use super::{
    outbox::Delivery,
    protocol::ApiError,
    store::{lock, IssuedCode, Pool, User},
    tokens::{AccessClaims, ADMIN_SCOPE},
    Backend,
};

/// Codes work for 24 hours.
pub const CODE_TTL_SECS: u64 = 24 * 3600;
/// Code requests per user per hour.
pub const MAX_CODE_REQUESTS_PER_HOUR: usize = 5;
/// Wrong codes per user per hour.
pub const MAX_FAILED_ATTEMPTS_PER_HOUR: usize = 5;
const HOUR: u64 = 3600;

/// Runs `operation` on `input`.
pub fn dispatch(
    backend: &Backend,
    operation: &str,
    input: Value,
) -> Result<(Value, Vec<Delivery>), ApiError> {
    let no_deliveries = |v: Value| (v, Vec::new());
    match operation {
        "GetUserAttributeVerificationCode" => {
            get_user_attribute_verification_code(backend, parse(input)?)
        }
        "VerifyUserAttribute" => verify_user_attribute(backend, parse(input)?).map(no_deliveries),
        "InitiateAuth" => initiate_auth(backend, parse(input)?).map(no_deliveries),
        "GetUser" => get_user(backend, parse(input)?).map(no_deliveries),
        "UpdateUserAttributes" => update_user_attributes(backend, parse(input)?),
        "GlobalSignOut" => global_sign_out(backend, parse(input)?).map(no_deliveries),
        _ => Err(ApiError::unknown_operation()),
    }
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|e| ApiError::new("SerializationException", e.to_string()))
}

/// AWS's answer to a missing required member.
fn missing(member: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A required string member.
fn required<'a>(value: &'a Option<String>, member: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| missing(member))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenInput {
    access_token: Option<String>,
}

/// The signed-in user of an access token: signature, issuer, expiry, scope and
/// revocation are checked, with Cognito's messages.
fn authenticate<'b>(
    backend: &'b Backend,
    token: &Option<String>,
) -> Result<(&'b Pool, Arc<Mutex<User>>, AccessClaims), ApiError> {
    let token = required(token, "accessToken")?;
    let invalid = || ApiError::not_authorized("Invalid Access Token");
    let claims = backend.signer.verify_access(token).map_err(|_| invalid())?;
    let pool_id = claims
        .iss
        .strip_prefix(&backend.base_url)
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(invalid)?;
    let pool = backend.directory.pool(pool_id).ok_or_else(invalid)?;
    if !pool.clients.contains(&claims.client_id) {
        return Err(invalid());
    }
    if claims.exp <= backend.clock.now() {
        return Err(ApiError::not_authorized("Access Token has expired"));
    }
    if !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
        return Err(ApiError::not_authorized(
            "Access Token does not have required scopes",
        ));
    }
    let user = pool
        .user(&claims.username)
        .ok_or_else(|| ApiError::new("UserNotFoundException", "User does not exist."))?;
    if !lock(user).sessions.contains(&claims.origin_jti) {
        return Err(ApiError::not_authorized("Access Token has been revoked"));
    }
    Ok((pool, Arc::clone(user), claims))
}

/// Only these two attributes can be verified.
fn verifiable(name: &str) -> Result<&'static str, ApiError> {
    match name {
        "email" => Ok("email"),
        "phone_number" => Ok("phone_number"),
        _ => Err(ApiError::invalid_parameter(
            "Invalid attribute name. Only phone_number and email can be verified.",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCodeInput {
    access_token: Option<String>,
    attribute_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // accepted like Cognito; no Lambda triggers here
    client_metadata: Option<HashMap<String, String>>,
}

fn get_user_attribute_verification_code(
    backend: &Backend,
    input: GetCodeInput,
) -> Result<(Value, Vec<Delivery>), ApiError> {
    let (pool, user, _) = authenticate(backend, &input.access_token)?;
    let attribute = verifiable(required(&input.attribute_name, "attributeName")?)?;
    let mut user = lock(&user);
    let destination = user
        .pending
        .get(attribute)
        .or_else(|| user.attributes.get(attribute))
        .cloned();
    let Some(destination) = destination else {
        let what = if attribute == "email" {
            "email address"
        } else {
            "phone number"
        };
        return Err(ApiError::invalid_parameter(format!(
            "User does not have a valid registered {what}"
        )));
    };
    let delivery = issue_code(backend, pool, &mut user, attribute, destination)?;
    Ok((
        json!({"CodeDeliveryDetails": delivery.details()}),
        vec![delivery],
    ))
}

/// Creates a code for `attribute` (replacing any earlier one) within the
/// per-hour request limit, and describes its delivery.
fn issue_code(
    backend: &Backend,
    pool: &Pool,
    user: &mut User,
    attribute: &str,
    destination: String,
) -> Result<Delivery, ApiError> {
    let now = backend.clock.now();
    user.code_requests.retain(|&t| now < t + HOUR);
    if backend.settings.user_limits && user.code_requests.len() >= MAX_CODE_REQUESTS_PER_HOUR {
        return Err(ApiError::attempt_limit());
    }
    if user.code_requests.len() < MAX_CODE_REQUESTS_PER_HOUR {
        user.code_requests.push_back(now);
    }
    let code = backend
        .settings
        .fixed_code
        .clone()
        .unwrap_or_else(|| format!("{:06}", rand::rng().random_range(0..1_000_000)));
    user.codes.insert(
        attribute.to_owned(),
        IssuedCode {
            code: code.clone(),
            expires_at: now + CODE_TTL_SECS,
            used: false,
        },
    );
    Ok(Delivery::new(
        &pool.id,
        &user.username,
        attribute,
        destination,
        code,
        now,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyInput {
    access_token: Option<String>,
    attribute_name: Option<String>,
    code: Option<String>,
}

fn verify_user_attribute(backend: &Backend, input: VerifyInput) -> Result<Value, ApiError> {
    let (_, user, _) = authenticate(backend, &input.access_token)?;
    let attribute = verifiable(required(&input.attribute_name, "attributeName")?)?;
    let submitted = required(&input.code, "code")?;
    let now = backend.clock.now();
    let mut user = lock(&user);
    let user = &mut *user;
    user.failed_attempts.retain(|&t| now < t + HOUR);
    if backend.settings.user_limits && user.failed_attempts.len() >= MAX_FAILED_ATTEMPTS_PER_HOUR {
        return Err(ApiError::attempt_limit());
    }
    let mismatch = || {
        ApiError::new(
            "CodeMismatchException",
            "Invalid verification code provided, please try again.",
        )
    };
    match user.codes.get_mut(attribute) {
        Some(code) if code.used || code.expires_at <= now => Err(ApiError::new(
            "ExpiredCodeException",
            "Invalid code provided, please request a code again.",
        )),
        Some(code) if code.code == submitted => {
            code.used = true;
            if let Some(value) = user.pending.remove(attribute) {
                user.attributes.insert(attribute.to_owned(), value);
            }
            user.attributes
                .insert(format!("{attribute}_verified"), "true".to_owned());
            Ok(json!({}))
        }
        _ => {
            if user.failed_attempts.len() < MAX_FAILED_ATTEMPTS_PER_HOUR {
                user.failed_attempts.push_back(now);
            }
            Err(mismatch())
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuthInput {
    auth_flow: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    auth_parameters: HashMap<String, String>,
}

fn initiate_auth(backend: &Backend, input: InitiateAuthInput) -> Result<Value, ApiError> {
    let flow = required(&input.auth_flow, "authFlow")?;
    let client_id = required(&input.client_id, "clientId")?;
    let pool = backend.directory.pool_of_client(client_id).ok_or_else(|| {
        ApiError::new(
            "ResourceNotFoundException",
            format!("User pool client {client_id} does not exist."),
        )
    })?;
    let param = |name: &str| {
        input
            .auth_parameters
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("Missing required parameter {name}"))
            })
    };
    let result = match flow {
        "USER_PASSWORD_AUTH" => {
            let (username, password) = (param("USERNAME")?, param("PASSWORD")?);
            let wrong = || ApiError::not_authorized("Incorrect username or password.");
            let user = pool.user(username).ok_or_else(wrong)?;
            if lock(user).password != password {
                return Err(wrong());
            }
            backend.sign_in(pool, username, client_id, backend.settings.token_ttl_secs)?
        }
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
            backend.refresh(pool, client_id, param("REFRESH_TOKEN")?)?
        }
        _ => {
            return Err(ApiError::invalid_parameter(
                "Initiate Auth method not supported.",
            ))
        }
    };
    Ok(json!({"AuthenticationResult": result, "ChallengeParameters": {}}))
}

fn get_user(backend: &Backend, input: TokenInput) -> Result<Value, ApiError> {
    let (_, user, _) = authenticate(backend, &input.access_token)?;
    let user = lock(&user);
    let mut attributes = vec![json!({"Name": "sub", "Value": user.sub})];
    attributes.extend(
        user.attributes
            .iter()
            .map(|(k, v)| json!({"Name": k, "Value": v})),
    );
    Ok(json!({"Username": user.username, "UserAttributes": attributes}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeType {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    access_token: Option<String>,
    user_attributes: Option<Vec<AttributeType>>,
    #[serde(default)]
    #[allow(dead_code)] // accepted like Cognito; no Lambda triggers here
    client_metadata: Option<HashMap<String, String>>,
}

/// Changes attributes. A changed email / phone number is either applied and
/// marked unverified, or, with AttributesRequireVerificationBeforeUpdate, kept
/// pending; an auto-verified one gets a code.
fn update_user_attributes(
    backend: &Backend,
    input: UpdateInput,
) -> Result<(Value, Vec<Delivery>), ApiError> {
    let (pool, user, _) = authenticate(backend, &input.access_token)?;
    let changes = input
        .user_attributes
        .as_ref()
        .ok_or_else(|| missing("userAttributes"))?;
    let mut user = lock(&user);
    let mut deliveries = Vec::new();
    for change in changes {
        let name = required(&change.name, "userAttributes.member.name")?;
        let value = change.value.clone().unwrap_or_default();
        if name == "sub" || name.ends_with("_verified") {
            return Err(ApiError::invalid_parameter(format!(
                "Cannot modify the non-mutable attribute {name}"
            )));
        }
        let verifiable = name == "email" || name == "phone_number";
        if !verifiable {
            user.attributes.insert(name.to_owned(), value);
            continue;
        }
        if pool.verify_before_update.contains(name) && user.attributes.contains_key(name) {
            user.pending.insert(name.to_owned(), value.clone());
        } else {
            user.pending.remove(name);
            user.attributes.insert(name.to_owned(), value.clone());
            user.attributes
                .insert(format!("{name}_verified"), "false".to_owned());
        }
        if pool.auto_verified.contains(name) {
            deliveries.push(issue_code(backend, pool, &mut user, name, value)?);
        }
    }
    let list: Vec<Value> = deliveries.iter().map(Delivery::details).collect();
    Ok((json!({"CodeDeliveryDetailsList": list}), deliveries))
}

fn global_sign_out(backend: &Backend, input: TokenInput) -> Result<Value, ApiError> {
    let (_, user, _) = authenticate(backend, &input.access_token)?;
    lock(&user).sessions.clear();
    Ok(Value::Object(Map::new()))
}
