//! Atomic file writes: the bytes go to a temporary file beside the target (same
//! directory, so same file system), which is flushed to disk and then renamed
//! over the target. A reader sees either the old file or the complete new one;
//! on any error the temporary file is removed and the target is left as it was.
//!
//! Temporary files are named `.NAME.tmp-PID-N` (hidden, beside `NAME`), backups
//! made by [`write_atomic_all`] `.NAME.bak-PID-N`; `N` is a per-process counter.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: temporary file beside it, write, fsync,
/// rename over `path`.
///
/// On any error ([`Error::Io`] naming `path`, the message saying which step
/// failed) the temporary file is removed and an existing file at `path` is left
/// untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes (through a buffer), so that large outputs
/// need no copy of their bytes in memory.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let temp = create_temp(path, write)?;
    fs::rename(&temp.path, path)
        .map_err(|e| io_error(path, format!("cannot rename the temporary file {} over it", temp.path.display()), e))?;
    temp.disarm();
    sync_dir(path);
    Ok(())
}

/// Writes several files, all or none.
///
/// 1. Every file's bytes are written to its own temporary file beside its target
///    and flushed to disk. A target that is an existing directory is an error
///    here. If any of this fails, every temporary file is removed, no target is
///    touched, and the error is returned.
/// 2. The temporary files are renamed over their targets **in the order given**.
///    Before that, each existing target gets a hard-link backup. If rename `k`
///    fails (rare: the temporary file is already in the target's directory),
///    targets `0..k` are rolled back in reverse order: restored from their backup,
///    or removed if they did not exist before. Only where a backup could not be
///    made (a file system without hard links) does an earlier target keep its new
///    content; the error message then says which.
///
/// The paths should be distinct.
pub fn write_atomic_all(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    write_all_with(files, |from, to| fs::rename(from, to))
}

/// [`write_atomic_all`] with the rename step as a parameter (tests inject failures).
fn write_all_with(files: &[(PathBuf, Vec<u8>)], mut rename: impl FnMut(&Path, &Path) -> io::Result<()>) -> Result<()> {
    // Phase 1: all temporary files, or none (dropping `temps` removes them).
    let mut temps = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        if path.is_dir() {
            return Err(io_error(
                path,
                "cannot write the file: a directory of that name exists".into(),
                io::Error::from(io::ErrorKind::IsADirectory),
            ));
        }
        temps.push(create_temp(path, |w| w.write_all(bytes))?);
    }

    // Phase 2: backups of existing targets, then the renames in order.
    let mut backups: Vec<(bool, Option<Temp>)> = Vec::with_capacity(files.len());
    for (path, _) in files {
        let existed = fs::symlink_metadata(path).is_ok();
        let backup = if existed { make_backup(path) } else { None };
        backups.push((existed, backup));
    }
    for (k, ((path, _), temp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = rename(&temp.path, path) {
            let mut not_restored = Vec::new();
            for j in (0..k).rev() {
                let target = &files[j].0;
                let restored = match &backups[j] {
                    (_, Some(b)) => rename(&b.path, target).is_ok(),
                    (false, None) => fs::remove_file(target).is_ok(),
                    (true, None) => false,
                };
                if !restored {
                    not_restored.push(target.display().to_string());
                }
            }
            let mut what = format!("cannot rename the temporary file {} over it", temp.path.display());
            if k > 0 {
                if not_restored.is_empty() {
                    what.push_str(" (the files already written were rolled back)");
                } else {
                    what.push_str(&format!(
                        " (could not roll back, and so left with their new content: {})",
                        not_restored.join(", ")
                    ));
                }
            }
            // Dropping `temps` and `backups` removes what is left of them.
            return Err(io_error(path, what, e));
        }
    }
    for temp in temps {
        temp.disarm();
    }
    drop(backups); // removes the backups
    for (path, _) in files {
        sync_dir(path);
    }
    Ok(())
}

/// Directories made for output files, removed again (deepest first, only while empty)
/// when dropped before [`CreatedDirs::keep`]: a run that fails after making them
/// leaves nothing behind.
#[must_use = "dropping it removes the directories it made"]
pub struct CreatedDirs {
    made: Vec<PathBuf>,
}

