//! Element-wise kernels that run in place, one pass over the data, written
//! so the compiler vectorises them: no library calls, no branches in the
//! inner loops, reductions over eight lanes. Each public function picks an
//! AVX2 + FMA build of itself at run time where the CPU has them.

/// Defines `$name` twice, for the baseline target and with AVX2 + FMA
/// enabled, and calls the best one the CPU supports.
macro_rules! multiversion {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx2` enables.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

const LANES: usize = 8;
const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer

/// `eˣ` to within 2 ulp for `x` in `[-87, 88]` (clamped outside), without a
/// library call (Cephes' polynomial after a Cody–Waite reduction).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    // ln 2 split in two: 0.693_359_4 is exactly 355/512 as an f32.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits((k.wrapping_add(127) as u32) << 23)
}

/// The error function to within 4e-7: a rational approximation on
/// `[-4, 4]` (±1 outside, where f32 cannot tell).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_600_1e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_474e-2;
    x * p / q
}

#[inline(always)]
fn gelu1(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

multiversion! {
    /// GELU with the exact (erf) form, in place.
    pub fn gelu(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = gelu1(*v));
    }
}

multiversion! {
    /// ReLU in place.
    pub fn relu(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, v)| *a += v);
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &v)| *a = a.max(v));
    }
    acc.iter().fold(tail, |a, &v| a.max(v))
}

multiversion! {
    /// Layer normalisation of every `gamma.len()`-wide row of `x`, in place:
    /// `(x − mean) / √(var + eps) · gamma + beta`.
    pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        for row in x.chunks_exact_mut(width) {
            let mean = sum(row) / width as f32;
            row.iter_mut().for_each(|v| *v -= mean);
            let mut acc = [0.0f32; LANES];
            let chunks = row.chunks_exact(LANES);
            let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
            for c in chunks {
                acc.iter_mut().zip(c).for_each(|(a, v)| *a += v * v);
            }
            let var = (acc.iter().sum::<f32>() + tail) / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            row.iter_mut()
                .zip(gamma.iter().zip(beta))
                .for_each(|(v, (g, b))| *v = *v * inv * g + b);
        }
    }
}

multiversion! {
    /// Softmax of every `width`-wide row of `x`, in place.
    pub fn softmax(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let top = max(row);
            row.iter_mut().for_each(|v| *v = exp(*v - top));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

multiversion! {
    /// Softmax down every column of the row-major `rows × cols` matrix
    /// `x`, in place (each column sums to one). `scratch` holds `2 · cols`
    /// values.
    pub fn softmax_columns(x: &mut [f32], cols: usize, scratch: &mut Vec<f32>) {
        scratch.clear();
        scratch.resize(2 * cols, 0.0);
        let (top, total) = scratch.split_at_mut(cols);
        top.fill(f32::NEG_INFINITY);
        for row in x.chunks_exact(cols) {
            top.iter_mut().zip(row).for_each(|(t, &v)| *t = t.max(v));
        }
        for row in x.chunks_exact_mut(cols) {
            row.iter_mut()
                .zip(top.iter())
                .zip(total.iter_mut())
                .for_each(|((v, t), s)| {
                    *v = exp(*v - t);
                    *s += *v;
                });
        }
        total.iter_mut().for_each(|s| *s = 1.0 / *s);
        for row in x.chunks_exact_mut(cols) {
            row.iter_mut().zip(total.iter()).for_each(|(v, s)| *v *= s);
        }
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

multiversion! {
    /// One query attending over `scores.len()` keys:
    /// `out = softmax(K · q) · V`, with `q` (`dh` values) already scaled,
    /// `keys` and `values` `scores.len() × dh` row-major, `out` `dh` values.
    /// `scores` is the work space for the weights.
    pub fn attend_one(q: &[f32], keys: &[f32], values: &[f32], scores: &mut [f32], out: &mut [f32]) {
        let dh = q.len();
        for (s, k) in scores.iter_mut().zip(keys.chunks_exact(dh)) {
            *s = dot(k, q);
        }
        let top = max(scores);
        scores.iter_mut().for_each(|v| *v = exp(*v - top));
        let inv = 1.0 / sum(scores);
        out.fill(0.0);
        for (&p, v) in scores.iter().zip(values.chunks_exact(dh)) {
            let p = p * inv;
            out.iter_mut().zip(v).for_each(|(o, &x)| *o += p * x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-12_000..=12_000).map(|i| i as f32 * 1e-3)
    }

    #[test]
    fn exp_is_accurate() {
        for x in grid().map(|x| x * 7.0) {
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}): {} vs {want}", exp(x));
        }
        assert_eq!(exp(-200.0), exp(-87.0));
        assert!(exp(-87.0) > 0.0 && exp(88.0).is_finite());
    }

    #[test]
    fn erf_is_accurate() {
        for x in grid() {
            let want = libm::erf(f64::from(x));
            assert!((f64::from(erf(x)) - want).abs() < 4e-7, "erf({x})");
        }
    }

    #[test]
    fn gelu_matches_its_definition() {
        let mut x: Vec<f32> = grid().collect();
        let want: Vec<f64> = x
            .iter()
            .map(|&v| 0.5 * f64::from(v) * (1.0 + libm::erf(f64::from(v) / 2f64.sqrt())))
            .collect();
        gelu(&mut x);
        for (g, w) in x.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 3e-6 * w.abs().max(1.0));
        }
    }

    #[test]
    fn one_query_attends_as_the_definition() {
        let (m, dh) = (37, 12);
        let q: Vec<f32> = (0..dh).map(|i| (i as f32 * 0.3).cos()).collect();
        let k: Vec<f32> = (0..m * dh).map(|i| (i as f32 * 0.11).sin()).collect();
        let v: Vec<f32> = (0..m * dh).map(|i| (i as f32 * 0.07).cos()).collect();
        let mut scores = vec![0.0; m];
        let mut out = vec![0.0; dh];
        attend_one(&q, &k, &v, &mut scores, &mut out);
        let s: Vec<f64> = k
            .chunks(dh)
            .map(|row| row.iter().zip(&q).map(|(a, b)| f64::from(a * b)).sum())
            .collect();
        let z: f64 = s.iter().map(|x| x.exp()).sum();
        for (c, o) in out.iter().enumerate() {
            let want: f64 = (0..m)
                .map(|j| s[j].exp() / z * f64::from(v[j * dh + c]))
                .sum();
            assert!((f64::from(*o) - want).abs() < 1e-5, "{o} vs {want}");
        }
    }

    #[test]
    fn layer_norm_and_softmax_rows() {
        let mut x: Vec<f32> = (0..2 * 13).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let orig = x.clone();
        let gamma = vec![2.0; 13];
        let beta = vec![1.0; 13];
        layer_norm(&mut x, &gamma, &beta, 1e-12);
        for (row, src) in x.chunks(13).zip(orig.chunks(13)) {
            let m = src.iter().sum::<f32>() / 13.0;
            let v = src.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 13.0;
            for (y, a) in row.iter().zip(src) {
                assert!((y - ((a - m) / v.sqrt() * 2.0 + 1.0)).abs() < 1e-5);
            }
        }
        // Down the columns of the transpose: the same numbers.
        let mut cols: Vec<f32> = (0..26).map(|i| orig[(i % 2) * 13 + i / 2]).collect();
        softmax_columns(&mut cols, 2, &mut Vec::new());
        let mut s = orig.clone();
        softmax(&mut s, 13);
        for (i, c) in cols.iter().enumerate() {
            assert!((c - s[(i % 2) * 13 + i / 2]).abs() < 1e-6);
        }
        for (row, src) in s.chunks(13).zip(orig.chunks(13)) {
            let z: f64 = src.iter().map(|&a| f64::from(a).exp()).sum();
            for (p, &a) in row.iter().zip(src) {
                assert!((f64::from(*p) - f64::from(a).exp() / z).abs() < 1e-6);
            }
        }
    }
}
