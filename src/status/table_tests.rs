//! `docs/errors.md` is the error table; this test holds it to the mapping in
//! `status.rs`, row by row. It fails, naming the line, when a row's gRPC
//! code, `reason` or details differ from what the mapping answers, when a
//! type of `COGNITO_TYPES` has no row, or when the service can answer
//! something no row documents.
//!
//! What it reads: the tables whose second column is "gRPC code". In the
//! first, each row names one Cognito error type in backticks in its first
//! column; in both, the second column is one code name, the third holds
//! exactly one `` `REASON` ``, and the fourth names `RetryInfo`,
//! `QuotaFailure` and `BadRequest` exactly when the status carries them
//! ("no RetryInfo" says it does not).

use super::*;
use crate::{
    error::FieldViolation,
    rpc::{code_name, Operation},
};

const ERRORS_MD: &str = include_str!("../../docs/errors.md");
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
            // Named, and not as "no RetryInfo".
            let named = |word: &str| {
                details.match_indices(word).any(|(at, _)| {
                    let before = details[..at].trim_end();
                    before != "no" && !before.ends_with(" no")
                })
            };
            let answer = written(code, reason, DETAILS.map(named));
            let (line, what) = (i + 1, cells[0].to_owned());
            rows.push(Row { line, what, answer });
        }
    }
    let missing = cognito.is_empty() || service.is_empty();
    assert!(!missing, "docs/errors.md: a table is missing");
    (cognito, service)
}

/// A row's Cognito error type: the first backticked word of its first cell.
fn type_of(row: &Row) -> &str {
    let types = backticked(&row.what);
    let first = types.first().copied();
    first.unwrap_or_else(|| panic!("docs/errors.md:{}: no `Type` in the first column", row.line))
}

/// What the mapping answers for `kind`, written as the table writes it.
fn answer(kind: ErrorKind) -> String {
    let status = Status::from(Error::new(Operation::VerifyUserAttribute, kind));
    let d = status.get_error_details();
    let retry_info = d.retry_info().is_some();
    let has = [
        retry_info,
        d.quota_failure().is_some(),
        d.bad_request().is_some(),
    ];
    let mut code = String::new(); // InvalidArgument → INVALID_ARGUMENT
    for c in code_name(status.code()).chars() {
        if c.is_ascii_uppercase() && !code.is_empty() {
            code.push('_');
        }
        code.push(c.to_ascii_uppercase());
    }
    let info = d.error_info().expect("every status has an ErrorInfo");
    written(&code, &info.reason, has)
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
        RequestReadTimeout { .. } | DeadlineExceeded => {}
    }
    use TokenRejection::*;
    match rejection {
        Malformed | Expired | NotAnAccessToken | MissingScope | IssuerNotAllowed => {}
        BadSignature | UnknownPool => {}
    }
    use Limit::*;
    match limit {
        SendCooldown | UserSendQuota | UserVerifyQuota | CallerRate | RpcRate(_) => {}
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
    ];
    kinds.extend([Malformed, Expired, NotAnAccessToken, MissingScope].map(Token));
    kinds.extend([IssuerNotAllowed, BadSignature, UnknownPool].map(Token));
    let limits = [SendCooldown, UserSendQuota, UserVerifyQuota, CallerRate];
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
