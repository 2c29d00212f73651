//! Matrix products over strided `f32` slices, checked, through
//! `matrixmultiply` (the kernel burn's NdArray backend uses), and [`Dense`]
//! layers on the packed AVX-512 kernel where the CPU has it.

use super::packed::{self, Packed};

/// A read-only matrix view: `rows × cols` elements of `data`, element
/// `(i, j)` at `i * row_stride + j * col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// The backing values.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// `rows × cols` elements with the given strides.
    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let m = Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        assert!(
            fits(data.len(), rows, cols, row_stride, col_stride),
            "a {rows}x{cols} view with strides ({row_stride}, {col_stride}) does not fit in {} values",
            data.len()
        );
        m
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A writable matrix view (see [`MatRef`]); rows and columns must not
/// alias each other.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// `rows × cols` elements, rows `row_stride` apart, columns adjacent.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            cols <= row_stride || rows <= 1,
            "rows of {cols} columns {row_stride} apart overlap"
        );
        assert!(
            fits(data.len(), rows, cols, row_stride, 1),
            "a {rows}x{cols} output with row stride {row_stride} does not fit in {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }

    /// A dense row-major `rows × cols` matrix.
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `c ← alpha · a · b + beta · c`. With `beta == 0` the old contents of
/// `c` are not read.
///
/// # Panics
/// When the shapes do not chain (`a.cols != b.rows`, `c` not
/// `a.rows × b.cols`).
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!((c.rows, c.cols), (a.rows, b.cols), "output shape differs");
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: the views were checked to lie inside their slices (`fits`),
    // `c` is borrowed mutably and its elements do not alias (its columns
    // are adjacent and rows at least `cols` apart), and the inputs are
    // shared borrows that cannot overlap a mutable one.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            s(a.row_stride),
            s(a.col_stride),
            b.data.as_ptr(),
            s(b.row_stride),
            s(b.col_stride),
            beta,
            c.data.as_mut_ptr(),
            s(c.row_stride),
            1,
        );
    }
}

/// `c = a · b` for row-major `a` (`rows × k`), `b` (`k × n`) and `c`
/// (`rows × n`): through the packed kernel where the CPU has it and there
/// are rows enough to pay for packing `b`, else through `matrixmultiply`.
///
/// # Panics
/// When a slice is shorter than its shape.
pub fn matmul(a: &[f32], b: &[f32], rows: usize, k: usize, n: usize, c: &mut [f32]) {
    let (a, b, c) = (&a[..rows * k], &b[..k * n], &mut c[..rows * n]);
    if rows >= 16 && packed::available() {
        c.fill(0.0);
        Packed::new(b, k, n).multiply_add(a, rows, c);
    } else {
        gemm(
            1.0,
            MatRef::rows(a, rows, k),
            MatRef::rows(b, k, n),
            0.0,
            MatMut::rows(c, rows, n),
        );
    }
}

