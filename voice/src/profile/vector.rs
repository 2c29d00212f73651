//! Small vector helpers shared by profiles, identification and clustering.

/// The cosine of the angle between `a` and `b` (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// Scales `v` to unit length in place; false (and `v` unchanged) when it is
/// zero or not finite.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    true
}

/// The L2-normalised mean of `vectors`: the direction they share. `None`
/// when there are none, or they cancel out.
pub fn mean_direction<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut sum: Vec<f64> = Vec::new();
    for v in vectors {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s += f64::from(*x);
        }
    }
    let mut mean: Vec<f32> = sum.into_iter().map(|x| x as f32).collect();
    (!mean.is_empty() && normalize(&mut mean)).then_some(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn mean_direction_is_unit_length_and_none_when_empty_or_cancelling() {
        let m = mean_direction([[3.0f32, 0.0].as_slice(), [0.0, 3.0].as_slice()]).unwrap();
        assert!((m[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((m[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(mean_direction(std::iter::empty::<&[f32]>()).is_none());
        assert!(mean_direction([[1.0f32].as_slice(), [-1.0].as_slice()]).is_none());
    }
}
