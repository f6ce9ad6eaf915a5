//! The fields only one provider kind has: FinHub's (tenant, session API)
//! and OpenID Connect's (issuer, client, scopes, end-session, discovery).

use super::*;

pub(super) fn finhub_fields(p: &mut Profile, raw: RawProfile) -> Result<(), ConfigError> {
    let name = p.name.clone();
    let name = name.as_str();
    let base = required(
        name,
        "finhub",
        "base_url",
        &raw.base_url,
        "set base_url to the provider's https:// address",
    )?;
    p.base_url = https_url(name, "base_url", base)?;
    p.backup_urls = raw
        .backup_urls
        .unwrap_or_default()
        .iter()
        .map(|u| https_url(name, "backup_urls", u))
        .collect::<Result<Vec<_>, _>>()?;
    p.device_name = match raw.device_name.as_deref().map(str::trim) {
        None => default_device_name(),
        Some(n) if !n.is_empty() && n.chars().count() <= 100 && !n.chars().any(char::is_control) => n.to_owned(),
        Some(_) => {
            return Err(ConfigError::new(
                name,
                "device_name",
                "it must be 1 to 100 characters without control characters",
                "name this computer as you want to see it in your list of sessions, or remove device_name",
            ))
        }
    };
    p.failback = match raw.failback_secs {
        None => Duration::from_secs(15),
        Some(s) if (1..=3600).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(ConfigError::new(
                name,
                "failback_secs",
                format!("{s} is outside 1 to 3600"),
                "set how many seconds to stay on a backup before trying the primary again (default 15)",
            ))
        }
    };
    p.tenant_id = required(
        name,
        "finhub",
        "tenant_id",
        &raw.tenant_id,
        "set tenant_id to the tenant you sign in to",
    )?
    .to_owned();
    if p.jwks_url.is_none() {
        p.jwks_url = Some(
            p.base_url
                .join("/.well-known/jwks.json")
                .map_err(|e| ConfigError::new(name, "jwks_url", e.to_string(), "set jwks_url explicitly"))?,
        );
    }
    p.issuer = raw.issuer.unwrap_or_else(|| base.trim_end_matches('/').to_owned());
    p.audience = required(
        name,
        "finhub",
        "audience",
        &raw.audience,
        "set audience to the `aud` your provider puts in tokens",
    )?
    .to_owned();
    Ok(())
}

pub(super) fn oidc_fields(p: &mut Profile, raw: RawProfile) -> Result<(), ConfigError> {
    let name = p.name.clone();
    let name = name.as_str();
    let issuer = oidc_issuer(name, &raw.issuer)?;
    let client_id = required(
        name,
        "oidc",
        "client_id",
        &raw.client_id,
        "set client_id to the client id your provider registered for this app",
    )?
    .to_owned();
    let api_base_url = optional_url(name, "api_base_url", raw.api_base_url.as_deref())?;
    p.base_url = api_base_url.clone().unwrap_or_else(|| issuer.1.clone());
    p.issuer = issuer.0.to_owned();
    p.audience = audience(name, raw.audience.as_deref(), &client_id)?;
    p.check_access_token = raw.audience.is_some();
    let extend = extend_access(name, raw.extend_access.as_deref())?;
    p.oidc = Some(OidcSettings {
        client_secret: client_secret(name, raw.client_secret)?,
        scopes: scopes(name, raw.scopes, extend)?,
        resource: raw.resource.filter(|r| !r.trim().is_empty()),
        redirect_port: raw.redirect_port.unwrap_or(0),
        extend_access: extend,
        offline_access_prompt: raw.offline_access_prompt.unwrap_or(true),
        max_age: max_age(name, raw.max_age_secs)?,
        discovery_url: discovery_url(name, raw.discovery_url.as_deref(), issuer.0)?,
        logout_url: optional_url(name, "logout_url", raw.logout_url.as_deref())?,
        end_session_in_browser: raw.end_session_in_browser.unwrap_or(true),
        end_session_method: end_session_method(name, raw.end_session_method.as_deref())?,
        sign_in_timeout: sign_in_timeout(name, raw.sign_in_timeout_secs)?,
        api_base_url,
        client_id,
    });
    Ok(())
}

/// The issuer as written and as a URL; OpenID Connect Discovery 2 allows
/// neither query nor fragment.
fn oidc_issuer<'a>(name: &str, value: &'a Option<String>) -> Result<(&'a str, reqwest::Url), ConfigError> {
    let issuer = required(
        name,
        "oidc",
        "issuer",
        value,
        "set issuer to the provider's issuer identifier, e.g. https://idp.example.com",
    )?;
    let url = https_url(name, "issuer", issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            name,
            "issuer",
            "an issuer has no query or fragment (OpenID Connect Discovery 2)",
            "remove the ?… or #… part",
        ));
    }
    Ok((issuer, url))
}

fn client_secret(name: &str, value: Option<String>) -> Result<Option<ClientSecret>, ConfigError> {
    match value {
        Some(s) if s.is_empty() => Err(ConfigError::new(
            name,
            "client_secret",
            "client_secret is empty",
            "remove it: native apps are public clients with PKCE",
        )),
        s => Ok(s.map(ClientSecret::new)),
    }
}

/// The scopes, `openid` always among them. Without a list, `openid profile
/// email`, and `offline_access` too when the policy renews with a refresh
/// token (most providers grant one only for it).
fn scopes(name: &str, value: Option<Vec<String>>, extend: ExtendAccess) -> Result<Vec<String>, ConfigError> {
    let mut scopes = value.unwrap_or_else(|| {
        let mut s = vec!["openid".into(), "profile".into(), "email".into()];
        if extend == ExtendAccess::Refresh {
            s.push("offline_access".into());
        }
        s
    });
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\'))
    {
        return Err(ConfigError::new(
            name,
            "scopes",
            format!("'{bad}' is not a scope"),
            "list scopes one per string, e.g. [\"openid\", \"offline_access\"]",
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    Ok(scopes)
}

fn end_session_method(name: &str, value: Option<&str>) -> Result<crate::profile::EndSessionMethod, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("post") => Ok(crate::profile::EndSessionMethod::Post),
        Some("get") => Ok(crate::profile::EndSessionMethod::Get),
        Some(other) => Err(ConfigError::new(
            name,
            "end_session_method",
            format!("unknown method '{other}'"),
            "use \"post\" (the default) or \"get\" for a provider that answers the sign-out POST with an error",
        )),
    }
}

fn extend_access(name: &str, value: Option<&str>) -> Result<ExtendAccess, ConfigError> {
    match value {
        None | Some("refresh") => Ok(ExtendAccess::Refresh),
        Some("reauthenticate") => Ok(ExtendAccess::Reauthenticate),
        Some(other) => Err(ConfigError::new(
            name,
            "extend_access",
            format!("unknown policy '{other}'"),
            "use \"refresh\" or \"reauthenticate\"",
        )),
    }
}

fn discovery_url(name: &str, value: Option<&str>, issuer: &str) -> Result<reqwest::Url, ConfigError> {
    match value {
        Some(u) => https_url(name, "discovery_url", u),
        None => https_url(
            name,
            "issuer",
            &format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
        ),
    }
}