thread_local! {
    /// The transposed activations of the last [`Dense`] product.
    static XT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `dst` (`cols × rows`) ← the transpose of `src` (`rows × cols`), in
/// cache-sized tiles.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const TILE: usize = 8;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    let full_r = rows / TILE * TILE;
    let full_c = cols / TILE * TILE;
    for r0 in (0..full_r).step_by(TILE) {
        for c0 in (0..full_c).step_by(TILE) {
            // A fixed 8 × 8 block: the compiler keeps it in registers.
            let mut block = [[0.0f32; TILE]; TILE];
            for (i, line) in block.iter_mut().enumerate() {
                line.copy_from_slice(&src[(r0 + i) * cols + c0..][..TILE]);
            }
            for j in 0..TILE {
                let out = &mut dst[(c0 + j) * rows + r0..][..TILE];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = block[i][j];
                }
            }
        }
    }
    for r in 0..rows {
        let cs = if r < full_r { full_c..cols } else { 0..cols };
        for c in cs {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// How a [`Dense`] layer keeps `Wᵀ`.
#[derive(Debug, Clone)]
enum Weight {
    /// Packed for the AVX-512 kernel ([`Packed`]), on CPUs that have it.
    Packed(Packed),
    /// `inputs × outputs` row-major, for `matrixmultiply` (its panels are
    /// packed from contiguous rows).
    Plain(Vec<f32>),
}

/// A fully connected layer `y = x · Wᵀ + b`, with `W` stored as PyTorch
/// and CTranslate2 store it (`out × in`, row-major).
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Weight,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// A layer from its `outputs × inputs` weight and its bias (zeros when
    /// `None`).
    ///
    /// # Panics
    /// When the lengths do not match the sizes.
    pub fn new(weight: Vec<f32>, bias: Option<Vec<f32>>, inputs: usize, outputs: usize) -> Self {
        Self::build(weight, bias, inputs, outputs, packed::available())
    }

    fn build(
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        inputs: usize,
        outputs: usize,
        pack: bool,
    ) -> Self {
        assert_eq!(
            weight.len(),
            inputs * outputs,
            "weight is not {outputs}x{inputs}"
        );
        let bias = bias.unwrap_or_else(|| vec![0.0; outputs]);
        assert_eq!(bias.len(), outputs, "bias is not {outputs} long");
        let mut weight_t = vec![0.0; weight.len()];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                weight_t[i * outputs + o] = v;
            }
        }
        let weight = if pack {
            Weight::Packed(Packed::new(&weight_t, inputs, outputs))
        } else {
            Weight::Plain(weight_t)
        };
        Self {
            weight,
            bias,
            inputs,
            outputs,
        }
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    fn product(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let weight_t = match &self.weight {
            Weight::Packed(p) => return p.multiply_add(x, rows, y),
            Weight::Plain(w) => w,
        };
        let w = MatRef::rows(weight_t, self.inputs, self.outputs);
        // `matrixmultiply` packs its left operand fast only when that is
        // column-major; transposing the activations first costs one pass
        // and makes the product a quarter faster.
        XT.with(|xt| {
            let mut xt = xt.borrow_mut();
            xt.resize(rows * self.inputs, 0.0);
            transpose(&x[..rows * self.inputs], rows, self.inputs, &mut xt);
            gemm(
                1.0,
                MatRef::strided(&xt, rows, self.inputs, 1, rows),
                w,
                1.0,
                MatMut::rows(y, rows, self.outputs),
            );
        });
    }

    /// `y = x · Wᵀ + b` for `x` of `rows × inputs`, `y` of `rows × outputs`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let y = &mut y[..rows * self.outputs];
        if let Weight::Packed(p) = &self.weight {
            return p.multiply_bias(x, rows, &self.bias, false, y);
        }
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        self.product(x, rows, y);
    }

    /// `y += x · Wᵀ + b`: the layer with a residual connection fused in.
    pub fn forward_add(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let y = &mut y[..rows * self.outputs];
        if let Weight::Packed(p) = &self.weight {
            return p.multiply_bias(x, rows, &self.bias, true, y);
        }
        for row in y.chunks_exact_mut(self.outputs) {
            row.iter_mut().zip(&self.bias).for_each(|(a, b)| *a += b);
        }
        self.product(x, rows, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn strided_products_match_the_definition() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        // b given transposed (n × k) and read through a transposed view.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut c = vec![9.0; m * 4];
        gemm(
            1.0,
            MatRef::rows(&a, m, k),
            MatRef::rows(&bt, n, k).t(),
            0.0,
            MatMut::strided(&mut c, m, n, 4),
        );
        for i in 0..m {
            for j in 0..n {
                assert!((c[i * 4 + j] - want[i * n + j]).abs() < 1e-5);
            }
            assert_eq!(c[i * 4 + 3], 9.0, "the gap column is untouched");
        }
    }

    #[test]
    fn dense_adds_the_bias_and_the_residual() {
        // Both products: the packed kernel (where the CPU has AVX-512F)
        // and the portable one.
        for pack in [packed::available(), false] {
            let layer = Dense::build(
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                Some(vec![0.5, -0.5]),
                3,
                2,
                pack,
            );
            let x = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0];
            let mut y = vec![0.0; 4];
            layer.forward(&x, 2, &mut y);
            assert_eq!(y, vec![-1.5, -2.5, 4.5, 12.5], "packed: {pack}");
            layer.forward_add(&x, 2, &mut y);
            assert_eq!(y, vec![-3.0, -5.0, 9.0, 25.0], "packed: {pack}");
        }
    }

    #[test]
    fn transpose_handles_ragged_edges() {
        for (rows, cols) in [(1, 1), (3, 17), (16, 8), (19, 21)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![0.0; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn views_outside_their_slice_are_refused() {
        let data = [0.0; 10];
        let _ = MatRef::strided(&data, 3, 4, 4, 1);
    }
}
