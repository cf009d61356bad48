//! The topology of a production deployment on one machine: two app instances (two
//! `sendinchat-host up` processes) sharing one database and one Redis, behind two Pushpin nodes
//! that each route to both instances and each receive every publish (`grip_publish_urls` lists
//! both). Clients reach each node through its own [`TestApp`] view (HTTP and WebSockets through
//! that node), and the tests break one piece at a time.
use std::time::Duration;

use super::{AppOptions, PushpinProcess, SharedState, TestApp, client, port_of};
use crate::processes::{HostProcess, RedisServer, TcpProxy, TestServices, free_port};

/// Which shared services a test needs to break, and the topology's size.
pub struct TopologyOptions {
    /// A private Redis, for tests that stop it.
    pub private_redis: bool,
    /// Instances reach the database through a [`TcpProxy`], for tests that cut it.
    pub database_proxy: bool,
    /// How many app instances and Pushpin nodes (two of each unless set).
    pub instances: usize,
    pub nodes: usize,
    /// The instances' variables and flags; its Redis is the private one when `private_redis`.
    pub app: AppOptions,
}

impl Default for TopologyOptions {
    fn default() -> Self {
        Self { private_redis: false, database_proxy: false, instances: 2, nodes: 2, app: AppOptions::default() }
    }
}

pub struct Topology {
    shared: SharedState,
    instances: Vec<Option<HostProcess>>,
    app_ports: Vec<u16>,
    /// `None` while a node is down.
    pushpins: Vec<Option<PushpinProcess>>,
    /// Each node's client and publish ports, kept across restarts.
    pushpin_ports: Vec<(u16, u16)>,
    nodes: Vec<TestApp>,
    redis: Option<RedisServer>,
    database_proxy: Option<TcpProxy>,
}

impl Topology {
    /// Starts the topology on the shared services, or the stand-ins `options` asks for; `None`,
    /// with a note, when the suite targets an external app (this process cannot start, kill or
    /// restart its processes).
    pub fn start(options: TopologyOptions) -> Option<Self> {
        if TestApp::is_external() {
            eprintln!(
                "skipped: starts its own app instances and Pushpin nodes, not possible against SENDINCHAT_BASE_URL"
            );
            return None;
        }
        Some(Self::try_start(options).expect("the topology starts"))
    }

    fn try_start(topology_options: TopologyOptions) -> anyhow::Result<Self> {
        assert!(topology_options.instances >= 1 && topology_options.nodes >= 1, "at least one instance and one node");
        let redis = if topology_options.private_redis { Some(RedisServer::start()?) } else { None };
        let options = AppOptions {
            redis: redis.as_ref().map(RedisServer::url).or(topology_options.app.redis),
            ..topology_options.app
        };
        let mut shared = SharedState::new(&options)?;
        let database_proxy = if topology_options.database_proxy {
            let database = TestServices::host_and_port(&shared.database_url);
            let proxy = TcpProxy::start(&database)?;
            shared.app_database_url =
                shared.database_url.replacen(&database, &format!("127.0.0.1:{}", proxy.port()), 1);
            Some(proxy)
        } else {
            None
        };
        let pushpin_ports = (0..topology_options.nodes)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let publish_ports: Vec<u16> = pushpin_ports.iter().map(|(_, publish)| *publish).collect();
        let host_options = shared.host_options(&options, &publish_ports, pushpin_ports[0].0);
        // One after the other: compiling components on a loaded 2-core machine twice at once
        // only makes both slower.
        let instances = (0..topology_options.instances)
            .map(|_| HostProcess::start(&host_options))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let app_ports = instances.iter().map(|host| port_of(host.base_url())).collect::<anyhow::Result<Vec<_>>>()?;
        let mut pushpins = Vec::new();
        let mut nodes = Vec::new();
        for (index, (client_port, publish_port)) in pushpin_ports.iter().enumerate() {
            let targets = targets_of_node(&app_ports, index);
            let pushpin = PushpinProcess::start(&targets, *client_port, *publish_port, &shared.grip_sig_key)?;
            nodes.push(TestApp {
                base_url: pushpin.http_base_url(),
                host: None,
                ws_base_url: pushpin.ws_base_url(),
                admin_token: shared.admin_token.clone(),
                jwt_secret: shared.jwt_secret.clone(),
                database_url: Some(shared.database_url.clone()),
                agent: crate::processes::http_client(client::REQUEST_TIMEOUT),
                pushpin: None,
            });
            pushpins.push(Some(pushpin));
        }
        Ok(Self {
            shared,
            instances: instances.into_iter().map(Some).collect(),
            app_ports,
            pushpins,
            pushpin_ports,
            nodes,
            redis,
            database_proxy,
        })
    }

