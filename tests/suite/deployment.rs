//! Deployment material (issue 8): the manifests parse, name what the app needs, agree with
//! spin.toml, and the HTTP-only variant runs.
use std::collections::BTreeSet;
use std::time::Duration;

use sendinchat_tests::app::{AppOptions, ChatSocket, TestApp, private_app};
use sendinchat_tests::processes::build::workspace_root;
use serde_json::{Value, json};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Every document of a multi-document YAML file, as JSON values.
fn yaml_documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap_or_else(|error| panic!("{path}: {error}")))
        .collect()
}

fn toml_file(path: &str) -> toml::Table {
    read(path).parse().unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|document| document["kind"] == kind).collect()
}

/// Variables spin.toml requires (no default): what every deployment must supply.
fn required_variables(manifest: &toml::Table) -> BTreeSet<String> {
    manifest["variables"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, spec)| spec.get("required").and_then(toml::Value::as_bool) == Some(true))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn kubernetes_manifests_are_well_formed_and_supply_every_required_variable() {
    let app = yaml_documents("deploy/kubernetes/spinapp.yaml");
    let pushpin = yaml_documents("deploy/kubernetes/pushpin.yaml");
    let job = yaml_documents("deploy/kubernetes/migrations-job.yaml");
    let secrets = yaml_documents("deploy/kubernetes/secrets.example.yaml");
    for document in app.iter().chain(&pushpin).chain(&job).chain(&secrets) {
        for field in ["apiVersion", "kind"] {
            assert!(document[field].is_string(), "missing {field}: {document}");
        }
        assert!(document["metadata"]["name"].is_string(), "unnamed: {document}");
    }

    let executor = of_kind(&app, "SpinAppExecutor")[0];
    let spin_app = of_kind(&app, "SpinApp")[0];
    assert_eq!(spin_app["spec"]["executor"], executor["metadata"]["name"]);
    let spin_image = executor["spec"]["deploymentConfig"]["spinImage"].as_str().unwrap();
    let version: Vec<u32> =
        spin_image.rsplit(":v").next().unwrap().split('.').take(2).map(|part| part.parse().unwrap()).collect();
    assert!(version >= vec![4, 1], "spin-sdk 7 components need Spin 4.1+, got {spin_image}");
    assert!(spin_app["spec"]["image"].is_string());

    let secret_keys: BTreeSet<String> = secrets[0]["stringData"].as_object().unwrap().keys().cloned().collect();
    let supplied_from_secret: BTreeSet<String> = spin_app["spec"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|variable| variable["valueFrom"]["secretKeyRef"]["name"] == secrets[0]["metadata"]["name"])
        .map(|variable| {
            let key = variable["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap().to_owned();
            assert!(secret_keys.contains(&key), "secret key {key} is not in the example Secret");
            variable["name"].as_str().unwrap().to_owned()
        })
        .collect();
    let manifest = toml_file("spin.toml");
    assert_eq!(supplied_from_secret, required_variables(&manifest), "secrets supplied vs spin.toml's required ones");
    let declared = manifest["variables"].as_table().unwrap();
    for variable in spin_app["spec"]["variables"].as_array().unwrap() {
        assert!(declared.contains_key(variable["name"].as_str().unwrap()), "{variable}");
    }

    let routes: Vec<String> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trigger| trigger["route"].as_str().unwrap().trim_end_matches("/...").to_owned())
        .collect();
    for probe in ["liveness", "readiness"] {
        let path = spin_app["spec"]["checks"][probe]["httpGet"]["path"].as_str().unwrap();
        assert!(routes.iter().any(|route| path.starts_with(route.as_str())), "{probe} probe {path} has no route");
    }
    let autoscaler = of_kind(&app, "HorizontalPodAutoscaler")[0];
    assert_eq!(autoscaler["spec"]["scaleTargetRef"]["name"], spin_app["metadata"]["name"]);
    assert_eq!(spin_app["spec"]["enableAutoscaling"], true);

    let migrate = &job[0]["spec"]["template"]["spec"]["containers"][0];
    let migrations_key = migrate["env"][0]["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap();
    assert!(secret_keys.contains(migrations_key), "the migrations Job's {migrations_key} is not in the example Secret");
    for document in app.iter().chain(&pushpin).chain(&job).chain(&secrets) {
        assert_eq!(document["metadata"]["namespace"], "sendinchat", "every object in one namespace: {document}");
    }
    let otel = &executor["spec"]["deploymentConfig"]["otel"]["exporter_otlp_endpoint"];
    assert!(otel.as_str().is_some_and(|endpoint| endpoint.contains("otel-collector")), "Spin exports to the collector");
    let routes_config = of_kind(&pushpin, "ConfigMap")[0]["data"]["routes"].as_str().unwrap();
    assert!(routes_config.contains(&format!("{}.", spin_app["metadata"]["name"].as_str().unwrap())));
    assert!(routes_config.contains("over_http"), "WebSockets must become WebSocket-over-HTTP");
    let publish =
        of_kind(&pushpin, "Service").into_iter().find(|service| service["metadata"]["name"] == "pushpin-publish");
    assert_eq!(publish.expect("a publish service")["spec"]["type"], "ClusterIP", "publishing stays inside the cluster");
    assert_only_the_app_may_publish(spin_app, &pushpin);
    assert_every_pushpin_node_gets_every_publish(spin_app, &pushpin);
}

/// Pushpin's publish port takes no credential, so a NetworkPolicy on the Pushpin pods lets only
/// the app's pods (SpinKube's `core.spinkube.dev/app-name` label) reach it.
fn assert_only_the_app_may_publish(spin_app: &Value, pushpin: &[Value]) {
    let nodes = of_kind(pushpin, "StatefulSet")[0];
    let policy = of_kind(pushpin, "NetworkPolicy")
        .into_iter()
        .find(|policy| policy["spec"]["podSelector"]["matchLabels"] == nodes["spec"]["selector"]["matchLabels"])
        .expect("a NetworkPolicy on the Pushpin pods");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]), "{policy}");
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    // A rule without ports opens every port; a port may be named or numbered.
    let opens = |rule: &Value, names: &[Value]| match rule["ports"].as_array() {
        None => true,
        Some(ports) => ports.is_empty() || ports.iter().any(|port| names.contains(&port["port"])),
    };
    let publishers: Vec<&Value> = rules.iter().filter(|rule| opens(rule, &[json!("publish"), json!(5561)])).collect();
    assert_eq!(publishers.len(), 1, "one rule opens the publish port: {policy}");
    let app_pods =
        json!([{"podSelector": {"matchLabels": {"core.spinkube.dev/app-name": spin_app["metadata"]["name"]}}}]);
    assert_eq!(publishers[0]["from"], app_pods, "only the app's pods may publish");
    let clients_reach = |rule: &&Value| opens(rule, &[json!("client"), json!(7999)]) && rule["from"].is_null();
    assert!(rules.iter().any(|rule| clients_reach(&rule)), "clients reach the client port");
}

