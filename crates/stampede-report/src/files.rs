//! The results folder's machine-readable files.
//!
//! Every write goes to a temporary file first and is renamed into place, so a reader (or a
//! crash in the middle) never sees half a file: a partial run leaves the previous complete
//! version behind.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

use stampede_core::measure::{InstanceRecord, NativeStateRecord, RequestRecord};
use stampede_core::results::Results;

use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a stampede results file: {reason}")]
    Parse { path: PathBuf, reason: String },
}

pub(crate) fn write_atomic(path: &Path, f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> Result<(), ReportError> {
    let err = |source| ReportError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    let written = f(&mut w).and_then(|()| w.flush());
    drop(w);
    // A failed write (disk full) leaves the previous complete file, and no stray temp file.
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

pub fn write_results_json(dir: &Path, r: &Results) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::RESULTS_JSON);
    write_atomic(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, r).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    Ok(path)
}

/// The fallback when [`write_results_json`] failed (disk full: no room for its temporary copy):
/// results.json overwritten in place, compact, reusing the blocks it frees — so the file never
/// stays saying `running` after the run ended. If even that fails, it is removed: no file is
/// better than a wrong one, and the error says why.
pub fn overwrite_results_json(dir: &Path, r: &Results) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::RESULTS_JSON);
    let _ = std::fs::remove_file(path.with_extension("tmp"));
    let written = std::fs::File::create(&path).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut w, r).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    if let Err(source) = written {
        let _ = std::fs::remove_file(&path);
        return Err(ReportError::Write { path, source });
    }
    Ok(path)
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T], header_of_empty: &T) -> Result<(), ReportError> {
    write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        if rows.is_empty() {
            // Keep the header even with no rows, so the columns are always there to load.
            let mut tmp = csv::Writer::from_writer(Vec::new());
            tmp.serialize(header_of_empty).map_err(std::io::Error::other)?;
            let bytes = tmp.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
            let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
            c.write_record(header.split(|b| *b == b',')).map_err(std::io::Error::other)?;
        }
        for r in rows {
            c.serialize(r).map_err(std::io::Error::other)?;
        }
        c.flush()
    })
}

/// One row per scenario and action instance, every timestamp (µs since run start).
pub fn write_instances_csv(dir: &Path, rows: &[InstanceRecord]) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::INSTANCES_CSV);
    write_csv(&path, rows, &InstanceRecord::default())?;
    Ok(path)
}

/// One row per native state an instance reached (long format: instance, state, time, source).
pub fn write_native_states_csv(dir: &Path, rows: &[NativeStateRecord]) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::NATIVE_STATES_CSV);
    let empty = NativeStateRecord { instance_id: String::new(), state: String::new(), time_us: 0, source: String::new() };
    write_csv(&path, rows, &empty)?;
    Ok(path)
}

/// native_states.csv of a results folder; empty when the folder has none (older runs).
pub fn load_native_states(dir: &Path) -> Result<Vec<NativeStateRecord>, ReportError> {
    let path = dir.join(names::NATIVE_STATES_CSV);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| ReportError::Parse { path: path.clone(), reason: e.to_string() })?;
    rdr.deserialize().collect::<Result<Vec<_>, _>>().map_err(|e| ReportError::Parse { path, reason: e.to_string() })
}

/// One row per request (only with raw output).
pub fn write_requests_csv(dir: &Path, rows: &[RequestRecord]) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::REQUESTS_CSV);
    write_csv(&path, rows, &RequestRecord::default())?;
    Ok(path)
}

/// Read a results folder's `results.json` (or the file itself).
pub fn load_results(path: &Path) -> Result<Results, ReportError> {
    let file = if path.is_dir() { path.join(names::RESULTS_JSON) } else { path.to_owned() };
    let text = std::fs::read_to_string(&file).map_err(|source| ReportError::Read { path: file.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse { path: file, reason: e.to_string() })
}

/// Read a results folder's `instances.csv`.
pub fn load_instances(dir: &Path) -> Result<Vec<InstanceRecord>, ReportError> {
    let path = dir.join(names::INSTANCES_CSV);
    let mut r = csv::Reader::from_path(&path).map_err(|e| ReportError::Read { path: path.clone(), source: std::io::Error::other(e) })?;
    r.deserialize().collect::<Result<_, _>>().map_err(|e| ReportError::Parse { path, reason: e.to_string() })
}
