//! The params file: a fitted scaler as JSON a person can read.
//!
//! ```json
//! {"method": "standard", "options": {"with_mean": true, "with_std": true},
//!  "n_features": 2, "n_samples_seen": [5, 5], "mean": [..], "var": [..], "scale": [..]}
//! ```
//! Field names follow scikit-learn's attributes without the trailing underscore.
//! NaN (an all-NaN feature) is written as `null`, ±inf (robust's `scale` for an empty
//! quantile range with `unit_variance`) as the strings `"inf"` and `"-inf"`, so that
//! every fitted value loads back as it was. `input_dtype` (`"float32"` or `"float64"`)
//! is the dtype the scaler was fitted on (it sets min-max's and max-abs's zero-scale
//! threshold); a file without it was fitted on float32.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{FitState, FittedScaler, InputDtype, Scaler};
use crate::error::{Error, Result};
use crate::stats::Moments;

/// A per-feature number in the file: JSON has no NaN or infinities.
#[derive(Clone, Copy, Debug)]
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_nan() => s.serialize_none(),
            v if v == f64::INFINITY => s.serialize_str("inf"),
            v if v == f64::NEG_INFINITY => s.serialize_str("-inf"),
            v => s.serialize_f64(v),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(Num(f64::NAN)),
            Some(Raw::Number(v)) => Ok(Num(v)),
            Some(Raw::Text(t)) => match t.to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" | "+infinity" => Ok(Num(f64::INFINITY)),
                "-inf" | "-infinity" => Ok(Num(f64::NEG_INFINITY)),
                "nan" => Ok(Num(f64::NAN)),
                _ => Err(serde::de::Error::custom(format!(
                    "'{t}' is not a number (expected a number, null, \"inf\" or \"-inf\")"
                ))),
            },
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct ParamsFile {
    method: String,
    options: serde_json::Value,
    #[serde(default)]
    n_features: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n_samples_seen: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    var: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_min: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_max: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_range: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_abs: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    center: Option<Vec<Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scale: Option<Vec<Num>>,
    /// Non-NaN count per feature (mergeable state for partial_fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<Vec<u64>>,
}

fn opt(v: impl IntoIterator<Item = f64>) -> Option<Vec<Num>> {
    Some(v.into_iter().map(Num).collect())
}

fn need(field: &Option<Vec<Num>>, name: &str, n: usize) -> Result<Vec<f64>> {
    let v = field.as_ref().ok_or_else(|| Error::InvalidParameter(format!("params file lacks '{name}'")))?;
    if v.len() != n {
        return Err(Error::InvalidParameter(format!(
            "params file: '{name}' has {} values, n_features is {n}",
            v.len()
        )));
    }
    Ok(v.iter().map(|x| x.0).collect())
}

impl FittedScaler {
    /// scikit-learn's `scale_` per feature (what the transform divides by).
    pub fn scale(&self) -> Option<Vec<f64>> {
        let (_, inv) = self.center_inv_scale()?;
        let mut s: Vec<f64> = inv.iter().map(|i| 1.0 / i).collect();
        if let Scaler::MinMax(o) = self.scaler {
            // scikit-learn's MinMaxScaler.scale_ = (MAX − MIN) / data_range
            s = inv.iter().map(|i| i * (o.feature_range.1 - o.feature_range.0)).collect();
        }
        Some(s)
    }

    /// The params file's JSON text.
    pub fn to_json(&self) -> String {
        let mut f = ParamsFile {
            method: self.scaler.method().into(),
            options: self.scaler.options_json(),
            n_features: self.n_features,
            ..Default::default()
        };
        match &self.state {
            FitState::Moments(m) => {
                f.input_dtype = Some(self.input_dtype.name().into());
                f.count = Some(m.iter().map(|s| s.count).collect());
                let scale = self.scale().unwrap_or_default();
                match self.scaler {
                    Scaler::Standard(_) => {
                        f.n_samples_seen = f.count.clone();
                        f.mean = opt(m.iter().map(|s| s.mean));
                        f.var = opt(m.iter().map(|s| s.var()));
                        f.scale = opt(scale);
                    }
                    Scaler::MinMax(o) => {
                        f.n_samples_seen = Some(m.iter().map(|s| s.count + s.nan_count).collect());
                        f.data_min = opt(m.iter().map(|s| s.min));
                        f.data_max = opt(m.iter().map(|s| s.max));
                        f.data_range = opt(m.iter().map(|s| s.max - s.min));
                        f.min = opt(m.iter().zip(&scale).map(|(s, sc)| o.feature_range.0 - s.min * sc));
                        f.scale = opt(scale);
                    }
                    _ => {
                        f.n_samples_seen = Some(m.iter().map(|s| s.count + s.nan_count).collect());
                        f.max_abs = opt(m.iter().map(|s| s.max_abs()));
                        f.scale = opt(scale);
                    }
                }
            }
            FitState::Robust { center, scale } => {
                f.center = opt(center.iter().copied());
                f.scale = opt(scale.iter().copied());
            }
            FitState::Stateless => {}
        }
        serde_json::to_string_pretty(&f).expect("params serialize")
    }

    /// Load a params file's JSON text.
    pub fn from_json(text: &str) -> Result<FittedScaler> {
        let f: ParamsFile = serde_json::from_str(text)
            .map_err(|e| Error::InvalidParameter(format!("params file is not valid: {e}")))?;
        let scaler = Scaler::from_json(&f.method, &f.options)?;
        let input_dtype = match f.input_dtype.as_deref() {
            None | Some("float32") => InputDtype::Float32,
            Some("float64") => InputDtype::Float64,
            Some(other) => {
                return Err(Error::InvalidParameter(format!(
                    "params file: input_dtype '{other}' is not float32 or float64"
                )))
            }
        };
        if matches!(scaler, Scaler::Log(_)) {
            return Ok(FittedScaler { scaler, n_features: f.n_features, state: FitState::Stateless, input_dtype });
        }
        let n = f.n_features.ok_or_else(|| Error::InvalidParameter("params file lacks 'n_features'".into()))?;
        let count = f.count.clone().filter(|v| v.len() == n).unwrap_or(vec![1; n]);
        // Per-feature moments holding only what the method keeps (the rest NaN).
        let moments = |mean: &[f64], var: &[f64], lo: &[f64], hi: &[f64]| {
            FitState::Moments(
                (0..n)
                    .map(|j| Moments {
                        count: count[j],
                        nan_count: 0,
                        mean: mean[j],
                        m2: var[j] * count[j] as f64,
                        min: lo[j],
                        max: hi[j],
                    })
                    .collect(),
            )
        };
        let nan = vec![f64::NAN; n];
        let state = match scaler {
            Scaler::Robust(_) => {
                FitState::Robust { center: need(&f.center, "center", n)?, scale: need(&f.scale, "scale", n)? }
            }
            Scaler::Standard(_) => moments(&need(&f.mean, "mean", n)?, &need(&f.var, "var", n)?, &nan, &nan),
            Scaler::MinMax(_) => {
                moments(&nan, &nan, &need(&f.data_min, "data_min", n)?, &need(&f.data_max, "data_max", n)?)
            }
            _ => moments(&nan, &nan, &vec![0.0; n], &need(&f.max_abs, "max_abs", n)?),
        };
        Ok(FittedScaler { scaler, n_features: Some(n), state, input_dtype })
    }
}
