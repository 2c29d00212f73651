//! `y += x · B` for a fixed right operand `B` (a layer's `Wᵀ`) packed once,
//! at load time, into the layout an AVX-512 micro-kernel streams: panels
//! of [`NR`] columns, each `k × NR` contiguous and 64-byte aligned.
//!
//! A general GEMM (`matrixmultiply`) repacks both operands on every call;
//! here the weights are packed once and the activations are read in place
//! (each of the kernel's [`MR`] rows is broadcast straight from `x`), so a
//! product is only the arithmetic. Blocking: a `KC × NR` weight block stays
//! in L1 while it meets every `MR`-row block of an `MC`-row slab (in L2).

use rayon::prelude::*;

/// Columns per panel: two 16-lane registers.
pub const NR: usize = 32;
/// Rows per micro-kernel call.
pub const MR: usize = 8;
/// Depth of one block of the product (weights in L1: `KC · NR · 4` bytes).
const KC: usize = 192;
/// Rows of one slab of activations (in L2: `MC · KC · 4` bytes).
const MC: usize = 128;

/// One 64-byte line of 16 values: the packed panels' unit, so every panel
/// starts on a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A `k × n` right operand packed into [`NR`]-column panels (the last one
/// padded with zeros).
#[derive(Debug, Clone)]
pub struct Packed {
    lines: Vec<Line>,
    k: usize,
    n: usize,
}

