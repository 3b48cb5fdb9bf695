//! `docs/errors.md` is the error table; this test holds it to the mapping in
//! `status.rs`, row by row. It fails, naming the line, when a row's gRPC
//! code, `reason` or details differ from what the mapping answers, when a
//! type of `COGNITO_TYPES` has no row, or when the service can answer
//! something no row documents.
//!
//! The reasons are also the enum `ErrorReason` of
//! `proto/cognito/verify/v1/error_reason.proto`; the second test holds it to
//! the same answers and to the table's reason column: it fails when the
//! service can send a reason the enum lacks (but those it derives from a
//! Cognito type it does not know), when the enum lists one it never sends,
//! or when a value's comment names other gRPC codes, or says otherwise about
//! RetryInfo or the domain, than the service answers.
//!
//! What it reads: the tables whose second column is "gRPC code". In the
//! first, each row names one Cognito error type in backticks in its first
//! column; in both, the second column is one code name, the third holds
//! exactly one `` `REASON` ``, and the fourth names `RetryInfo`,
//! `QuotaFailure` and `BadRequest` exactly when the status carries them
//! ("no RetryInfo" says it does not).

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::{
    error::FieldViolation,
    proto::ErrorReason,
    rpc::{code_name, Operation},
};

const ERRORS_MD: &str = include_str!("../../docs/errors.md");
const ERROR_REASON_PROTO: &str = include_str!("../../proto/cognito/verify/v1/error_reason.proto");
const DETAILS: [&str; 3] = ["RetryInfo", "QuotaFailure", "BadRequest"];

/// One row: its line in the file, its first column, and what it says the
/// caller gets, written as [`written`] writes it.
struct Row {
    line: usize,
    what: String,
    answer: String,
}

/// An answer in one line: `INVALID_ARGUMENT CODE_MISMATCH ["BadRequest"]`,
/// from the code, the reason and which of [`DETAILS`] are present.
fn written(code: &str, reason: &str, has: [bool; 3]) -> String {
    let details: Vec<&str> = (0..3).filter(|&i| has[i]).map(|i| DETAILS[i]).collect();
    format!("{code} {reason} {details:?}")
}

/// The text between backticks in `cell`, span by span.
fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The two tables of `docs/errors.md`: Cognito's errors, the service's own.
fn documented() -> (Vec<Row>, Vec<Row>) {
    let (mut cognito, mut service) = (Vec::new(), Vec::new());
    let mut table: Option<&mut Vec<Row>> = None;
    for (i, line) in ERRORS_MD.lines().enumerate() {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let at = format!("docs/errors.md:{}", i + 1);
        if !line.starts_with('|') {
            table = None;
        } else if cells.get(1) == Some(&"gRPC code") {
            table = Some(match cells[0] {
                "Cognito error type" => &mut cognito,
                "what happened" => &mut service,
                other => panic!("{at}: a table of statuses this test does not know: {other:?}"),
            });
        } else if let Some(rows) = table.as_mut().filter(|_| !cells[0].starts_with("---")) {
            let [_, code, reason, details, ..] = cells[..] else {
                panic!("{at}: a row needs four columns");
            };
            let [reason] = backticked(reason)[..] else {
                panic!("{at}: the reason column must hold exactly one `REASON`");
            };
            let answer = written(code, reason, DETAILS.map(|word| names(details, word)));
            let (line, what) = (i + 1, cells[0].to_owned());
            rows.push(Row { line, what, answer });
        }
    }
    let missing = cognito.is_empty() || service.is_empty();
    assert!(!missing, "docs/errors.md: a table is missing");
    (cognito, service)
}

/// Whether `text` names `word` other than after "no" (as in "no RetryInfo").
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].trim_end();
        before != "no" && !before.ends_with(" no")
    })
}

/// A row's Cognito error type: the first backticked word of its first cell.
fn type_of(row: &Row) -> &str {
    let types = backticked(&row.what);
    let first = types.first().copied();
    first.unwrap_or_else(|| panic!("docs/errors.md:{}: no `Type` in the first column", row.line))
}

/// The status the mapping answers for `kind`.
fn status_of(kind: ErrorKind) -> Status {
    Status::from(Error::new(Operation::VerifyUserAttribute, kind))
}

/// A code as the table writes it: `InvalidArgument` → `INVALID_ARGUMENT`.
fn code_upper(code: Code) -> String {
    let mut upper = String::new();
    for c in code_name(code).chars() {
        if c.is_ascii_uppercase() && !upper.is_empty() {
            upper.push('_');
        }
        upper.push(c.to_ascii_uppercase());
    }
    upper
}

