//! Reading the weights (the graph's float initializers) out of an ONNX
//! file, enough for silero-vad's `silero_vad_16k_op15.onnx`: a minimal
//! protobuf reader for `ModelProto.graph.initializer`, no graph execution.
//!
//! ONNX names are mapped onto the safetensors names the network is built
//! from (`model.encoder.0.reparam_conv.weight` → `conv1.weight`, …).

use std::path::Path;

use flow_backend::{RawTensor, WeightError, Weights};

/// ONNX initializer name → the name [`super::model::SileroVad`] reads.
const NAMES: [(&str, &str); 15] = [
    ("model.stft.forward_basis_buffer", "stft_conv.weight"),
    ("model.encoder.0.reparam_conv.weight", "conv1.weight"),
    ("model.encoder.0.reparam_conv.bias", "conv1.bias"),
    ("model.encoder.1.reparam_conv.weight", "conv2.weight"),
    ("model.encoder.1.reparam_conv.bias", "conv2.bias"),
    ("model.encoder.2.reparam_conv.weight", "conv3.weight"),
    ("model.encoder.2.reparam_conv.bias", "conv3.bias"),
    ("model.encoder.3.reparam_conv.weight", "conv4.weight"),
    ("model.encoder.3.reparam_conv.bias", "conv4.bias"),
    ("model.decoder.rnn.weight_ih", "lstm_cell.weight_ih"),
    ("model.decoder.rnn.weight_hh", "lstm_cell.weight_hh"),
    ("model.decoder.rnn.bias_ih", "lstm_cell.bias_ih"),
    ("model.decoder.rnn.bias_hh", "lstm_cell.bias_hh"),
    ("model.decoder.decoder.2.weight", "final_conv.weight"),
    ("model.decoder.decoder.2.bias", "final_conv.bias"),
];

/// The float32 initializers of the ONNX model at `path`, renamed to the
/// safetensors names (others keep their ONNX names).
///
/// # Errors
/// [`WeightError::Io`] or [`WeightError::Format`] (not protobuf, a tensor
/// stored outside the file or in another type than float32).
pub fn read(path: &Path) -> Result<Weights, WeightError> {
    let bytes = std::fs::read(path).map_err(|source| WeightError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| WeightError::Format {
        path: path.to_path_buf(),
        format: "ONNX",
        reason,
    };
    let mut weights = Weights {
        path: path.to_path_buf(),
        ..Default::default()
    };
    // ModelProto field 7: graph; GraphProto field 5: initializer.
    for (field, graph) in fields(&bytes).map_err(bad)? {
        let (7, Value::Bytes(graph)) = (field, graph) else {
            continue;
        };
        for (field, tensor) in fields(graph).map_err(bad)? {
            let (5, Value::Bytes(tensor)) = (field, tensor) else {
                continue;
            };
            let (name, raw) = initializer(tensor).map_err(bad)?;
            let name = NAMES
                .iter()
                .find(|(onnx, _)| *onnx == name)
                .map_or(name, |(_, ours)| ours.to_string());
            weights.tensors.insert(name, raw);
        }
    }
    if weights.tensors.is_empty() {
        return Err(bad("the graph has no initializers (weights)".into()));
    }
    Ok(weights)
}

/// A protobuf field's value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// The fields of one protobuf message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Value<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                pos += if key & 7 == 1 { 8 } else { 4 };
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos.checked_add(len).filter(|&e| e <= buf.len());
                let end = end.ok_or("a field runs past the end of the file")?;
                let bytes = &buf[pos..end];
                pos = end;
                Value::Bytes(bytes)
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        };
        out.push((key >> 3, value));
    }
    if pos > buf.len() {
        return Err("truncated message".into());
    }
    Ok(out)
}

/// A `TensorProto`: its name and float32 values.
fn initializer(buf: &[u8]) -> Result<(String, RawTensor), String> {
    let (mut name, mut shape, mut dtype) = (String::new(), Vec::new(), 0u64);
    let (mut raw, mut floats): (Option<&[u8]>, Vec<f32>) = (None, Vec::new());
    for (field, value) in fields(buf)? {
        match (field, value) {
            (1, Value::Varint(d)) => shape.push(d as usize),
            (1, Value::Bytes(packed)) => {
                let mut pos = 0;
                while pos < packed.len() {
                    shape.push(varint(packed, &mut pos)? as usize);
                }
            }
            (2, Value::Varint(t)) => dtype = t,
            (4, Value::Bytes(packed)) => floats.extend(
                packed
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            (8, Value::Bytes(n)) => name = String::from_utf8_lossy(n).into_owned(),
            (9, Value::Bytes(r)) => raw = Some(r),
            (14, Value::Varint(1)) => {
                return Err(format!("tensor `{name}` is stored in an external file"))
            }
            _ => {}
        }
    }
    if dtype != 1 {
        return Err(format!(
            "tensor `{name}` has ONNX data type {dtype}; only float32 (1) is read"
        ));
    }
    let data: Vec<f32> = match raw {
        Some(r) => r
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        None => floats,
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!(
            "tensor `{name}` has {} values for shape {shape:?}",
            data.len()
        ));
    }
    Ok((name, RawTensor { shape, data }))
}
