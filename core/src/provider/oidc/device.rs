//! The device authorization grant (RFC 8628): for a person on a machine
//! where no browser can be used (SSH, a headless box), who signs in on
//! another device. The app asks the provider for a device code and a user
//! code, shows the verification page and the user code, and polls the
//! token endpoint at the interval the provider asks for until the person
//! has allowed (or denied) it there.

use super::token::TokenCall;
use super::Oidc;
use crate::error::Error;
use crate::net::tls::BodyKind;
use crate::provider::{BrowserSignIn, DeviceCode, Grant};
use serde_json::Value;
use std::time::Duration;

/// The device grant's `grant_type` (RFC 8628 section 3.4).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The polling interval when the provider names none (section 3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How much `slow_down` adds to the interval (section 3.5).
const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The longest a device code is waited for, whatever the provider says.
const MAX_WAIT: Duration = Duration::from_secs(1800);
/// The longest interval a passing failure doubles the polling interval to.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

impl Oidc {
    /// Sign in with the device authorization grant.
    pub(super) async fn device_sign_in(&self, b: &BrowserSignIn) -> Result<Grant, Error> {
        let d = self.discovery.get().await?;
        let Some(endpoint) = d.device_authorization_endpoint.clone() else {
            return Err(Error::InvalidState(format!(
                "the provider of profile '{}' offers no device sign-in (its discovery document has no device_authorization_endpoint); sign in through the browser instead",
                self.profile.name
            )));
        };
        let s = self.settings();
        let mut form = vec![("scope", s.scopes.join(" "))];
        let request = self.authenticate(&d, self.client.http().post(endpoint), &mut form);
        let response = self
            .client
            .send(request.header("Accept", "application/json").form(&form))
            .await?;
        let status = response.status().as_u16();
        let retry_after = crate::provider::retry_after(&response);
        let body = self.client.read_body(response, BodyKind::Protocol).await?;
        if status != 200 {
            return Err(super::token::token_error(
                TokenCall::Device,
                status,
                &String::from_utf8_lossy(&body),
                retry_after,
            ));
        }
        let (device_code, code, mut interval) = parse_authorization(&body)?;
        // The person reads the code from the view (or the front's output).
        b.opener.show_code(&code);
        let deadline = tokio::time::Instant::now() + code.expires_in.min(MAX_WAIT);
        let mut cancel = b.cancel.clone();
        loop {
            let wait = tokio::time::sleep(interval);
            tokio::select! {
                _ = wait => {}
                _ = cancel.wait_for(|c| *c) => {
                    return Err(Error::SignInCancelled);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::SignInTimedOut(code.expires_in.as_secs()));
            }
            let form = vec![
                ("grant_type", GRANT_TYPE.to_owned()),
                ("device_code", device_code.clone()),
            ];
            // A passing failure (the network, a timeout, 5xx, 429) does not
            // end the sign-in: poll again, twice as far apart (section 3.5),
            // until the code expires.
            let answer = match self.token_request(&d, form).await {
                Ok(response) => self.token_response(TokenCall::Device, response).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(tokens) => return self.grant(&d, tokens, Some(super::SignInChecks::DEVICE)).await,
                Err(e) if e.is_transient() => interval = (interval * 2).min(MAX_INTERVAL),
                Err(Error::Authorization { error, .. }) if error == "authorization_pending" => {}
                Err(Error::Authorization { error, .. }) if error == "slow_down" => interval += SLOW_DOWN,
                Err(Error::Authorization { error, .. }) if error == "expired_token" => {
                    return Err(Error::SignInTimedOut(code.expires_in.as_secs()))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The device authorization response (section 3.2): the device code, what
/// the person needs, and the polling interval.
fn parse_authorization(body: &[u8]) -> Result<(String, DeviceCode, Duration), Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("the device authorization answer is not JSON ({e})")))?;
    let text = |name: &str| v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let need = |name: &'static str| {
        text(name)
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol(format!("the device authorization answer has no {name}")))
    };
    let https = |name: &'static str, url: String| -> Result<String, Error> {
        match reqwest::Url::parse(&url) {
            Ok(u) if u.scheme() == "https" => Ok(url),
            _ => Err(Error::Protocol(format!(
                "the device authorization answer's {name} is not an https URL"
            ))),
        }
    };
    let secs = |name: &str| v.get(name).and_then(Value::as_u64);
    let expires_in = crate::provider::plausible_expires_in(secs("expires_in"), "expires_in")?
        .ok_or_else(|| Error::Protocol("the device authorization answer has no expires_in".into()))?;
    let interval = secs("interval")
        .map(|s| Duration::from_secs(s.clamp(1, 60)))
        .unwrap_or(DEFAULT_INTERVAL);
    let code = DeviceCode {
        verification_uri: https("verification_uri", need("verification_uri")?)?,
        verification_uri_complete: text("verification_uri_complete")
            .map(|u| https("verification_uri_complete", u.to_owned()))
            .transpose()?,
        user_code: crate::net::text::printable(&need("user_code")?, 64),
        expires_in: Duration::from_secs(expires_in),
    };
    Ok((need("device_code")?, code, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_answer_is_checked() {
        let good = br#"{"device_code":"dc","user_code":"BCDF-GHJK","verification_uri":"https://idp.test/device",
            "verification_uri_complete":"https://idp.test/device?user_code=BCDF-GHJK","expires_in":600,"interval":2}"#;
        let (dc, code, interval) = parse_authorization(good).unwrap();
        assert_eq!(dc, "dc");
        assert_eq!(code.user_code, "BCDF-GHJK");
        assert_eq!(interval, Duration::from_secs(2));
        // No interval: 5 s (RFC 8628 section 3.2).
        let (_, _, interval) = parse_authorization(
            br#"{"device_code":"dc","user_code":"X","verification_uri":"https://idp.test/d","expires_in":60}"#,
        )
        .unwrap();
        assert_eq!(interval, DEFAULT_INTERVAL);
        for (bad, what) in [
            (
                &br#"{"user_code":"X","verification_uri":"https://i/d","expires_in":60}"#[..],
                "device_code",
            ),
            (
                br#"{"device_code":"d","user_code":"X","verification_uri":"http://i/d","expires_in":60}"#,
                "https",
            ),
            (
                br#"{"device_code":"d","user_code":"X","verification_uri":"https://i/d"}"#,
                "expires_in",
            ),
            (
                br#"{"device_code":"d","user_code":"X","verification_uri":"https://i/d","expires_in":99999999999}"#,
                "year",
            ),
            (b"not json", "JSON"),
        ] {
            let e = parse_authorization(bad).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }
}