/// Whether this CPU runs the packed kernel (AVX-512F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Packed {
    /// Packs `b`, `k × n` row-major.
    ///
    /// # Panics
    /// When `b` is not `k × n` values.
    pub fn new(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "the operand is not {k}x{n}");
        let panels = n.div_ceil(NR);
        let mut lines = vec![Line::default(); panels * k * 2];
        for p in 0..panels {
            let cols = (n - p * NR).min(NR);
            for kk in 0..k {
                let at = (p * k + kk) * 2;
                let src = &b[kk * n + p * NR..][..cols];
                for (j, &v) in src.iter().enumerate() {
                    lines[at + j / 16].0[j % 16] = v;
                }
            }
        }
        Self { lines, k, n }
    }

    /// Rows of the operand (the product's depth).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the operand (the product's width).
    pub fn n(&self) -> usize {
        self.n
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// `y += x · B` for `x` of `rows × k` and `y` of `rows × n`, both
    /// row-major; rows (or, for few rows, panels) spread over rayon's pool.
    ///
    /// # Panics
    /// When the slices are shorter than the shapes, or the CPU lacks
    /// AVX-512F ([`available`]).
    pub fn multiply_add(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        self.run(x, rows, y, Start::Add, None);
    }

    /// `y = x · B + bias` (`keep` false) or `y += x · B + bias` (`keep`
    /// true), the bias added as the first depth block is stored: no pass of
    /// its own over `y`, which for a large product is a trip to memory.
    ///
    /// # Panics
    /// As [`Packed::multiply_add`], or when `bias` is not `n` long.
    pub fn multiply_bias(&self, x: &[f32], rows: usize, bias: &[f32], keep: bool, y: &mut [f32]) {
        assert_eq!(bias.len(), self.n, "the bias is not {} long", self.n);
        let start = if keep { Start::Add } else { Start::Store };
        self.run(x, rows, y, start, Some(bias));
    }

    fn run(&self, x: &[f32], rows: usize, y: &mut [f32], start: Start, bias: Option<&[f32]>) {
        assert!(available(), "the packed kernel needs AVX-512F");
        assert!(
            x.len() >= rows * self.k,
            "x is shorter than {rows}x{}",
            self.k
        );
        assert!(
            y.len() >= rows * self.n,
            "y is shorter than {rows}x{}",
            self.n
        );
        if rows == 0 || self.n == 0 {
            return;
        }
        let panels = self.panels();
        let threads = rayon::current_num_threads().max(1);
        // Tasks: slabs of rows when there are enough rows, else groups of
        // panels; either way disjoint parts of `y`.
        let row_tasks = rows.div_ceil(MC).min(threads * 4);
        let (row_step, panel_step) = if row_tasks >= threads {
            (rows.div_ceil(row_tasks).next_multiple_of(MR), panels)
        } else {
            (rows, panels.div_ceil(threads * 2).max(1))
        };
        let out = SharedOut(y.as_mut_ptr());
        let tasks: Vec<(usize, usize)> = (0..rows)
            .step_by(row_step)
            .flat_map(|r| (0..panels).step_by(panel_step).map(move |p| (r, p)))
            .collect();
        tasks.into_par_iter().for_each(|(r0, p0)| {
            let r1 = (r0 + row_step).min(rows);
            let p1 = (p0 + panel_step).min(panels);
            // SAFETY: AVX-512F is present (asserted); `x` and `y` hold the
            // shapes (asserted); tasks cover disjoint rows × panels of `y`,
            // so no two write the same element.
            unsafe { self.block(x, r0..r1, p0..p1, &out, start, bias) };
        });
    }

    /// Rows `rows` × panels `panels` of the product, blocked for the caches.
    ///
    /// # Safety
    /// AVX-512F; `x` holds `rows.end × k` values and `out` points at a
    /// `rows.end × n` buffer of which no other thread touches this part.
    #[cfg(target_arch = "x86_64")]
    unsafe fn block(
        &self,
        x: &[f32],
        rows: std::ops::Range<usize>,
        panels: std::ops::Range<usize>,
        out: &SharedOut,
        start: Start,
        bias: Option<&[f32]>,
    ) {
        // SAFETY: the caller upholds this function's contract (above).
        unsafe {
            let (k, n) = (self.k, self.n);
            let base = self.lines.as_ptr().cast::<f32>();
            if k == 0 {
                // No depth block to carry the bias: store or add it alone.
                let zero = [0.0f32; NR];
                for p in panels {
                    let cols = (n - p * NR).min(NR);
                    let b = bias.map_or(zero.as_ptr(), |b| b.as_ptr().add(p * NR));
                    for i in rows.clone() {
                        let c = out.0.add(i * n + p * NR);
                        for j in 0..cols {
                            let old = if start == Start::Add { *c.add(j) } else { 0.0 };
                            *c.add(j) = old + *b.add(j);
                        }
                    }
                }
                return;
            }
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                let first = k0 == 0;
                let how = if first { start } else { Start::Add };
                for i0 in rows.clone().step_by(MC) {
                    let i1 = (i0 + MC).min(rows.end);
                    for p in panels.clone() {
                        let cols = (n - p * NR).min(NR);
                        let b = base.add((p * k + k0) * NR);
                        let bias = match bias {
                            Some(bias) if first => bias.as_ptr().add(p * NR),
                            _ => std::ptr::null(),
                        };
                        let tile = Tile {
                            c: std::ptr::null_mut(),
                            ldc: n,
                            cols,
                            bias,
                            how,
                        };
                        for i in (i0..i1).step_by(MR) {
                            let m = MR.min(i1 - i);
                            let a = x.as_ptr().add(i * k + k0);
                            let tile = Tile {
                                c: out.0.add(i * n + p * NR),
                                ..tile
                            };
                            micro(m, kc, a, k, b, &tile);
                        }
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn block(
        &self,
        _: &[f32],
        _: std::ops::Range<usize>,
        _: std::ops::Range<usize>,
        _: &SharedOut,
        _: Start,
        _: Option<&[f32]>,
    ) {
        // SAFETY: the caller upholds this function's contract (above).
        unsafe { unreachable!("available() is false off x86-64") }
    }
}

/// How the first depth block meets the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// `c += …`: keep what `c` holds.
    Add,
    /// `c = …`: overwrite it.
    Store,
}

/// Where one micro-kernel call writes: `c`, rows `ldc` apart, the first
/// `cols` columns; `bias` (null for none) added to every row; `how` says
/// whether the old values are kept.
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    ldc: usize,
    cols: usize,
    bias: *const f32,
    how: Start,
}

/// The output buffer, shared by tasks that write disjoint parts of it.
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint elements (see `multiply_add`).
unsafe impl Sync for SharedOut {}

/// Dispatches `m` (1 to [`MR`]) rows to the kernel built for that count.
///
/// # Safety
/// As [`kernel`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro(m: usize, kc: usize, a: *const f32, lda: usize, b: *const f32, tile: &Tile) {
    // SAFETY: the caller upholds this function's contract (above).
    unsafe {
        match m {
            8 => kernel::<8>(kc, a, lda, b, tile),
            7 => kernel::<7>(kc, a, lda, b, tile),
            6 => kernel::<6>(kc, a, lda, b, tile),
            5 => kernel::<5>(kc, a, lda, b, tile),
            4 => kernel::<4>(kc, a, lda, b, tile),
            3 => kernel::<3>(kc, a, lda, b, tile),
            2 => kernel::<2>(kc, a, lda, b, tile),
            _ => kernel::<1>(kc, a, lda, b, tile),
        }
    }
}

/// `C[M × cols] (+)= A[M × kc] · B[kc × NR] (+ bias)` (only the first
/// `cols` columns written), the accumulators in `2 · M` registers.
///
/// # Safety
/// AVX-512F; `a` reads `M` rows `lda` apart of `kc` values, `b` reads
/// `kc · NR` values, `tile.c` reads and writes `M` rows `tile.ldc` apart of
/// `tile.cols` (at most [`NR`]) values, `tile.bias` is null or reads
/// `tile.cols` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const M: usize>(kc: usize, a: *const f32, lda: usize, b: *const f32, tile: &Tile) {
    // SAFETY: the caller upholds this function's contract (above).
    unsafe {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); 2]; M];
        for kk in 0..kc {
            let b0 = _mm512_load_ps(b.add(kk * NR));
            let b1 = _mm512_load_ps(b.add(kk * NR + 16));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i * lda + kk));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
        }
        let Tile {
            c,
            ldc,
            cols,
            bias,
            how,
        } = *tile;
        let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
        let (m0, m1) = (lanes(cols), lanes(cols.saturating_sub(16)));
        let (bias0, bias1) = if bias.is_null() {
            (_mm512_setzero_ps(), _mm512_setzero_ps())
        } else {
            (
                _mm512_maskz_loadu_ps(m0, bias),
                _mm512_maskz_loadu_ps(m1, bias.add(16)),
            )
        };
        for (i, row) in acc.iter().enumerate() {
            let ci = c.add(i * ldc);
            let (mut v0, mut v1) = (_mm512_add_ps(row[0], bias0), _mm512_add_ps(row[1], bias1));
            if how == Start::Add {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci.add(16)));
            }
            _mm512_mask_storeu_ps(ci, m0, v0);
            _mm512_mask_storeu_ps(ci.add(16), m1, v1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_the_definition_at_ragged_shapes() {
        if !available() {
            // Without AVX-512F the kernel must refuse, never run: what a
            // CPU without it can check. (gemm.rs's tests cover the path
            // that such CPUs take instead.)
            let packed = Packed::new(&[1.0; 4], 2, 2);
            let refused = std::panic::catch_unwind(|| {
                let mut y = [0.0; 2];
                packed.multiply_add(&[1.0, 1.0], 1, &mut y);
            });
            assert!(refused.is_err(), "the packed kernel ran without AVX-512F");
            return;
        }
        for &(rows, k, n) in &[
            (1, 1, 1),
            (7, 5, 31),
            (8, 192, 32),
            (9, 193, 33),
            (130, 400, 100),
            (300, 384, 64),
            (3, 1536, 384),
            (4, 0, 40),
        ] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let packed = Packed::new(&b, k, n);
            let before: Vec<f32> = (0..rows * n).map(|i| i as f32 * 0.5).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 3.0).collect();
            // `multiply_add`, then `multiply_bias` keeping and overwriting.
            let mut added = before.clone();
            packed.multiply_add(&x, rows, &mut added);
            let mut kept = before.clone();
            packed.multiply_bias(&x, rows, &bias, true, &mut kept);
            let mut stored = before.clone();
            packed.multiply_bias(&x, rows, &bias, false, &mut stored);
            for i in 0..rows {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|p| f64::from(x[i * k + p]) * f64::from(b[p * n + j]))
                        .sum();
                    let old = f64::from(before[i * n + j]);
                    let with_bias = dot + f64::from(bias[j]);
                    for (got, want, what) in [
                        (added[i * n + j], old + dot, "add"),
                        (kept[i * n + j], old + with_bias, "bias, kept"),
                        (stored[i * n + j], with_bias, "bias, stored"),
                    ] {
                        let got = f64::from(got);
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{what} {rows}x{k}x{n} at {i},{j}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
