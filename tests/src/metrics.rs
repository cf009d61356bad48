//! Reading the host's metrics page (OpenMetrics text) in tests.

/// The sum of the samples `name{...}` whose labels include every one of `labels`; `None` when
/// there is no such series (so a renamed or missing metric is not read as a zero).
pub fn try_sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// As `try_sample`, for a series that must be there.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    try_sample(text, name, labels).unwrap_or_else(|| panic!("no series {name} with {labels:?} in:\n{text}"))
}