/// The app publishes to each Pushpin node by its stable name, and its outbound policy allows
/// every one of them (issue 16).
fn assert_every_pushpin_node_gets_every_publish(spin_app: &Value, pushpin: &[Value]) {
    let nodes = of_kind(pushpin, "StatefulSet")[0];
    let service = nodes["spec"]["serviceName"].as_str().expect("a governing Service");
    let replicas = nodes["spec"]["replicas"].as_u64().unwrap();
    assert!(replicas >= 2, "more than one Pushpin node");
    let variable = |name: &str| -> String {
        let found = spin_app["spec"]["variables"].as_array().unwrap().iter().find(|variable| variable["name"] == name);
        found.and_then(|variable| variable["value"].as_str()).unwrap_or_else(|| panic!("{name} is set")).to_owned()
    };
    let urls = variable("grip_publish_urls");
    let urls: Vec<&str> = urls.split(',').collect();
    let statefulset = nodes["metadata"]["name"].as_str().unwrap();
    let expected: Vec<String> = (0..replicas)
        .map(|ordinal| format!("http://{statefulset}-{ordinal}.{service}.sendinchat.svc.cluster.local:5561"))
        .collect();
    assert_eq!(urls, expected, "grip_publish_urls names every node of the StatefulSet");
    let hosts = variable("grip_publish_hosts");
    let domain = hosts.strip_prefix("http://*.").and_then(|rest| rest.strip_suffix(":5561")).expect("a wildcard");
    assert!(urls.iter().all(|url| url.contains(&format!(".{domain}:5561"))), "{hosts} allows every node");
    let headless = of_kind(pushpin, "Service").into_iter().find(|candidate| candidate["metadata"]["name"] == service);
    assert_eq!(headless.expect("the governing Service")["spec"]["clusterIP"], "None", "one DNS name per node");
}

