//! Finding a model directory: an explicit path, the Hugging Face cache, or
//! the small model bundled with this example.
//!
//! A model directory holds `config.json` and `model.safetensors` (and
//! optionally `tokenizer.json` or `vocab.json` + `merges.txt`).
//!
//! The search order:
//!
//! 1. the directory given (`--model DIR`); a Hugging Face cache entry
//!    (`models--…` with `snapshots/`) is accepted too and resolved to its
//!    snapshot;
//! 2. GPT-2 in the Hugging Face cache: the hub directory is `$HF_HUB_CACHE`,
//!    else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//!    `~/.cache/huggingface/hub`; in it `models--openai-community--gpt2`,
//!    then `models--gpt2`, at the snapshot `refs/main` names, else the
//!    newest complete snapshot;
//! 3. the bundled model, `examples/gpt2/model/`.

use std::path::{Path, PathBuf};

use crate::error::{Gpt2Error, Result};

/// The cache entries of GPT-2 (124M) on the Hugging Face hub, in the order
/// they are tried.
pub const HUB_REPOS: [&str; 2] = ["models--openai-community--gpt2", "models--gpt2"];

/// Where the found model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The directory given on the command line.
    Explicit,
    /// A snapshot in the Hugging Face cache.
    HuggingFaceCache,
    /// The small model bundled with this example.
    Bundled,
}

/// A model directory and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The directory with `config.json` and `model.safetensors`.
    pub dir: PathBuf,
    /// How it was found.
    pub source: Source,
}

impl Located {
    /// A one-line note for the user: which model runs and, for the bundled
    /// one, how to run the real GPT-2. `None` for an explicit directory.
    pub fn note(&self) -> Option<String> {
        match self.source {
            Source::Explicit => None,
            Source::HuggingFaceCache => Some(format!(
                "note: running GPT-2 from the Hugging Face cache, {}",
                self.dir.display()
            )),
            Source::Bundled => Some(format!(
                "note: running the small bundled model ({}), not GPT-2 itself; for the real one, \
                 download openai-community/gpt2 (config.json + model.safetensors) and pass \
                 --model DIR",
                self.dir.display()
            )),
        }
    }
}

/// The places searched, read from the environment by
/// [`SearchPaths::from_env`] or set by hand (tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPaths {
    /// `$HF_HUB_CACHE`: the hub cache itself.
    pub hf_hub_cache: Option<PathBuf>,
    /// `$HF_HOME`: the hub cache is its `hub/`.
    pub hf_home: Option<PathBuf>,
    /// `$XDG_CACHE_HOME`: the hub cache is its `huggingface/hub/`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `$HOME`: the hub cache is its `.cache/huggingface/hub/`.
    pub home: Option<PathBuf>,
    /// The bundled model's directory.
    pub bundled: PathBuf,
}

impl SearchPaths {
    /// The environment's paths, and the bundled model next to this crate's
    /// manifest.
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            hf_hub_cache: var("HF_HUB_CACHE"),
            hf_home: var("HF_HOME"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            home: var("HOME"),
            bundled: bundled_dir(),
        }
    }

    /// The Hugging Face hub cache these paths point at.
    pub fn hub_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.hf_hub_cache {
            return Some(dir.clone());
        }
        if let Some(dir) = &self.hf_home {
            return Some(dir.join("hub"));
        }
        if let Some(dir) = &self.xdg_cache_home {
            return Some(dir.join("huggingface/hub"));
        }
        self.home.as_ref().map(|h| h.join(".cache/huggingface/hub"))
    }
}

/// The bundled model's directory, `examples/gpt2/model/`.
pub fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model")
}

/// Whether `dir` holds `config.json` and `model.safetensors`.
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file() && dir.join("model.safetensors").is_file()
}

/// Finds the model to run (see the [module docs](self) for the order).
///
/// # Errors
///
/// [`Gpt2Error::ModelNotFound`]: an explicit directory that is not a model
/// directory (the message says which file is missing), or no model at all
/// (the message lists the places searched).
pub fn locate(explicit: Option<&Path>, paths: &SearchPaths) -> Result<Located> {
    if let Some(dir) = explicit {
        let dir = if dir.join("snapshots").is_dir() {
            snapshot(dir).unwrap_or_else(|| dir.to_path_buf())
        } else {
            dir.to_path_buf()
        };
        check_model_dir(&dir)?;
        return Ok(Located { dir, source: Source::Explicit });
    }
    let hub = paths.hub_dir();
    if let Some(hub) = &hub {
        for repo in HUB_REPOS {
            if let Some(dir) = snapshot(&hub.join(repo)) {
                return Ok(Located { dir, source: Source::HuggingFaceCache });
            }
        }
    }
    if is_model_dir(&paths.bundled) {
        return Ok(Located { dir: paths.bundled.clone(), source: Source::Bundled });
    }
    let searched = hub.map_or_else(
        || {
            "no Hugging Face cache (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME are unset)"
                .into()
        },
        |h| format!("{}/{{{}}}", h.display(), HUB_REPOS.join(",")),
    );
    Err(Gpt2Error::ModelNotFound(format!(
        "no model found: pass --model DIR (a directory with config.json and model.safetensors, \
         such as a download of openai-community/gpt2); searched {searched} and the bundled model \
         at {}, which is missing from this checkout",
        paths.bundled.display()
    )))
}

