//! The scalers and their options, by name (scikit-learn's names and defaults).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// scikit-learn's `StandardScaler`: `(x − mean) / std`, population std.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub with_mean: bool,
    pub with_std: bool,
}

/// scikit-learn's `MinMaxScaler`: `(x − min) / (max − min) · (MAX − MIN) + MIN`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    pub feature_range: (f64, f64),
    pub clip: bool,
}

/// scikit-learn's `MaxAbsScaler`: `x / max|x|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MaxAbsScaler {}

/// scikit-learn's `RobustScaler`: `(x − median) / (q(HI) − q(LO))`, percentiles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustScaler {
    pub with_centering: bool,
    pub with_scaling: bool,
    /// Percentiles `(LO, HI)`, `0 <= LO <= HI <= 100`.
    pub quantile_range: (f64, f64),
    pub unit_variance: bool,
}

/// `FunctionTransformer(np.log1p, inverse_func=np.expm1)`: stateless.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogScaler {}

impl Default for StandardScaler {
    fn default() -> Self {
        StandardScaler { with_mean: true, with_std: true }
    }
}

impl StandardScaler {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_mean(mut self, on: bool) -> Self {
        self.with_mean = on;
        self
    }
    pub fn with_std(mut self, on: bool) -> Self {
        self.with_std = on;
        self
    }
}

impl Default for MinMaxScaler {
    fn default() -> Self {
        MinMaxScaler { feature_range: (0.0, 1.0), clip: false }
    }
}

impl MinMaxScaler {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn feature_range(mut self, min: f64, max: f64) -> Self {
        self.feature_range = (min, max);
        self
    }
    pub fn clip(mut self, on: bool) -> Self {
        self.clip = on;
        self
    }
}

impl Default for RobustScaler {
    fn default() -> Self {
        RobustScaler { with_centering: true, with_scaling: true, quantile_range: (25.0, 75.0), unit_variance: false }
    }
}

impl RobustScaler {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_centering(mut self, on: bool) -> Self {
        self.with_centering = on;
        self
    }
    pub fn with_scaling(mut self, on: bool) -> Self {
        self.with_scaling = on;
        self
    }
    pub fn quantile_range(mut self, lo: f64, hi: f64) -> Self {
        self.quantile_range = (lo, hi);
        self
    }
    pub fn unit_variance(mut self, on: bool) -> Self {
        self.unit_variance = on;
        self
    }
}

/// One of the five scalers with its options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scaler {
    Standard(StandardScaler),
    MinMax(MinMaxScaler),
    MaxAbs(MaxAbsScaler),
    Robust(RobustScaler),
    Log(LogScaler),
}

impl From<StandardScaler> for Scaler {
    fn from(s: StandardScaler) -> Self {
        Scaler::Standard(s)
    }
}
impl From<MinMaxScaler> for Scaler {
    fn from(s: MinMaxScaler) -> Self {
        Scaler::MinMax(s)
    }
}
impl From<MaxAbsScaler> for Scaler {
    fn from(s: MaxAbsScaler) -> Self {
        Scaler::MaxAbs(s)
    }
}
impl From<RobustScaler> for Scaler {
    fn from(s: RobustScaler) -> Self {
        Scaler::Robust(s)
    }
}
impl From<LogScaler> for Scaler {
    fn from(s: LogScaler) -> Self {
        Scaler::Log(s)
    }
}