    /// The app as seen through Pushpin node `index`: its HTTP and WebSocket URLs are that node's.
    /// An owned view, so clients can keep it while the test stops and starts processes.
    pub fn node(&self, index: usize) -> TestApp {
        self.nodes[index].view()
    }

    /// App instance `index` reached directly, not through Pushpin (as nothing but the gateways
    /// should reach it).
    pub fn instance(&self, index: usize) -> TestApp {
        let host = self.instances[index].as_ref().expect("the instance is running");
        TestApp { base_url: host.base_url().to_owned(), ..self.nodes[0].view() }
    }

    /// App instance `index`'s log.
    pub fn instance_log(&self, index: usize) -> String {
        self.instances[index].as_ref().map(HostProcess::log).unwrap_or_default()
    }

    /// The app's database, to compare what clients saw with what is stored.
    pub fn database(&self) -> postgres::Client {
        postgres::Client::connect(&self.shared.database_url, postgres::NoTls).expect("connect to the app's database")
    }

    /// `kill -9` of app instance `index`: in-flight requests are cut off, nothing is cleaned up.
    pub fn kill_instance(&mut self, index: usize) {
        let host = self.instances[index].take().expect("the instance is running");
        host.kill_hard(Duration::from_secs(30)).expect("the instance dies");
    }

    /// Stops Pushpin node `index` (its clients' connections drop).
    pub fn stop_pushpin(&mut self, index: usize) {
        self.pushpins[index] = None;
    }

    pub fn is_pushpin_up(&self, index: usize) -> bool {
        self.pushpins[index].is_some()
    }

    /// Starts Pushpin node `index` again on the same ports.
    pub fn start_pushpin(&mut self, index: usize) {
        let (client_port, publish_port) = self.pushpin_ports[index];
        let targets = targets_of_node(&self.app_ports, index);
        let pushpin = PushpinProcess::start(&targets, client_port, publish_port, &self.shared.grip_sig_key)
            .expect("pushpin restarts");
        self.pushpins[index] = Some(pushpin);
    }

    /// The private Redis (started with `private_redis`).
    pub fn redis(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("the topology was started with a private Redis")
    }

    /// The forwarder between the instances and the database (started with `database_proxy`).
    pub fn database_proxy(&self) -> &TcpProxy {
        self.database_proxy.as_ref().expect("the topology was started with a database proxy")
    }

    /// The resident memory of every instance's and node's processes in KiB, each labelled with
    /// its instance or node.
    pub fn memory_kib(&self) -> Vec<(String, u64)> {
        let instances = self
            .instances
            .iter()
            .enumerate()
            .filter_map(|(index, host)| Some((format!("app {index}"), host.as_ref()?.memory_kib())));
        let nodes = self
            .pushpins
            .iter()
            .enumerate()
            .filter_map(|(index, node)| Some((format!("node {index}"), node.as_ref()?.memory_kib())));
        instances
            .chain(nodes)
            .flat_map(|(label, processes)| {
                processes.into_iter().map(move |(command, kib)| (format!("{label} {command}"), kib))
            })
            .collect()
    }

    /// Node 0's Pushpin delivery settings (every node has the same), for benchmark reports.
    pub fn pushpin_settings(&self) -> String {
        self.pushpins.iter().flatten().next().map(PushpinProcess::delivery_settings).unwrap_or_default()
    }

    /// Every node's log of Pushpin's requests to the app, for benchmarks.
    pub fn zurl_log(&self) -> String {
        self.pushpins.iter().flatten().map(PushpinProcess::zurl_log).collect::<Vec<_>>().join("\n-----\n")
    }

    /// Every instance's and node's log, for a failed test's message.
    pub fn log(&self) -> String {
        let instances = self.instances.iter().flatten().map(HostProcess::log);
        let nodes = self.pushpins.iter().flatten().map(PushpinProcess::log);
        instances.chain(nodes).collect::<Vec<_>>().join("\n-----\n")
    }
}

/// The app instances as node `index` lists them: Pushpin sends each request to the first that
/// accepts connections (deploy/pushpin/routes.in), so node `index` starts with instance `index`
/// and the nodes spread the load while each can fail over to every instance.
fn targets_of_node(app_ports: &[u16], index: usize) -> Vec<u16> {
    let mut targets = app_ports.to_vec();
    targets.rotate_left(index % app_ports.len());
    targets
}
