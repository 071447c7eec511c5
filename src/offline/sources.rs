//! The manifests the offline commands read: files, directories and standard input, each object
//! with the file it came from.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cluster::file::read_documents;
use crate::cluster::LoadError;

/// One object read from a manifest, with where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file name as given (`-` for standard input).
    pub file: String,
    pub object: Value,
}

/// Reads every object from files, directories (their `.yaml`, `.yml` and `.json` files, in name
/// order, recursively) and `-` (standard input), in the order given.
pub fn load_sources(paths: &[PathBuf]) -> Result<Vec<Source>, LoadError> {
    let mut sources = Vec::new();
    for path in paths {
        for file in expand(path)? {
            let objects = read_documents(&file)?;
            let name = file.display().to_string();
            sources.extend(objects.into_iter().map(|object| Source {
                file: name.clone(),
                object,
            }));
        }
    }
    Ok(sources)
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if path.as_os_str() == "-" || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    let mut files = Vec::new();
    for child in children {
        if child.is_dir() {
            files.extend(expand(&child)?);
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(child);
        }
    }
    Ok(files)
}
