//! The built-in Playground identity provider, behind the default
//! `playground` feature. With it, a first run without a config file opens on
//! the Playground (demo users, admin API for QA). Without it
//! (`--no-default-features`), the app needs a config file; the types below
//! stand in so the rest of the shell reads the same either way (an
//! `Option<Playground>` that is always `None`).

#[cfg(feature = "playground")]
pub use playground::{DemoUser, Playground, ADMIN_TOKEN_FILE};

#[cfg(feature = "playground")]
pub(crate) async fn start(lifetime: std::time::Duration, dir: std::path::PathBuf) -> Result<Playground, String> {
    Playground::start(playground::Options {
        token_lifetime: lifetime,
        dir: Some(dir),
        // ES256 signs at once; the RSA key follows in the background.
        signing_alg: playground::Algorithm::ES256,
        // Its port, certificates, keys and sessions outlive the app, as a
        // real provider's do: a restarted app restores its session.
        keep_state: true,
        ..playground::Options::default()
    })
    .await
    .map_err(|e| e.to_string())
}

#[cfg(not(feature = "playground"))]
pub use none::{DemoUser, Playground};
#[cfg(not(feature = "playground"))]
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

#[cfg(not(feature = "playground"))]
pub(crate) async fn start(_lifetime: std::time::Duration, _dir: std::path::PathBuf) -> Result<Playground, String> {
    Err(
        "this build has no built-in Playground (built without the `playground` feature); \
         put your profiles in ~/.config/session-manager/config.toml or pass --config FILE"
            .to_owned(),
    )
}

#[cfg(not(feature = "playground"))]
mod none {
    /// A demo user (never present without the Playground).
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct DemoUser {
        pub username: String,
        pub password: String,
    }

    /// What the Playground announces (never present without it).
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Info {
        pub base_url: String,
        pub ca_cert: String,
        pub admin_url: String,
        pub admin_token: String,
        pub users: Vec<DemoUser>,
    }

    /// No Playground: never constructed.
    pub struct Playground {
        info: Info,
        config: String,
    }

    impl Playground {
        pub fn info(&self) -> &Info {
            &self.info
        }
        pub fn config(&self) -> &str {
            &self.config
        }
    }
}
