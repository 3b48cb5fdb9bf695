//! `cognito-verify dev` and `cognito-verify emulator`: the embedded backend,
//! alone or with the gRPC service wired to it through the real AWS SDK (the
//! same code path as production, only the endpoint differs).

use std::future::Future;

use cognito_emulator::{self as emulator, store::Seed, Settings};

use crate::{
    cognito::Cognito,
    config::{BackendOptions, DevConfig, EmulatorConfig},
    contact::Contact,
    server,
    sms::NumberFacts,
};

/// Runs the backend alone until `shutdown`.
pub async fn run_emulator(
    config: EmulatorConfig,
    seed: Seed,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let bound = emulator::bind(config.listen, seed, settings(&config.backend)).await?;
    tracing::info!(address = %bound.addr, "Cognito-compatible backend listening");
    emulator::serve(bound, shutdown)
        .await
        .map_err(|e| format!("backend: {e}"))
}

/// Runs the backend and the gRPC service until `shutdown`, printing the demo
/// user's token and ready-to-paste grpcurl commands on stdout.
pub async fn run_dev(
    config: DevConfig,
    seed: Seed,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let demo = DemoUser::of(&seed);
    let abroad = DemoUser::abroad(&seed, &config.sms_allow_country);
    let pools: Vec<String> = seed.pools.iter().map(|p| p.id.clone()).collect();
    let bound = emulator::bind(config.emulator_listen, seed, settings(&config.backend)).await?;
    let endpoint = format!("http://{}", bound.addr);
    let backend = std::sync::Arc::clone(&bound.backend);

    let serve_config = config
        .serve_config(&endpoint, &pools)
        .map_err(|e| e.to_string())?;
    let cognito = Cognito::from_config(&serve_config)
        .await
        .map_err(|e| e.to_string())?;
    let listeners = server::Bound::bind(&serve_config)
        .await
        .map_err(|e| e.to_string())?;
    let grpc_addr = listeners.grpc_addr().map_err(|e| e.to_string())?;

    let (stop_backend, backend_stopped) = tokio::sync::oneshot::channel::<()>();
    let backend_task = tokio::spawn(emulator::serve(bound, async {
        let _ = backend_stopped.await;
    }));

    let sign_in = |d: &DemoUser| -> Result<Option<String>, String> {
        let pool = backend
            .pool(&d.pool_id)
            .ok_or("the seed's first pool is missing")?;
        let result = backend
            .sign_in(pool, &d.username, &d.client_id, config.demo_token_ttl_secs)
            .map_err(|e| format!("demo sign-in: {}", e.message.unwrap_or(e.error_type)))?;
        Ok(result["AccessToken"].as_str().map(str::to_owned))
    };
    let token = demo.as_ref().map(sign_in).transpose()?.flatten();
    let abroad = match abroad {
        Some(a) => sign_in(&a)?.map(|token| (a, token)),
        None => None,
    };
    tracing::info!(grpc = %grpc_addr, backend = %endpoint, "dev: gRPC service and embedded Cognito backend listening");
    println!(
        "{}",
        banner(
            &grpc_addr.to_string(),
            &endpoint,
            demo.as_ref(),
            token.as_deref(),
            abroad.as_ref().map(|(a, t)| (a, t.as_str())),
            &config
        )
    );

    // The facade drains first: its in-flight calls still need the backend.
    let served = server::run(listeners, &serve_config, cognito, shutdown).await;
    let _ = stop_backend.send(());
    let _ = backend_task.await;
    served.map_err(|e| e.to_string())
}

fn settings(options: &BackendOptions) -> Settings {
    Settings {
        token_ttl_secs: options.token_ttl_secs,
        fixed_code: options.fixed_code.clone(),
        user_limits: !options.no_user_limits,
        constant_response: options.constant_response,
    }
}

/// The seed the options name (the demo seed without `--seed`), checked:
/// a bad seed is a configuration error.
pub fn load_seed(options: &BackendOptions) -> Result<Seed, String> {
    let seed = match &options.seed {
        Some(path) => Seed::load(path)?,
        None => Seed::demo(),
    };
    seed.validate()?;
    Ok(seed)
}

/// The user `dev` signs in: the first user and client of the first pool.
struct DemoUser {
    pool_id: String,
    client_id: String,
    username: String,
    password: String,
    email: Option<String>,
    phone: Option<String>,
}

impl DemoUser {
    fn of(seed: &Seed) -> Option<Self> {
        Self::nth(seed, 0)
    }