/// What the mapping answers for `kind`, written as the table writes it.
fn answer(kind: ErrorKind) -> String {
    let status = status_of(kind);
    let d = status.get_error_details();
    let retry_info = d.retry_info().is_some();
    let has = [
        retry_info,
        d.quota_failure().is_some(),
        d.bad_request().is_some(),
    ];
    let info = d.error_info().expect("every status has an ErrorInfo");
    written(&code_upper(status.code()), &info.reason, has)
}

fn cognito_error(ty: &str) -> ErrorKind {
    ErrorKind::Cognito(Box::new(CognitoError {
        code: ty.to_owned(),
        message: Some("Cognito's message".to_owned()),
        reason_code: None,
        request_id: Some("req-1".to_owned()),
        throttle_retry_delay: Duration::from_secs(1),
        detail: "the error chain".to_owned(),
    }))
}

/// Does not compile when a kind, a token rejection or a limit is added:
/// give it a sample in `service_samples` (and so a row), then list it here.
fn _every_variant_has_a_sample(kind: ErrorKind, rejection: TokenRejection, limit: Limit) {
    use ErrorKind::*;
    match kind {
        InvalidRequest(_) | MissingToken | Cognito(_) | Unreachable { .. } | Timeout { .. } => {}
        UnparseableResponse { .. } | Internal { .. } | Token(_) | Limited { .. } => {}
        LimitsUnavailable | RequestInProgress | CallerNotAllowed { .. } | Overloaded { .. } => {}
        KeysUnavailable { .. } | MessageTooLarge { .. } | RequestBufferFull { .. } => {}
        RequestReadTimeout { .. } | DeadlineExceeded | SmsCountryNotAllowed { .. } => {}
    }
    use TokenRejection::*;
    match rejection {
        Malformed | Expired | NotAnAccessToken | MissingScope | IssuerNotAllowed => {}
        BadSignature | UnknownPool => {}
    }
    use Limit::*;
    match limit {
        SendCooldown | UserSendQuota | UserVerifyQuota | CallerRate | RpcRate(_) => {}
        SmsDaily | SmsPrefix => {}
    }
}

/// One error of every kind the service answers itself (Cognito's are the
/// other table), each token rejection and each limit included.
fn service_samples() -> Vec<ErrorKind> {
    use {ErrorKind::*, Limit::*, TokenRejection::*};
    let (s, zero) = (Duration::from_secs(1), Duration::ZERO);
    let id = Some(String::from("spiffe://x"));
    let d = || String::from("detail");
    let unparseable = |http_status| UnparseableResponse {
        http_status,
        request_id: None,
        detail: d(),
    };
    let mut kinds = vec![
        InvalidRequest(FieldViolation::new("attribute_name", "must not be empty")),
        MissingToken,
        Unreachable { detail: d() },
        Timeout { budget: s },
        Timeout { budget: zero },
        unparseable(Some(503)),
        unparseable(Some(200)),
        unparseable(None),
        Internal { detail: d() },
        LimitsUnavailable,
        RequestInProgress,
        CallerNotAllowed { caller: id },
        CallerNotAllowed { caller: None },
        Overloaded { max_concurrent: 8 },
        KeysUnavailable { retry_after: s },
        MessageTooLarge { max_bytes: 65_536 },
        RequestBufferFull { budget_bytes: 1 },
        RequestReadTimeout { timeout: s },
        DeadlineExceeded,
        SmsCountryNotAllowed {
            country: String::from("FR"),
        },
    ];
    kinds.extend([Malformed, Expired, NotAnAccessToken, MissingScope].map(Token));
    kinds.extend([IssuerNotAllowed, BadSignature, UnknownPool].map(Token));
    let limits = [
        SendCooldown,
        UserSendQuota,
        UserVerifyQuota,
        CallerRate,
        SmsDaily,
        SmsPrefix,
    ];
    let limited = |limit| Limited {
        limit,
        wait: s,
        description: d(),
    };
    let limits = limits.into_iter().chain(Operation::ALL.map(RpcRate));
    kinds.extend(limits.map(limited));
    kinds
}

