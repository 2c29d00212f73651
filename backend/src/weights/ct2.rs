//! CTranslate2 `model.bin`: a header (format version, spec name and
//! revision), a table of variables (name, shape, dtype, bytes) and aliases.
//! float32, float16, bfloat16, int8 (with its `<name>_scale` per-row
//! scales), int16 and int32 variables are read as f32.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{format, io, RawTensor, WeightError, Weights};

const FORMAT: &str = "CTranslate2 model.bin";

/// CTranslate2's `DataType` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DataType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// Whether the file starts like a CTranslate2 model (the engine's sniff,
/// shared with the planner's weight sizing).
pub(super) fn looks_like(path: &Path) -> bool {
    flow_engine::memory::weights::is_ctranslate2(path)
}

struct Reader<'a> {
    inner: BufReader<File>,
    path: &'a Path,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, WeightError> {
        let mut buf = vec![0; n];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format(self.path, FORMAT, format!("truncated: {e}")))?;
        Ok(buf)
    }

    fn u8(&mut self) -> Result<u8, WeightError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WeightError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WeightError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A string: u16 length (with the trailing NUL), bytes.
    fn string(&mut self) -> Result<String, WeightError> {
        let len = self.u16()? as usize;
        let mut bytes = self.bytes(len)?;
        if bytes.last() == Some(&0) {
            bytes.pop();
        }
        String::from_utf8(bytes).map_err(|_| format(self.path, FORMAT, "a name is not UTF-8"))
    }
}

pub(super) fn read(path: &Path) -> Result<Weights, WeightError> {
    let file = File::open(path).map_err(io(path))?;
    let mut r = Reader {
        inner: BufReader::new(file),
        path,
    };
    let version = r.u32()?;
    if !(1..=10).contains(&version) {
        return Err(format(
            path,
            FORMAT,
            format!("unknown format version {version}"),
        ));
    }
    let mut weights = Weights {
        path: path.to_path_buf(),
        ..Default::default()
    };
    weights
        .metadata
        .insert("binary_version".into(), version.to_string());
    if version >= 2 {
        let spec = r.string()?;
        let revision = r.u32()?;
        weights.metadata.insert("spec".into(), spec);
        weights
            .metadata
            .insert("spec_revision".into(), revision.to_string());
    }
    let count = r.u32()?;
    let mut int8 = Vec::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32()? as usize);
        }
        let dtype = if version >= 4 {
            let id = r.u8()?;
            DataType::from_id(id).ok_or_else(|| {
                format(path, FORMAT, format!("`{name}` has unknown dtype id {id}"))
            })?
        } else {
            match r.u8()? {
                4 => DataType::F32,
                2 => DataType::I16,
                1 => DataType::I8,
                other => {
                    return Err(format(
                        path,
                        FORMAT,
                        format!("`{name}` has item size {other}"),
                    ))
                }
            }
        };
        let nbytes = r.u32()? as usize;
        let elements: usize = shape.iter().product();
        if elements * dtype.size() != nbytes {
            return Err(format(
                path,
                FORMAT,
                format!("`{name}`: {nbytes} bytes for {elements} {dtype:?} values"),
            ));
        }
        let bytes = r.bytes(nbytes)?;
        let data = decode(&bytes, dtype);
        if dtype == DataType::I8 {
            int8.push(name.clone());
        }
        weights.tensors.insert(name, RawTensor { shape, data });
    }
    if version >= 3 {
        if let Ok(aliases) = r.u32() {
            for _ in 0..aliases {
                let alias = r.string()?;
                let target = r.string()?;
                if let Some(t) = weights.tensors.get(&target).cloned() {
                    weights.tensors.insert(alias, t);
                }
            }
        }
    }
    for name in int8 {
        dequantize(&mut weights, &name);
    }
    Ok(weights)
}

fn decode(bytes: &[u8], dtype: DataType) -> Vec<f32> {
    match dtype {
        DataType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DataType::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DataType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DataType::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
        DataType::I16 => bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        DataType::I32 => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
    }
}

/// int8 weights were stored as `round(w * scale)` with one scale per row:
/// divide each row by its scale.
fn dequantize(weights: &mut Weights, name: &str) {
    let Some(scale) = weights.tensors.get(&format!("{name}_scale")).cloned() else {
        return;
    };
    let Some(t) = weights.tensors.get_mut(name) else {
        return;
    };
    let rows = scale.data.len().max(1);
    let per_row = t.data.len() / rows;
    if per_row == 0 {
        return;
    }
    for (row, chunk) in t.data.chunks_mut(per_row).enumerate() {
        let s = scale.data.get(row).copied().unwrap_or(1.0);
        if s != 0.0 {
            for v in chunk {
                *v /= s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    #[test]
    fn reads_float16_and_dequantizes_int8() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "TestSpec");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        // a: float16 [2]
        string(&mut b, "a");
        b.push(1);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(-2.0).to_le_bytes());
        // w: int8 [2, 2] with per-row scales
        string(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(1);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[10u8, 246u8, 127, 0]);
        string(&mut b, "w_scale");
        b.push(1);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&10f32.to_le_bytes());
        b.extend_from_slice(&127f32.to_le_bytes());
        // one alias
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "b");
        string(&mut b, "a");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        std::fs::write(&path, b).unwrap();
        assert!(looks_like(&path));
        let w = read(&path).unwrap();
        assert_eq!(w.metadata["spec"], "TestSpec");
        assert_eq!(w.raw("a").unwrap().data, vec![1.5, -2.0]);
        assert_eq!(w.raw("b").unwrap().data, vec![1.5, -2.0]);
        assert_eq!(w.raw("w").unwrap().data, vec![1.0, -1.0, 1.0, 0.0]);
    }

    #[test]
    fn a_truncated_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "Spec");
        std::fs::write(&path, b).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
