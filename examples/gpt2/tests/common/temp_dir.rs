//! A fresh directory under the system's temporary directory, removed when
//! dropped. Included by the tests that write model files with
//! `#[path = "common/temp_dir.rs"] mod temp_dir;`.

use std::path::PathBuf;

/// The directory, `gpt2-test-<pid>-<name>`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gpt2-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
