//! A real S3-compatible server (moto, installed by `make tools` into `.tools/s3`) on a free
//! port, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3Server {
    child: Child,
    port: u16,
}

/// The credentials the tests give (any are accepted).
pub const ACCESS_KEY_ID: &str = "jsc-test-access-key";
pub const SECRET_ACCESS_KEY: &str = "jsc-test-secret-access-key-do-not-log";

impl S3Server {
    pub fn start() -> Self {
        let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/s3/bin/moto_server");
        let bin = std::env::var_os("JSC_TEST_MOTO")
            .map(std::path::PathBuf::from)
            .unwrap_or(default);
        assert!(
            bin.is_file(),
            "moto_server not found at {}: run `make tools`",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) {
        let res = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint()))
            .send()
            .await
            .expect("PUT bucket");
        assert!(res.status().is_success(), "bucket {name}: {}", res.status());
    }

    /// The object keys under `prefix` (ListObjectsV2), sorted.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint()))
            .send()
            .await
            .expect("list objects")
            .text()
            .await
            .unwrap();
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    /// The options that point the console's object store here.
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            ("aws_endpoint".into(), self.endpoint()),
            ("aws_allow_http".into(), "true".into()),
            ("aws_region".into(), "us-east-1".into()),
            ("aws_access_key_id".into(), ACCESS_KEY_ID.into()),
            ("aws_secret_access_key".into(), SECRET_ACCESS_KEY.into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