#[test]
fn errors_md_is_the_status_mapping() {
    let (cognito, service) = documented();
    let mut problems = Vec::new();
    let mut differs = |row: &Row, got: &str| {
        if row.answer != got {
            let (line, says) = (row.line, &row.answer);
            problems.push(format!(
                "docs/errors.md:{line}: says {says}, status.rs answers {got}"
            ));
        }
    };

    // Cognito's errors: each row's type is answered as the row says.
    for row in &cognito {
        differs(row, &answer(cognito_error(type_of(row))));
    }
    // The service's own: each row is an answer (else: the nearest answer).
    let answers: Vec<String> = service_samples().into_iter().map(answer).collect();
    for row in service.iter().filter(|row| !answers.contains(&row.answer)) {
        let reason = row.answer.split(' ').nth(1);
        let nearest = answers.iter().find(|a| a.split(' ').nth(1) == reason);
        differs(
            row,
            nearest.map_or("nothing with this reason", String::as_str),
        );
    }

    // And every answer has a row.
    let has_row = |ty: &str| cognito.iter().any(|row| type_of(row) == ty);
    for (ty, _) in COGNITO_TYPES.iter().filter(|(ty, _)| !has_row(ty)) {
        problems.push(format!(
            "{ty}: in COGNITO_TYPES, without a row in docs/errors.md"
        ));
    }
    let known = |row: &&Row| COGNITO_TYPES.iter().any(|(ty, _)| *ty == type_of(row));
    let unknown: Vec<&Row> = cognito.iter().filter(|row| !known(row)).collect();
    let fixed = |row: &&Row| row.answer.contains(" UNKNOWN_COGNITO_ERROR ");
    if !unknown.iter().any(|row| !fixed(row)) {
        problems.push("no row for a Cognito type this build does not know".into());
    }
    if !unknown.iter().any(fixed) {
        problems.push("no row for a Cognito type that makes no valid reason".into());
    }
    for got in answers
        .iter()
        .filter(|got| !service.iter().any(|r| r.answer == **got))
    {
        problems.push(format!(
            "status.rs answers {got}, without a row in docs/errors.md"
        ));
    }
    let problems = problems.join("\n");
    assert!(
        problems.is_empty(),
        "docs/errors.md and status.rs disagree:\n{problems}"
    );
}

/// The values of `enum ErrorReason` in `error_reason.proto`, each with its
/// leading comment in one line (a comment followed by a blank line belongs
/// to no value).
fn enum_values() -> Vec<(&'static str, String)> {
    let (mut values, mut comment) = (Vec::new(), Vec::new());
    for line in ERROR_REASON_PROTO.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix("//") {
            comment.push(text.trim());
            continue;
        }
        let name = line.split_once(" = ").map(|(name, _)| name);
        let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
        if let Some(name) = name.filter(|name| !name.is_empty() && name.chars().all(upper)) {
            values.push((name, comment.join(" ")));
        }
        comment.clear();
    }
    values
}

/// The text of `comment` after `label`, up to `next` (or to its end).
fn labelled<'a>(comment: &'a str, label: &str, next: Option<&str>) -> Option<&'a str> {
    let (_, rest) = comment.split_once(label)?;
    let text = match next {
        Some(next) => rest.split_once(next)?.0,
        None => rest,
    };
    Some(text.trim())
}

/// What a status says, for the enum: its code, `ErrorInfo` reason, domain
/// and `awsErrorCode`, and whether it carries RetryInfo.
struct Said {
    code: String,
    reason: String,
    domain: String,
    retry_info: bool,
    aws_error_code: Option<String>,
}

/// What the mapping's status for `kind` says.
fn said(kind: ErrorKind) -> Said {
    let status = status_of(kind);
    let d = status.get_error_details();
    let info = d.error_info().expect("every status has an ErrorInfo");
    Said {
        code: code_upper(status.code()),
        reason: info.reason.clone(),
        domain: info.domain.clone(),
        retry_info: d.retry_info().is_some(),
        aws_error_code: info.metadata.get("awsErrorCode").cloned(),
    }
}

