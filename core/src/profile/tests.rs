//! Config parsing and validation.
use super::*;

const PIN_A: &str = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const PIN_B: &str = "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=";

fn profile(env: &str, extra: &str) -> String {
    format!(
        "[profiles.p]\nprovider = \"finhub\"\nenvironment = \"{env}\"\nbase_url = \"https://idp.example\"\ntenant_id = \"t1\"\naudience = \"app\"\n{extra}\n"
    )
}

fn err(text: &str) -> ConfigError {
    Config::parse(text, Path::new(".")).expect_err("config should be refused")
}

#[test]
fn integration_profile_gets_defaults() {
    let c = Config::parse(
        &profile("integration", &format!("pins = [\"{PIN_A}\"]")),
        Path::new("."),
    )
    .unwrap();
    let p = c.profile(None).unwrap();
    assert_eq!(p.environment, Environment::Integration);
    assert_eq!(p.min_tls, TlsVersion::V1_2);
    assert_eq!(p.refresh_lead, DEFAULT_REFRESH_LEAD);
    assert_eq!(p.issuer, "https://idp.example");
    assert_eq!(
        p.jwks_url.as_ref().unwrap().as_str(),
        "https://idp.example/.well-known/jwks.json"
    );
    assert_eq!(p.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
}

#[test]
fn production_needs_two_pins() {
    let e = err(&profile("production", &format!("pins = [\"{PIN_A}\"]")));
    assert_eq!(e.profile.as_deref(), Some("p"));
    assert_eq!(e.field.as_deref(), Some("pins"));
    assert!(e.to_string().contains("at least two pins"), "{e}");
    let ok = Config::parse(
        &profile("production", &format!("pins = [\"{PIN_A}\", \"{PIN_B}\"]")),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(ok.profile(Some("p")).unwrap().min_tls, TlsVersion::V1_3);
}

#[test]
fn production_refuses_tls12() {
    let e = err(&profile(
        "production",
        &format!("pins = [\"{PIN_A}\", \"{PIN_B}\"]\nmin_tls = \"1.2\""),
    ));
    assert_eq!(e.field.as_deref(), Some("min_tls"));
    assert!(e.fix.contains("1.3"));
}

#[test]
fn unknown_field_is_named() {
    let e = err(&profile("integration", &format!("pins = [\"{PIN_A}\"]\npinz = []")));
    assert_eq!(e.profile.as_deref(), Some("p"));
    assert_eq!(e.field.as_deref(), Some("pinz"));
    // The one meant, not every valid name.
    assert_eq!(e.fix, "did you mean `pins`?");
    assert!(!e.to_string().contains("expected one of"), "{e}");
    let e = err(&profile(
        "integration",
        &format!("pins = [\"{PIN_A}\"]\ntenantid = \"t\""),
    ));
    assert_eq!(e.fix, "did you mean `tenant_id`?");
    let e = err(&profile("integration", &format!("pins = [\"{PIN_A}\"]\nbogus = 1")));
    assert!(e.fix.starts_with("remove it"), "{e}");
    // At the top of the file too.
    let e = err(&format!(
        "defualt_profile = \"p\"\n{}",
        profile("integration", &format!("pins = [\"{PIN_A}\"]"))
    ));
    assert_eq!(e.fix, "did you mean `default_profile`?");
}

#[test]
fn bad_values_name_field_and_fix() {
    let cases = [
        (profile("staging", &format!("pins = [\"{PIN_A}\"]")), "environment"),
        (profile("integration", "pins = [\"md5/abc\"]"), "pins"),
        (profile("integration", ""), "pins"),
        (profile("integration", &format!("pins = [\"{PIN_A}\"]\nalgorithms = [\"HS256\"]")), "algorithms"),
        (profile("integration", &format!("pins = [\"{PIN_A}\"]\nalgorithms = [\"none\"]")), "algorithms"),
        (profile("integration", &format!("pins = [\"{PIN_A}\"]\nrefresh_lead_secs = 0")), "refresh_lead_secs"),
        (profile("integration", &format!("pins = [\"{PIN_A}\"]\nca_file = \"/nonexistent/ca.pem\"")), "ca_file"),
        (
            format!("[profiles.p]\nprovider = \"finhub\"\nenvironment = \"integration\"\nbase_url = \"http://idp.example\"\ntenant_id = \"t\"\naudience = \"a\"\npins = [\"{PIN_A}\"]\n"),
            "base_url",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(!e.fix.is_empty());
    }
}

#[test]
fn missing_profile_lists_the_known_ones() {
    let c = Config::parse(
        &profile("integration", &format!("pins = [\"{PIN_A}\"]")),
        Path::new("."),
    )
    .unwrap();
    let e = c.profile(Some("nope")).unwrap_err();
    assert!(e.to_string().contains("use one of: p"), "{e}");
}

fn oidc(extra: &str) -> String {
    format!("[profiles.o]\nprovider = \"oidc\"\nenvironment = \"integration\"\nissuer = \"https://idp.example/tenant\"\nclient_id = \"desktop\"\npins = [\"{PIN_A}\"]\n{extra}\n")
}

#[test]
fn oidc_profile_gets_defaults() {
    let c = Config::parse(&oidc("scopes = [\"profile\", \"offline_access\"]"), Path::new(".")).unwrap();
    let p = c.profile(None).unwrap();
    assert_eq!(p.provider, ProviderKind::Oidc);
    assert_eq!(p.issuer, "https://idp.example/tenant");
    assert!(
        !p.check_access_token,
        "without an audience the access token is opaque to the client (RFC 9068 section 6)"
    );
    assert_eq!(p.jwks_url, None, "from discovery");
    let o = p.oidc.as_ref().unwrap();
    assert_eq!(
        o.scopes,
        vec!["openid", "profile", "offline_access"],
        "openid is always asked for"
    );
    assert_eq!(
        o.discovery_url.as_str(),
        "https://idp.example/tenant/.well-known/openid-configuration"
    );
    assert_eq!(
        (o.redirect_port, o.extend_access, o.end_session_in_browser),
        (0, ExtendAccess::Refresh, true)
    );
    assert!(o.client_secret.is_none());
    assert_eq!(o.sign_in_timeout, Duration::from_secs(300));
    let c = Config::parse(
        &oidc("extend_access = \"reauthenticate\"\naudience = \"https://api.example\"\nredirect_port = 8765"),
        Path::new("."),
    )
    .unwrap();
    let p = c.profile(None).unwrap();
    let o = p.oidc.as_ref().unwrap();
    assert_eq!((o.extend_access, o.redirect_port), (ExtendAccess::Reauthenticate, 8765));
    assert_eq!(p.audience, "https://api.example");
    assert!(p.check_access_token, "a named audience asks for the check");
}

#[test]
fn oidc_errors_name_field_and_fix() {
    let cases = [
        (oidc("extend_access = \"sometimes\""), "extend_access"),
        (oidc("sign_in_timeout_secs = 5"), "sign_in_timeout_secs"),
        (oidc("tenant_id = \"t\""), "tenant_id"),
        (oidc("base_url = \"https://idp.example\""), "base_url"),
        (oidc("client_secret = \"\""), "client_secret"),
        (oidc("scopes = [\"open id\"]"), "scopes"),
        (oidc("logout_url = \"http://idp.example/logout\""), "logout_url"),
        (oidc("").replace("client_id = \"desktop\"\n", ""), "client_id"),
        (
            oidc("").replace(
                "issuer = \"https://idp.example/tenant\"",
                "issuer = \"http://idp.example\"",
            ),
            "issuer",
        ),
        (
            oidc("").replace("issuer = \"https://idp.example/tenant\"\n", ""),
            "issuer",
        ),
        (
            profile("integration", &format!("pins = [\"{PIN_A}\"]\nclient_id = \"x\"")),
            "client_id",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(!e.fix.is_empty(), "{e}");
    }
}

#[test]
fn duplicate_pins_count_once_toward_productions_two() {
    let e = err(&profile("production", &format!("pins = [\"{PIN_A}\", \"{PIN_A}\"]")));
    assert_eq!(e.field.as_deref(), Some("pins"));
    assert!(e.problem.contains("1 distinct"), "{e}");
    let ok = Config::parse(
        &profile("production", &format!("pins = [\"{PIN_A}\", \"{PIN_B}\", \"{PIN_A}\"]")),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(ok.profile(None).unwrap().pins.len(), 2);
}

#[test]
fn a_profile_name_may_not_hold_the_keychain_separator() {
    let text = profile("integration", &format!("pins = [\"{PIN_A}\"]")).replace("[profiles.p]", "[profiles.\"a#2#0\"]");
    let e = err(&text);
    assert_eq!(e.profile.as_deref(), Some("a#2#0"));
    assert!(e.problem.contains('#'), "{e}");
}

#[test]
fn timeouts_and_answer_caps_have_sane_ranges() {
    let p = |extra: &str| profile("integration", &format!("pins = [\"{PIN_A}\"]\n{extra}"));
    let c = Config::parse(&p("timeout_secs = 5\nmax_response_bytes = 65536"), Path::new(".")).unwrap();
    let prof = c.profile(None).unwrap();
    assert_eq!((prof.timeout, prof.max_response_bytes), (Duration::from_secs(5), 65536));
    let d = Config::parse(&p(""), Path::new(".")).unwrap();
    assert_eq!(
        d.profile(None).unwrap().timeout,
        Duration::from_secs(DEFAULT_TIMEOUT_SECS)
    );
    for (extra, field) in [
        ("timeout_secs = 0", "timeout_secs"),
        ("timeout_secs = 100000", "timeout_secs"),
        ("max_response_bytes = 10", "max_response_bytes"),
        ("max_response_bytes = 99999999999", "max_response_bytes"),
    ] {
        let e = err(&p(extra));
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(!e.fix.is_empty());
    }
}
