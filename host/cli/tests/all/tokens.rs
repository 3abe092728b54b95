//! `onething token provider`: the `[identity]` block it prints lets a host
//! that is not in demo mode take development tokens.

use std::process::Command;

use onething_host::config::Config;

fn onething(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_provider_block_lets_a_non_demo_host_take_development_tokens() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    let block = onething(&dir, &["token", "provider"]);
    assert!(block.contains("ANYONE can mint"), "{block}");
    assert!(block.contains("never in production"), "{block}");

    // A host with no admin token and no demo mode, configured with the
    // block as printed.
    let file = dir.join("onething.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nplugins_dir = \"{}\"\ndemo_data = false\ndemo_plugins = false\n\n{block}",
            dir.join("data").display(),
            dir.join("no-plugins").display(),
        ),
    )
    .unwrap();
    let config = Config::from_file(&file).unwrap();
    assert!(!config.demo_plugins && config.admin_token.is_none());
    let host = crate::admin_host::Host::start_config(config).await;

    // `token issue` tokens now work on it: a citizen's, and an operator's
    // (which is why the block is for a host only you can reach).
    let citizen = onething(&dir, &["token", "issue", "--citizen", "C-1"]);
    let response = host
        .api
        .client
        .get(format!("{}/v1/me/access-log", host.api.base))
        .bearer_auth(citizen.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let operator = onething(&dir, &["token", "issue", "--operator", "li.wei"]);
    let (status, body) = host
        .admin_as(
            Some(operator.trim()),
            reqwest::Method::GET,
            "/v1/admin/plugins",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    host.stop().await;
}