#[test]
fn the_error_reason_enum_lists_every_reason_sent() {
    let mut problems = Vec::new();
    let values = enum_values();
    let unspecified = ErrorReason::Unspecified.as_str_name();
    if values.first().map(|(name, _)| *name) != Some(unspecified) {
        problems.push(format!("the first value is not {unspecified}"));
    }
    for (name, _) in &values {
        if ErrorReason::from_str_name(name).is_none() {
            problems.push(format!("{name}: in the proto, not in the generated enum"));
        }
    }
    let listed = |r: &str| r != unspecified && ErrorReason::from_str_name(r).is_some();

    // Every answer: each kind of the service's own (each token rejection and
    // each limit included), each type of COGNITO_TYPES, and types this build
    // does not know (the table's, and more), with a reason of their own or
    // without.
    let (cognito, service) = documented();
    let is_known = |ty: &str| COGNITO_TYPES.iter().any(|(known, _)| *known == ty);
    let mut unknown: Vec<&str> = cognito.iter().map(type_of).collect();
    unknown.retain(|ty| !is_known(ty));
    unknown.extend(["SomethingNew2Exception", "Exception", "XException"]);
    let mut samples: Vec<(String, Option<&str>, ErrorKind)> = service_samples()
        .into_iter()
        .map(|kind| (format!("{kind:?}"), None, kind))
        .collect();
    for ty in COGNITO_TYPES.iter().map(|(ty, _)| *ty).chain(unknown) {
        samples.push((format!("Cognito's {ty}"), Some(ty), cognito_error(ty)));
    }
    let mut answered: BTreeMap<String, Vec<Said>> = BTreeMap::new();
    for (what, ty, kind) in samples {
        let got = said(kind);
        match ty.filter(|ty| !is_known(ty)) {
            // The one family the enum cannot list: a reason derived from the
            // type's name, answered UNKNOWN in Cognito's domain, the type
            // kept in `awsErrorCode`.
            Some(ty) => {
                let expected = (reason_for(ty), "UNKNOWN", COGNITO_DOMAIN, Some(ty));
                let got = (
                    got.reason.clone(),
                    got.code.as_str(),
                    got.domain.as_str(),
                    got.aws_error_code.as_deref(),
                );
                if got != expected {
                    problems.push(format!("{what}: answered {got:?}, not {expected:?}"));
                }
            }
            None if !listed(&got.reason) => problems.push(format!(
                "status.rs answers {} for {what}, and ErrorReason lacks it",
                got.reason
            )),
            None => {}
        }
        answered.entry(got.reason.clone()).or_default().push(got);
    }

    // Every value is answered, and its comment says what the service answers.
    let code_names: BTreeSet<String> = (0..=16).map(|n| code_upper(Code::from_i32(n))).collect();
    for (name, comment) in values.iter().filter(|(name, _)| *name != unspecified) {
        let Some(answers) = answered.get(*name) else {
            problems.push(format!(
                "ErrorReason lists {name}, which status.rs never answers"
            ));
            continue;
        };
        let (Some(code), Some(retry), Some(caller)) = (
            labelled(comment, "gRPC code:", Some("Retry:")),
            labelled(comment, "Retry:", Some("Caller:")),
            labelled(comment, "Caller:", None),
        ) else {
            problems.push(format!(
                "{name}: its comment needs `gRPC code:`, `Retry:` and `Caller:`, in this order"
            ));
            continue;
        };
        let words = code.split(|c: char| !(c.is_ascii_uppercase() || c == '_'));
        let says: BTreeSet<&str> = words.filter(|w| code_names.contains(*w)).collect();
        let codes: BTreeSet<&str> = answers.iter().map(|a| a.code.as_str()).collect();
        if says != codes {
            problems.push(format!(
                "{name}: its comment says gRPC code {says:?}, status.rs answers {codes:?}"
            ));
        }
        let retry_info = names(retry, "RetryInfo");
        if answers.iter().any(|a| a.retry_info != retry_info) {
            let says = if retry_info {
                "RetryInfo"
            } else {
                "no RetryInfo"
            };
            problems.push(format!(
                "{name}: its comment says {says}, status.rs answers otherwise"
            ));
        }
        if caller.is_empty() {
            problems.push(format!("{name}: its comment says nothing after `Caller:`"));
        }
        let from_cognito = comment.starts_with("Cognito:");
        let domain = if from_cognito {
            COGNITO_DOMAIN
        } else {
            SERVICE_DOMAIN
        };
        if answers.iter().any(|a| a.domain != domain) {
            problems.push(format!(
                "{name}: its comment says domain {domain}, status.rs answers another"
            ));
        }
    }

    // The table's reason column names the same reasons, but for the
    // examples of types this build does not know.
    let reason = |row: &Row| row.answer.split(' ').nth(1).unwrap_or_default().to_owned();
    let rows = cognito.iter().filter(|row| is_known(type_of(row)));
    for row in rows.chain(&service).filter(|row| !listed(&reason(row))) {
        let (line, reason) = (row.line, reason(row));
        problems.push(format!(
            "docs/errors.md:{line}: {reason} is not in ErrorReason"
        ));
    }
    for (name, _) in values.iter().filter(|(name, _)| *name != unspecified) {
        if !cognito
            .iter()
            .chain(&service)
            .any(|row| reason(row) == *name)
        {
            problems.push(format!(
                "ErrorReason lists {name}, without a row in docs/errors.md"
            ));
        }
    }

    let problems = problems.join("\n");
    assert!(
        problems.is_empty(),
        "ErrorReason (proto/cognito/verify/v1/error_reason.proto), status.rs and \
         docs/errors.md disagree:\n{problems}"
    );
}
