//! The linear algebra of a Newton step: a Cholesky solve of the
//! (symmetric) Hessian system, and a damped one for a Hessian that noise
//! left indefinite.

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major n×n)
/// by Cholesky; `None` when `a` is not positive definite.
pub(super) fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                // Not positive (or NaN): the matrix is not positive definite.
                let floor = 1e-12 * a[i * n + i].abs().max(1e-300);
                if d.is_nan() || d <= floor {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// Solves `a · x = b` after adding the smallest ridge λ·I (λ growing ten
/// times per try from 10⁻⁶ of the largest diagonal entry) that makes `a`
/// positive definite: noise can leave a summed Hessian indefinite, and the
/// ridge is post-processing of released sums.
pub(super) fn damped_solve(a: &mut [f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let largest = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max);
    let mut added = 0.0;
    let mut ridge = 1e-6 * largest.max(1e-12);
    for _ in 0..16 {
        if let Some(x) = cholesky_solve(a, b) {
            return Some(x);
        }
        for i in 0..n {
            a[i * n + i] += ridge - added;
        }
        added = ridge;
        ridge *= 10.0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damped_solve_makes_an_indefinite_matrix_usable() {
        // Eigenvalues 3 and −1: Cholesky refuses, the ridge fixes it.
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_solve(&a, &[1.0, 0.0]).is_none());
        let x = damped_solve(&mut a, &[1.0, 0.0]).unwrap();
        // The ridge is the first of the ladder 10⁻⁶, 10⁻⁵, … above 1 (the
        // negative eigenvalue's size); (a + λI) x = b, checked directly.
        let r = [a[0] * x[0] + a[1] * x[1], a[2] * x[0] + a[3] * x[1]];
        assert!((r[0] - 1.0).abs() < 1e-9 && r[1].abs() < 1e-9, "{r:?}");
        assert!(a[0] > 2.0);
        // A positive definite matrix is left alone.
        let mut b = vec![2.0, 0.0, 0.0, 4.0];
        let x = damped_solve(&mut b, &[2.0, 4.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
        assert_eq!(b, vec![2.0, 0.0, 0.0, 4.0]);
    }

    #[test]
    fn cholesky_solves_and_refuses_what_is_not_positive_definite() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        let solved = cholesky_solve(&a, &b).unwrap();
        for (s, e) in solved.iter().zip(x) {
            assert!((s - e).abs() < 1e-12);
        }
        assert!(cholesky_solve(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0]).is_none());
        assert!(cholesky_solve(&[-1.0], &[1.0]).is_none());
    }
}
