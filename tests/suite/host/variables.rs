//! `spin:variables`: defaults, templates, environment overrides and start-up checks.

use sendinchat_tests::processes::{HostProcess, StartOutcome};

use super::{conformance_options, get_json, shared_app};

#[test]
fn component_variables_expand_templates_over_defaults() {
    let (_, body) = get_json(&shared_app().url("/probe/variable/greeting"));
    assert_eq!(body["value"], "hello, world");
    let (_, body) = get_json(&shared_app().url("/probe/variable/literal"));
    assert_eq!(body["value"], "fixed");
}

#[test]
fn undefined_and_invalid_names_are_reported_as_spin_does() {
    let (_, body) = get_json(&shared_app().url("/probe/variable/not_declared"));
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("Undefined") && error.contains("not_declared"), "{error}");
    let (_, body) = get_json(&shared_app().url("/probe/variable/Not-Valid"));
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("InvalidName"), "{error}");
}

#[test]
fn the_environment_overrides_a_default() {
    let options = conformance_options(None).unwrap().env("SPIN_VARIABLE_GREETING", "bonjour");
    let host = HostProcess::start(&options).unwrap();
    let (_, body) = get_json(&format!("{}/probe/variable/greeting", host.base_url()));
    assert_eq!(body["value"], "bonjour, world");
}

#[test]
fn a_missing_required_variable_stops_start_up() {
    let options = conformance_options(None).unwrap().without_env("SPIN_VARIABLE_DATABASE_URL");
    match HostProcess::try_start(&options).unwrap() {
        StartOutcome::Ready(_) => panic!("the host started without database_url"),
        StartOutcome::Exited { status, log } => {
            assert!(!status.success());
            assert!(log.contains("database_url") && log.contains("SPIN_VARIABLE_DATABASE_URL"), "{log}");
            assert!(!log.contains("listening on"), "{log}");
        }
    }
}