impl Scaler {
    /// The method's name as the CLI and the params file spell it.
    pub fn method(&self) -> &'static str {
        match self {
            Scaler::Standard(_) => "standard",
            Scaler::MinMax(_) => "minmax",
            Scaler::MaxAbs(_) => "maxabs",
            Scaler::Robust(_) => "robust",
            Scaler::Log(_) => "log",
        }
    }

    /// The scaler of a method name with default options.
    pub fn from_method(name: &str) -> Result<Scaler> {
        Ok(match name {
            "standard" => StandardScaler::default().into(),
            "minmax" => MinMaxScaler::default().into(),
            "maxabs" => MaxAbsScaler::default().into(),
            "robust" => RobustScaler::default().into(),
            "log" => LogScaler::default().into(),
            other => {
                return Err(Error::InvalidParameter(format!(
                    "unknown scaling method '{other}': expected standard, minmax, maxabs, robust or log"
                )))
            }
        })
    }

    /// The options as a JSON object.
    pub fn options_json(&self) -> serde_json::Value {
        let v = match self {
            Scaler::Standard(o) => serde_json::to_value(o),
            Scaler::MinMax(o) => serde_json::to_value(o),
            Scaler::MaxAbs(o) => serde_json::to_value(o),
            Scaler::Robust(o) => serde_json::to_value(o),
            Scaler::Log(o) => serde_json::to_value(o),
        };
        v.expect("options serialize")
    }

    /// A scaler from a method name and a JSON object of options (missing options take defaults).
    pub fn from_json(method: &str, options: &serde_json::Value) -> Result<Scaler> {
        let base = Scaler::from_method(method)?;
        let mut merged = base.options_json();
        if let (Some(m), Some(o)) = (merged.as_object_mut(), options.as_object()) {
            for (k, v) in o {
                if !m.contains_key(k) {
                    return Err(Error::InvalidParameter(format!("unknown option '{k}' for method '{method}'")));
                }
                m.insert(k.clone(), v.clone());
            }
        }
        let bad = |e: serde_json::Error| Error::InvalidParameter(format!("options of '{method}': {e}"));
        let s = match base {
            Scaler::Standard(_) => Scaler::Standard(serde_json::from_value(merged).map_err(bad)?),
            Scaler::MinMax(_) => Scaler::MinMax(serde_json::from_value(merged).map_err(bad)?),
            Scaler::MaxAbs(_) => Scaler::MaxAbs(serde_json::from_value(merged).map_err(bad)?),
            Scaler::Robust(_) => Scaler::Robust(serde_json::from_value(merged).map_err(bad)?),
            Scaler::Log(_) => Scaler::Log(serde_json::from_value(merged).map_err(bad)?),
        };
        s.validate()?;
        Ok(s)
    }

    /// Check the options' domains.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Scaler::MinMax(MinMaxScaler { feature_range: (lo, hi), .. })
                if lo >= hi || lo.is_nan() || hi.is_nan() || !lo.is_finite() || !hi.is_finite() =>
            {
                return Err(Error::InvalidParameter(format!(
                    "feature_range ({lo}, {hi}): the minimum must be smaller than the maximum, both finite"
                )));
            }
            Scaler::Robust(RobustScaler { quantile_range: (lo, hi), .. })
                if !(0.0..=100.0).contains(&lo) || !(0.0..=100.0).contains(&hi) || lo > hi =>
            {
                return Err(Error::InvalidParameter(format!(
                    "quantile_range ({lo}, {hi}): need 0 <= LO <= HI <= 100 (percent)"
                )));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The standard normal quantile function Φ⁻¹ (Acklam's rational approximation,
/// relative error below 1.2e-9, far inside float32).
pub fn normal_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239e0,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838e0,
        -2.549732539343734e0,
        4.374664141464968e0,
        2.938163982698783e0,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996e0, 3.754408661907416e0];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_ppf_matches_known_values() {
        // scipy.stats.norm.ppf
        for (p, want) in
            [(0.75, 0.6744897501960817), (0.9, 1.2815515655446004), (0.001, -3.090_232_306_167_813), (0.5, 0.0)]
        {
            assert!((normal_ppf(p) - want).abs() < 1e-8, "ppf({p}) = {}", normal_ppf(p));
        }
    }

    #[test]
    fn options_are_validated() {
        assert!(Scaler::MinMax(MinMaxScaler::new().feature_range(1.0, 1.0)).validate().is_err());
        assert!(Scaler::Robust(RobustScaler::new().quantile_range(80.0, 20.0)).validate().is_err());
        assert!(Scaler::Robust(RobustScaler::new().quantile_range(-1.0, 20.0)).validate().is_err());
        assert!(Scaler::Robust(RobustScaler::new().quantile_range(0.0, 100.0)).validate().is_ok());
    }

    #[test]
    fn options_round_trip_through_json() {
        let s: Scaler = RobustScaler::new().quantile_range(10.0, 90.0).unit_variance(true).into();
        assert_eq!(Scaler::from_json(s.method(), &s.options_json()).unwrap(), s);
        assert!(Scaler::from_json("standard", &serde_json::json!({"bogus": 1})).is_err());
    }
}