#[test]
fn the_runtime_config_uses_known_providers_and_declared_variables() {
    let config = toml_file("deploy/runtime-config.toml");
    let declared = toml_file("spin.toml")["variables"].as_table().unwrap().clone();
    for provider in config["variables_provider"].as_array().unwrap() {
        let kind = provider["type"].as_str().unwrap();
        assert!(["vault", "static", "env", "azure_key_vault"].contains(&kind), "unknown provider {kind}");
        if let Some(values) = provider.get("values").and_then(toml::Value::as_table) {
            for name in values.keys() {
                assert!(declared.contains_key(name), "static value for undeclared variable {name}");
            }
        }
    }
    for section in ["outbound_pg", "outbound_redis"] {
        assert!(config[section]["max_connections"].as_integer().is_some_and(|max| max > 0));
    }
}

#[test]
fn the_http_only_manifest_is_up_to_date_with_spin_toml() {
    let check = std::process::Command::new(workspace_root().join("scripts/http-only-manifest.sh"))
        .arg("--check")
        .output()
        .expect("run the generator");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn the_http_only_manifest_matches_the_main_one_without_the_redis_trigger() {
    let main = toml_file("spin.toml");
    let http_only = toml_file("deploy/akamai/spin.toml");
    assert!(http_only.get("application").and_then(|application| application.get("trigger")).is_none());
    assert!(http_only["trigger"].get("redis").is_none(), "no Redis trigger");
    assert_eq!(main["trigger"]["http"], http_only["trigger"]["http"], "same routes");
    assert_eq!(http_only["variables"]["chat_publish_mode"]["default"].as_str(), Some("direct"));
    let mut expected_variables = main["variables"].as_table().unwrap().clone();
    expected_variables.insert("chat_publish_mode".into(), http_only["variables"]["chat_publish_mode"].clone());
    assert_eq!(&expected_variables, http_only["variables"].as_table().unwrap());
    let main_components = main["component"].as_table().unwrap();
    let http_components = http_only["component"].as_table().unwrap();
    assert_eq!(
        main_components.keys().filter(|id| *id != "chat-fanout").collect::<Vec<_>>(),
        http_components.keys().collect::<Vec<_>>()
    );
    for (id, component) in http_components {
        let main_component = &main_components[id];
        assert_eq!(component.get("variables"), main_component.get("variables"), "{id}");
        assert_eq!(component.get("allowed_outbound_hosts"), main_component.get("allowed_outbound_hosts"), "{id}");
        let source = component["source"].as_str().unwrap();
        assert_eq!(source, format!("../../{}", main_component["source"].as_str().unwrap()), "{id}");
    }
}

#[test]
fn the_http_only_manifest_runs_and_delivers_events_without_a_redis_trigger() {
    let Some(app) = private_app(AppOptions::default().manifest(workspace_root().join("deploy/akamai/spin.toml")))
    else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = app.create_room(&alice, &json!({"name": "edge", "member_ids": [bob.id]}));
    assert_eq!(room.status, 201, "{}", room.text);
    let room = room.body["id"].as_i64().unwrap();
    let mut socket = ChatSocket::join(&app, room, &bob).unwrap_or_else(|error| panic!("{error}\n{}", app.log()));
    let sent = app.send_message(&alice, &json!({"chat_id": room, "content": "edge"}));
    assert_eq!(sent.status, 201);
    let event = socket.next_of_type("message", Duration::from_secs(10)).expect("delivered");
    assert_eq!(event["message"]["content"], "edge");
    // Delivered without a Redis trigger: this host subscribed to no channel, the main one's did.
    let subscriptions =
        |app: &TestApp| app.log().lines().filter(|line| line.contains(" channel ") && line.contains(" -> ")).count();
    assert_eq!(subscriptions(&app), 0, "{}", app.log());
    assert!(subscriptions(TestApp::shared()) > 0, "{}", TestApp::shared().log());
}

/// The Grafana dashboard charts only metrics the host serves, and the Kubernetes monitoring
/// manifest wires the collector's metrics port into the scrape configuration.
#[test]
fn the_dashboard_and_the_scrape_example_name_what_is_served() {
    let monitoring = yaml_documents("deploy/kubernetes/monitoring.yaml");
    let collector = of_kind(&monitoring, "Service")[0];
    let metrics_port = collector["spec"]["ports"].as_array().unwrap().iter().find(|port| port["name"] == "metrics");
    let metrics_port = metrics_port.expect("the collector exposes metrics")["port"].as_u64().unwrap();
    let scrape = of_kind(&monitoring, "ConfigMap").into_iter().find_map(|map| map["data"]["prometheus.yml"].as_str());
    let scrape: Value = serde_norway::from_str(scrape.expect("a scrape configuration")).unwrap();
    let target = scrape["scrape_configs"][0]["static_configs"][0]["targets"][0].as_str().unwrap();
    assert!(target.starts_with("otel-collector.") && target.ends_with(&format!(":{metrics_port}")), "{target}");

    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/sendinchat-host.json")).unwrap();
    let expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    let name = regex_lite::Regex::new(r"sendinchat_host_[a-z_]+").unwrap();
    let referenced: BTreeSet<String> =
        expressions.iter().flat_map(|expr| name.find_iter(expr).map(|found| found.as_str().to_owned())).collect();
    assert!(referenced.len() >= 10, "{referenced:?}");

    let Some(app) = private_app(AppOptions::default().host_arg("--metrics-listen=127.0.0.1:0")) else {
        return;
    };
    // Traffic that touches every part the dashboard charts: Postgres, the Redis trigger.
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = app.create_room(&alice, &json!({"name": "metrics", "member_ids": [bob.id]}));
    let sent = app.send_message(&alice, &json!({"chat_id": room.body["id"], "content": "counted"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let metrics_url = app.metrics_url().expect("the host serves metrics");
    let scrape = || ureq::get(metrics_url).call().unwrap().into_body().read_to_string().unwrap();
    let handled = |text: &String| text.contains("sendinchat_host_redis_messages_total{");
    let served = sendinchat_tests::wait::until(Duration::from_secs(10), || Some(scrape()).filter(handled))
        .expect("the chat event reaches the Redis trigger");
    // Families are declared by `# TYPE <name> <type>`; samples add _total, _bucket, _sum, _count.
    let families: BTreeSet<&str> =
        served.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    for metric in &referenced {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| metric.strip_suffix(suffix).filter(|base| families.contains(base)))
            .unwrap_or(metric);
        assert!(
            families.contains(family),
            "the dashboard charts {metric}, which the host does not serve: {families:?}"
        );
    }
}