    /// A user of the first pool (not the first) whose phone number's
    /// country is not in `allowed`: the SMS guard refuses a code to it.
    fn abroad(seed: &Seed, allowed: &[String]) -> Option<Self> {
        // No list: every country is allowed, nobody is abroad.
        if allowed.iter().all(|a| a.trim().is_empty()) {
            return None;
        }
        let users = seed.pools.first()?.users.len();
        (1..users).filter_map(|i| Self::nth(seed, i)).find(|u| {
            let country = u.phone.as_deref().and_then(|p| NumberFacts::of(p).country);
            country.is_some_and(|c| !allowed.iter().any(|a| a.eq_ignore_ascii_case(&c)))
        })
    }

    fn nth(seed: &Seed, index: usize) -> Option<Self> {
        let pool = seed.pools.first()?;
        let user = pool.users.get(index)?;
        Some(Self {
            pool_id: pool.id.clone(),
            client_id: pool.clients.first()?.client_id.clone(),
            username: user.username.clone(),
            password: user.password.clone(),
            email: user.attributes.get("email").cloned(),
            phone: user.attributes.get("phone_number").cloned(),
        })
    }
}

fn banner(
    grpc: &str,
    backend: &str,
    demo: Option<&DemoUser>,
    token: Option<&str>,
    abroad: Option<(&DemoUser, &str)>,
    config: &DevConfig,
) -> String {
    const SVC: &str = "cognito.verify.v1.UserAttributeVerificationService";
    let mut out = format!(
        "\ncognito-verify dev\n  gRPC service:               {grpc}\n  Cognito-compatible backend: {backend}\n"
    );
    let (Some(demo), Some(token)) = (demo, token) else {
        out.push_str("\nThe seed has no user to sign in; use InitiateAuth against the backend for a token.\n");
        return out;
    };
    let hours = config.demo_token_ttl_secs as f64 / 3600.0;
    out.push_str(&format!(
        "\nDemo user {:?} in pool {} (client {}, password {:?}){}{}.\nIts access token, valid for {hours} h:\n\nexport TOKEN={token}\n",
        demo.username,
        demo.pool_id,
        demo.client_id,
        demo.password,
        demo.email.as_deref().map(|e| format!(", email {e}")).unwrap_or_default(),
        demo.phone.as_deref().map(|p| format!(", phone {p}")).unwrap_or_default(),
    ));
    let code = config.backend.fixed_code.as_deref().unwrap_or("123456");
    out.push_str(&format!(
        "\n1. Send a code to the email address:\n\
         grpcurl -plaintext -d '{{\"access_token\":\"'\"$TOKEN\"'\",\"attribute_name\":\"email\"}}' {grpc} {SVC}/GetUserAttributeVerificationCode\n\
         \n2. Read the code in this log (\"verification code delivered\") or at {backend}/_emulator/outbox\n\
         \n3. Verify it{}:\n\
         grpcurl -plaintext -d '{{\"access_token\":\"'\"$TOKEN\"'\",\"attribute_name\":\"email\",\"code\":\"{code}\"}}' {grpc} {SVC}/VerifyUserAttribute\n\
         \nThe same works with \"attribute_name\":\"phone_number\".\n\
         \n4. Where the user stands (verified, next send, sends and attempts left):\n\
         grpcurl -plaintext -d '{{\"access_token\":\"'\"$TOKEN\"'\"}}' {grpc} {SVC}/GetVerificationStatus\n",
        if config.backend.fixed_code.is_some() { "" } else { " (put the code in place of 123456)" },
    ));
    if let Some((user, token)) = abroad {
        out.push_str(&format!(
            "\nSMS codes go only to --sms-allow-country {}. User {:?}'s phone ({}) is elsewhere:\n\
             \nexport TOKEN_ABROAD={token}\n\
             grpcurl -plaintext -d '{{\"access_token\":\"'\"$TOKEN_ABROAD\"'\",\"attribute_name\":\"phone_number\"}}' {grpc} {SVC}/GetUserAttributeVerificationCode\n\
             (FAILED_PRECONDITION, reason SMS_COUNTRY_NOT_ALLOWED: nothing is sent)\n",
            config.sms_allow_country.join(","),
            user.username,
            Contact::new(user.phone.clone(), false).masked("phone_number"),
        ));
    }
    out.push_str("\nCtrl-C stops both servers.\n");
    out
}
