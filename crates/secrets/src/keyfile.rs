//! Key files: one base64 key per line, newest first, created with a fresh key (mode 0600)
//! when missing.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The base64 keys in the file at `path`, one per line, newest first; a missing file is
/// created (mode 0600) with one fresh random 32-byte key, for `purpose`.
pub fn key_file(path: &Path, purpose: &str) -> std::io::Result<Vec<String>> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let key = crate::random_bytes::<32>();
        write_private(path, STANDARD.encode(key).as_bytes())?;
        tracing::info!(path = %path.display(), "generated a new key for {purpose}; back it up");
    }
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()
}
