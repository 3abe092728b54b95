//! The registry's test host: no plugins, no demo seeding, an admin token,
//! and the admin calls and signed fixture packages its tests send. Shared by
//! the registry and describe tests here and the CLI's tests (host/cli).

use std::sync::Arc;

use onething_host::config::Config;
use onething_host::server::Server;
use onething_host::service::SystemClock;
use onething_host::storage::Storage;
use onething_host::storage::sled::SledStorage;
use onething_registry::{Package, SigningKeyFile};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Api, into_json, plugin_dir};

pub const TOKEN: &str = "registry-test-token";

/// A host with no plugins, no demo seeding and an admin token.
pub struct Host {
    pub api: Api,
    pub storage: Arc<dyn Storage>,
    server: Option<Server>,
    pub config: Config,
}

impl Host {
    pub async fn start(dir: &std::path::Path) -> Host {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join("data"),
            plugins_dir: dir.join("no-plugins"),
            demo_data: false,
            demo_plugins: false,
            admin_token: Some(TOKEN.into()),
            identity: Some(onething_host::config::IdentityConfig {
                issuer: onething_host::identity::DEV_ISSUER.into(),
                public_key: onething_host::identity::dev_public_key_hex(),
                leeway_s: 60,
            }),
            ..Config::default()
        };
        Self::start_config(config).await
    }

    pub async fn start_config(config: Config) -> Host {
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&config.data_dir).unwrap());
        let server = Server::start_with(config.clone(), storage.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        assert!(
            server.plugin_errors().is_empty(),
            "{:?}",
            server.plugin_errors()
        );
        Host {
            api: Api::new(format!("http://{}", server.addr())),
            storage,
            server: Some(server),
            config,
        }
    }

    /// Stops and starts again on the same data dir.
    pub async fn restart(mut self) -> Host {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let config = self.config.clone();
        drop(self);
        Self::start_config(config).await
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        self.admin_as(Some(TOKEN), method, path, body).await
    }

    pub async fn admin_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .api
            .client
            .request(method, format!("{}{path}", self.api.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        into_json(request.send().await.unwrap()).await
    }

    pub async fn upload(&self, package: Vec<u8>, activate: bool) -> (StatusCode, Value) {
        let path = if activate {
            "/v1/admin/plugins?activate=true"
        } else {
            "/v1/admin/plugins"
        };
        self.admin(Method::POST, path, Some(package)).await
    }

    pub async fn trust(&self, key: &SigningKeyFile) {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/admin/keys",
                Some(key.public().to_toml().into_bytes()),
            )
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{body}"
        );
    }

    pub async fn grant(&self, department: &str, ceiling: Value) {
        let (status, body) = self
            .admin(
                Method::PUT,
                &format!("/v1/admin/grants/{department}"),
                Some(ceiling.to_string().into_bytes()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn plugin(&self, id: &str) -> Value {
        let (status, body) = self
            .admin(Method::GET, &format!("/v1/admin/plugins/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// The manifest and component of a built fixture, the manifest edited.
pub fn package_of(dir_id: &str, edit: impl Fn(String) -> String) -> Package {
    let dir = plugin_dir(dir_id);
    let manifest = std::fs::read_to_string(dir.join("onething.toml")).unwrap();
    let component = std::fs::read(dir.join("plugin.wasm")).unwrap();
    Package::new(edit(manifest), component).unwrap()
}

pub fn signed(dir_id: &str, key: &SigningKeyFile) -> Vec<u8> {
    signed_with(dir_id, key, |m| m)
}

pub fn signed_with(dir_id: &str, key: &SigningKeyFile, edit: impl Fn(String) -> String) -> Vec<u8> {
    let mut package = package_of(dir_id, edit);
    key.sign(&mut package);
    package.encode()
}
