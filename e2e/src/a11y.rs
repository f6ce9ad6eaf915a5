//! Accessibility checks through the real window: axe-core (installed by
//! `scripts/common.sh`'s `ensure_axe` into `target/tools/axe-core`), injected
//! with WebDriver, run on the page as it is.

use crate::root;
use fantoccini::Client;
use std::path::PathBuf;

/// The WCAG 2.1 levels A and AA rules axe-core has.
const RUN_AXE: &str = r#"
  const done = arguments[arguments.length - 1];
  const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
  axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
    .then((r) => done(r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id} (${v.help}): ` + v.nodes.map((n) =>
        n.target.join(' ') + ' - ' + (n.failureSummary || '').replace(/\s+/g, ' ')).join('; '))))
    .catch((e) => done(['axe-core failed: ' + e]));
"#;

fn axe_source() -> String {
    let path: PathBuf = root().join("target/tools/axe-core/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed at {} ({e}): run bash scripts/test.sh, \
             or `. scripts/common.sh; ensure_axe`",
            path.display()
        )
    })
}

/// axe-core's serious and critical WCAG 2.1 A/AA violations on the page as
/// it is now, one line each (rule, elements, why).
pub async fn violations(client: &Client) -> Vec<String> {
    let loaded = client
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .expect("the page answers a script")
        .as_bool()
        .unwrap_or(false);
    if !loaded {
        let inject = format!("{}\nreturn typeof window.axe === 'object';", axe_source());
        let ok = client.execute(&inject, vec![]).await.expect("axe-core is injected");
        assert_eq!(ok, serde_json::Value::Bool(true), "axe-core did not load in the page");
    }
    let found = client.execute_async(RUN_AXE, vec![]).await.expect("axe-core runs");
    serde_json::from_value(found).expect("axe-core's answer is a list of strings")
}
