//! The special functions behind the p-values: ln Γ, the regularized incomplete gamma
//! functions (chi-square tails) and erfc (normal tails).
//!
//! Written by hand (Lanczos' ln Γ, the series and Lentz's continued fraction for the incomplete
//! gamma) because these forty lines are all the certified crate needs: the crates that offer
//! them pull in linear algebra or complex-number stacks. The tests pin them against closed forms.

/// Iterations the series and the continued fraction may take before giving their best value.
const ITERATIONS_MAX: u32 = 100_000;
const EPSILON: f64 = 1e-15;
const TINY: f64 = 1e-300;

/// Lanczos approximation, g = 7, n = 9 (relative error below 1e-15 for x > 0).
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    assert!(x > 0.0, "ln_gamma is defined here for x > 0");
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, &c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x >= 0.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    assert!(a > 0.0 && x >= 0.0, "gamma_q needs a > 0 and x >= 0");
    if x == 0.0 {
        1.0
    } else if x < a + 1.0 {
        1.0 - lower_series(a, x)
    } else {
        upper_continued_fraction(a, x)
    }
}

/// Regularized lower incomplete gamma P(a, x) = 1 - Q(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    assert!(a > 0.0 && x >= 0.0, "gamma_p needs a > 0 and x >= 0");
    if x == 0.0 {
        0.0
    } else if x < a + 1.0 {
        lower_series(a, x)
    } else {
        1.0 - upper_continued_fraction(a, x)
    }
}

/// e^-x x^a / Γ(a): the prefactor both expansions share.
fn prefactor(a: f64, x: f64) -> f64 {
    (-x + a * x.ln() - ln_gamma(a)).exp()
}

/// P(a, x) = prefactor · Σ x^n / (a (a+1) ... (a+n)), converging fast for x < a + 1.
fn lower_series(a: f64, x: f64) -> f64 {
    let mut term = 1.0 / a;
    let mut sum = term;
    let mut denominator = a;
    for _ in 0..ITERATIONS_MAX {
        denominator += 1.0;
        term *= x / denominator;
        sum += term;
        if term.abs() < sum.abs() * EPSILON {
            break;
        }
    }
    (sum * prefactor(a, x)).min(1.0)
}

/// Q(a, x) by the continued fraction for Γ(a, x), evaluated with Lentz's method (x >= a + 1).
fn upper_continued_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..=ITERATIONS_MAX {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPSILON {
            break;
        }
    }
    (prefactor(a, x) * h).clamp(0.0, 1.0)
}

/// Complementary error function.
pub fn erfc(x: f64) -> f64 {
    if x >= 0.0 {
        gamma_q(0.5, x * x)
    } else {
        2.0 - gamma_q(0.5, x * x)
    }
}

/// P(χ² with `degrees_of_freedom` > statistic).
pub fn chi_square_upper_tail(statistic: f64, degrees_of_freedom: u32) -> f64 {
    assert!(
        degrees_of_freedom > 0,
        "a chi-square law has at least one degree of freedom"
    );
    gamma_q(degrees_of_freedom as f64 / 2.0, statistic.max(0.0) / 2.0)
}

/// P(|Z| > |z|) for a standard normal Z.
pub fn normal_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_root_pi() {
        let mut factorial = 1.0f64;
        for n in 1..=30u32 {
            assert!(
                close(ln_gamma(n as f64), factorial.ln(), 1e-13) || n <= 2,
                "n = {n}"
            );
            assert!(
                (ln_gamma(n as f64) - factorial.ln()).abs() < 1e-12,
                "n = {n}"
            );
            factorial *= n as f64;
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(0.25) - 1.288_022_524_698_077_4).abs() < 1e-13);
    }

    #[test]
    fn upper_gamma_of_integer_order_matches_the_poisson_sum() {
        for &k in &[1u32, 2, 5, 50, 128] {
            for &x in &[0.1, 1.0, 4.5, 50.0, 130.0, 200.0] {
                // Q(k, x) = e^-x Σ_{i<k} x^i / i!, summed in logs to stay finite.
                let sum: f64 = (0..k)
                    .map(|i| (-x + i as f64 * f64::ln(x) - ln_gamma(i as f64 + 1.0)).exp())
                    .sum();
                let q = gamma_q(k as f64, x);
                assert!(
                    close(q, sum, 1e-10) || (q - sum).abs() < 1e-300,
                    "k = {k}, x = {x}: {q} vs {sum}"
                );
                assert!((gamma_p(k as f64, x) + q - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!(close(erfc(1.0), 0.157_299_207_050_285_13, 1e-13));
        assert!(close(erfc(2.0), 0.004_677_734_981_047_266, 1e-12));
        assert!(close(erfc(-1.0), 1.842_700_792_949_715, 1e-13));
        assert_eq!(erfc(0.0), 1.0);
        assert!(close(normal_two_sided(2.575_829_303_548_901), 0.01, 1e-9));
    }

    #[test]
    fn chi_square_tail_at_the_tabulated_99_percent_points_is_one_percent() {
        for &(df, critical) in &[
            (1u32, 6.634_896_601),
            (5, 15.086_272_47),
            (255, 310.457_388_7),
        ] {
            let p = chi_square_upper_tail(critical, df);
            assert!((p - 0.01).abs() < 1e-6, "df = {df}: p = {p}");
        }
        assert_eq!(chi_square_upper_tail(0.0, 3), 1.0);
    }
}