/// Checks an explicit directory, naming what is missing.
fn check_model_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Gpt2Error::ModelNotFound(format!(
            "--model {}: no such directory",
            dir.display()
        )));
    }
    let missing: Vec<&str> = ["config.json", "model.safetensors"]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut message = format!("--model {}: {} missing", dir.display(), missing.join(" and "));
    if missing.contains(&"model.safetensors") {
        if dir.join("model.safetensors.index.json").is_file() {
            message.push_str(" (sharded checkpoints are not supported; GPT-2 fits in one file)");
        } else if dir.join("pytorch_model.bin").is_file() {
            message.push_str(" (only safetensors weights are read, not pytorch_model.bin)");
        }
    }
    Err(Gpt2Error::ModelNotFound(message))
}

/// The complete snapshot of a cache entry: the one `refs/main` names, else
/// the most recently modified complete one.
fn snapshot(repo: &Path) -> Option<PathBuf> {
    let snapshots = repo.join("snapshots");
    if let Ok(main) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(main.trim());
        if !main.trim().is_empty() && is_model_dir(&dir) {
            return Some(dir);
        }
    }
    let mut complete: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let modified = std::fs::metadata(&dir).and_then(|m| m.modified()).ok()?;
            is_model_dir(&dir).then_some((modified, dir))
        })
        .collect();
    complete.sort();
    complete.pop().map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("gpt2-lookup-{}-{name}", std::process::id()));
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

    fn model_at(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join("model.safetensors"), "").unwrap();
    }

    fn paths(root: &Path) -> SearchPaths {
        SearchPaths {
            home: Some(root.join("home")),
            bundled: root.join("bundled"),
            ..Default::default()
        }
    }

    #[test]
    fn hub_dir_follows_the_environment_precedence() {
        let mut p = SearchPaths { home: Some("/h".into()), ..Default::default() };
        assert_eq!(p.hub_dir(), Some("/h/.cache/huggingface/hub".into()));
        p.xdg_cache_home = Some("/x".into());
        assert_eq!(p.hub_dir(), Some("/x/huggingface/hub".into()));
        p.hf_home = Some("/hf".into());
        assert_eq!(p.hub_dir(), Some("/hf/hub".into()));
        p.hf_hub_cache = Some("/cache".into());
        assert_eq!(p.hub_dir(), Some("/cache".into()));
        assert_eq!(SearchPaths::default().hub_dir(), None);
    }

    #[test]
    fn explicit_then_cache_then_bundled() {
        let root = TempDir::new("order");
        let p = paths(&root.0);
        assert!(
            matches!(locate(None, &p), Err(Gpt2Error::ModelNotFound(m)) if m.contains("--model DIR"))
        );

        model_at(&p.bundled);
        let found = locate(None, &p).unwrap();
        assert_eq!(found, Located { dir: p.bundled.clone(), source: Source::Bundled });
        assert!(found.note().unwrap().contains("--model DIR"));

        // An incomplete snapshot is skipped; the older entry name is found.
        let hub = root.0.join("home/.cache/huggingface/hub");
        std::fs::create_dir_all(hub.join("models--openai-community--gpt2/snapshots/partial"))
            .unwrap();
        let old = hub.join("models--gpt2/snapshots/abc");
        model_at(&old);
        assert_eq!(
            locate(None, &p).unwrap(),
            Located { dir: old, source: Source::HuggingFaceCache }
        );

        // refs/main picks the snapshot.
        let repo = hub.join("models--openai-community--gpt2");
        model_at(&repo.join("snapshots/111"));
        model_at(&repo.join("snapshots/222"));
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "111\n").unwrap();
        let found = locate(None, &p).unwrap();
        assert_eq!(found.dir, repo.join("snapshots/111"));
        assert!(found.note().unwrap().contains("Hugging Face cache"));

        // An explicit directory wins, and a cache entry resolves to its snapshot.
        let mine = root.0.join("mine");
        model_at(&mine);
        assert_eq!(
            locate(Some(&mine), &p).unwrap(),
            Located { dir: mine, source: Source::Explicit }
        );
        assert_eq!(locate(Some(&repo), &p).unwrap().dir, repo.join("snapshots/111"));
    }

    #[test]
    fn an_explicit_directory_names_what_is_missing() {
        let root = TempDir::new("missing");
        let p = paths(&root.0);
        let err = |dir: &Path| match locate(Some(dir), &p) {
            Err(Gpt2Error::ModelNotFound(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(&root.0.join("nowhere")).contains("no such directory"));
        std::fs::write(root.0.join("config.json"), "{}").unwrap();
        let m = err(&root.0);
        assert!(m.contains("model.safetensors missing") && !m.contains("config.json"), "{m}");
        std::fs::write(root.0.join("pytorch_model.bin"), "").unwrap();
        assert!(err(&root.0).contains("pytorch_model.bin"));
        std::fs::remove_file(root.0.join("config.json")).unwrap();
        assert!(err(&root.0).contains("config.json and model.safetensors missing"));
    }
}