impl CreatedDirs {
    /// The writes succeeded: keep the directories.
    pub fn keep(mut self) {
        self.made.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for dir in self.made.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Creates `dir` and any missing parents, remembering which of them did not exist.
pub fn create_dirs(dir: &Path) -> Result<CreatedDirs> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err()) {
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    missing.reverse();
    let mut made = CreatedDirs { made: Vec::with_capacity(missing.len()) };
    for d in missing {
        match fs::create_dir(&d) {
            Ok(()) => made.made.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(io_error(dir, "cannot create the directory".into(), e)),
        }
    }
    if !dir.is_dir() {
        return Err(io_error(
            dir,
            "cannot create the directory: a file of that name exists".into(),
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    Ok(made)
}

/// A temporary file that is removed when dropped, unless disarmed.
struct Temp {
    path: PathBuf,
}

impl Temp {
    /// The file has been renamed into place: nothing to remove.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The directory and the file name of a target.
fn split(path: &Path) -> Result<(PathBuf, OsString)> {
    let name = path.file_name().ok_or_else(|| {
        io_error(
            path,
            "cannot write the file".into(),
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// `DIR/.NAME.KIND-PID-N`.
fn sibling(dir: &Path, name: &OsString, kind: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut file = OsString::from(".");
    file.push(name);
    file.push(format!(".{kind}-{}-{n}", std::process::id()));
    dir.join(file)
}

/// Creates a fresh temporary file beside `target`, writes to it what `write` writes
/// and syncs it. On error the temporary file is removed.
fn create_temp(target: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<Temp> {
    let (dir, name) = split(target)?;
    let (file, temp) = loop {
        let path = sibling(&dir, &name, "tmp");
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => break (f, Temp { path }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(target, format!("cannot create a temporary file in {}", dir.display()), e)),
        }
    };
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    write(&mut out)
        .and_then(|()| out.into_inner().map_err(io::IntoInnerError::into_error))
        .and_then(|file: File| file.sync_all())
        .map_err(|e| io_error(target, format!("cannot write the temporary file {}", temp.path.display()), e))?;
    Ok(temp)
}

/// A hard link to an existing target, to restore it on rollback; `None` when
/// the file system cannot make one.
fn make_backup(target: &Path) -> Option<Temp> {
    let (dir, name) = split(target).ok()?;
    for _ in 0..16 {
        let path = sibling(&dir, &name, "bak");
        match fs::hard_link(target, &path) {
            Ok(()) => return Some(Temp { path }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Best effort: flush the directory entry of a renamed file (Unix only).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Ok((dir, _)) = split(path) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn io_error(path: &Path, what: String, e: io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source: io::Error::new(e.kind(), format!("{what}: {e}")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::tests::TmpDir;

    #[test]
    fn failed_rename_rolls_back_earlier_targets() {
        let dir = TmpDir::new("rollback");
        let existing = dir.file("existing.npy");
        let fresh = dir.file("fresh.npy");
        let third = dir.file("third.npy");
        std::fs::write(&existing, b"old").unwrap();
        let files = vec![
            (existing.clone(), b"new 1".to_vec()),
            (fresh.clone(), b"new 2".to_vec()),
            (third.clone(), b"new 3".to_vec()),
        ];
        // The third rename fails.
        let mut calls = 0;
        let e = write_all_with(&files, |from, to| {
            calls += 1;
            if calls == 3 {
                Err(io::Error::other("injected failure"))
            } else {
                fs::rename(from, to)
            }
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("injected failure") && msg.contains("rolled back"), "{msg}");
        assert!(matches!(&e, Error::Io { path, .. } if *path == third));
        assert_eq!(std::fs::read(&existing).unwrap(), b"old");
        assert!(!fresh.exists());
        assert!(!third.exists());
        assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
    }

    #[test]
    fn temp_names_are_hidden_siblings() {
        let (dir, name) = split(Path::new("out.npy")).unwrap();
        assert_eq!(dir, PathBuf::from("."));
        let a = sibling(&dir, &name, "tmp");
        let b = sibling(&dir, &name, "tmp");
        assert_ne!(a, b);
        let s = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(s.starts_with(&format!(".out.npy.tmp-{}-", std::process::id())), "{s}");
        assert!(matches!(split(Path::new("/")), Err(Error::Io { .. })));
    }
}
