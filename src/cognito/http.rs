//! The HTTPS client every SDK client here uses: the one the SDK's
//! `default-https-client` feature would build (hyper 1, rustls on aws-lc, the
//! system's roots, the proxy from `HTTPS_PROXY`/`NO_PROXY`), built from
//! aws-smithy-http-client directly. Without that feature the SDK crates do
//! not depend on the TLS stack, so a cold build compiles them in parallel
//! with aws-lc and rustls instead of after them.

use aws_sdk_cognitoidentityprovider::config::SharedHttpClient;
use aws_smithy_http_client::{
    proxy::ProxyConfig,
    tls::{rustls_provider::CryptoMode, Provider},
    Builder, ConnectorBuilder,
};

/// A new HTTPS client. Each SDK client built from one configuration shares
/// its connection pools (one per connector setting: timeouts, sleep).
pub fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}
