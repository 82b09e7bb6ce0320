//! [`KubernetesRuntime`]: pods through the Kubernetes API.
//!
//! - connect: credentials as kubectl finds them (`KUBECONFIG`, `~/.kube/config`, else the
//!   in-cluster service account);
//! - `preflight`: the server's version (API reachable, credentials accepted) and whether we may
//!   create what a run needs (a SelfSubjectAccessReview) — each failure is exit 3 with the
//!   server's own message and what to check;
//! - `begin_run`: the run's namespace (unless one is given), and a ServiceAccount, Role and
//!   RoleBinding so scenario pods may create, watch and delete their action pods;
//! - `launch`: one pod (API call paced by the client's QPS/burst); its transitions come from
//!   the tier's one [`PodWatch`]; `wait_failed` resolves when the watch says it can never
//!   start;
//! - `kill`: delete with grace period 0; `remove`: delete, and wait until the watch saw it gone;
//! - `remove_run`: the run's namespace (waited for until gone), or its labelled objects in a
//!   namespace it did not create.

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, Namespace, ObjectFieldSelector, Pod, PodSpec, ResourceRequirements, ServiceAccount,
    Toleration,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, Config};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stampede_core::measure::Role as TierRole;
use stampede_runtime::{labels, Handle, LaunchSpec, Launched, NativeTimes, Runtime, RuntimeError};

use crate::options::{parse_toleration, ApiHostOverride, Callback, KubernetesOptions};
use crate::pace::Pacer;
use crate::watch::{PodWatch, CONDITION_SOURCE, WATCH_SOURCE};
use crate::{names, KubeError, KUBERNETES};

/// Env a scenario pod reads to find the namespace of its run (set by the tier that launched it).
pub const NAMESPACE_ENV: &str = "STAMPEDE_KUBERNETES_NAMESPACE";
/// Downward API: the node's and the pod's own address, for `callback = node_ip | pod_ip`.
pub const NODE_IP_ENV: &str = "STAMPEDE_NODE_IP";
pub const POD_IP_ENV: &str = "STAMPEDE_POD_IP";
/// The service account scenario pods run as (in the run's namespace).
pub const SERVICE_ACCOUNT: &str = "stampede-scenario";

/// How long `remove` and `remove_run` wait for the API to report a pod or namespace gone.
const GONE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct KubernetesRuntime {
    client: Client,
    options: KubernetesOptions,
    /// The API server's address as this client dials it (`host:port`).
    api_address: (String, u16),
    /// The namespace pods go to: the given one, the run's own (set by `begin_run`), or the one
    /// a scenario pod was told (env).
    namespace: Mutex<Option<String>>,
    pacer: Pacer,
    /// One watch per label selector (per launching tier).
    watches: tokio::sync::Mutex<HashMap<String, Arc<PodWatch>>>,
    /// Pod name → the watch that follows it.
    followed: Mutex<HashMap<String, Arc<PodWatch>>>,
    /// Pods we asked the API to delete (kill), so `remove` does not ask twice.
    deleted: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for KubernetesRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesRuntime").field("api_address", &self.api_address).field("options", &self.options).finish()
    }
}

impl KubernetesRuntime {
    /// A client with credentials as kubectl finds them.
    pub async fn connect(options: KubernetesOptions) -> Result<Self, RuntimeError> {
        let config = Config::infer().await.map_err(|e| KubeError::Config(e.to_string()).unavailable())?;
        Self::with_config(config, options)
    }

    /// A client for an explicit config (tests: a replay server).
    pub fn with_config(config: Config, options: KubernetesOptions) -> Result<Self, RuntimeError> {
        let host = config.cluster_url.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_owned();
        let port = config.cluster_url.port_u16().unwrap_or(if config.cluster_url.scheme_str() == Some("http") { 80 } else { 443 });
        let client = Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()).unavailable())?;
        let namespace = if !options.namespace.is_empty() {
            Some(options.namespace.clone())
        } else {
            std::env::var(NAMESPACE_ENV).ok().filter(|n| !n.is_empty())
        };
        let pacer = Pacer::new(options.qps, options.burst);
        Ok(KubernetesRuntime {
            client,
            options,
            api_address: (host, port),
            namespace: Mutex::new(namespace),
            pacer,
            watches: Default::default(),
            followed: Default::default(),
            deleted: Default::default(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api_is_loopback(&self) -> bool {
        let h = &self.api_address.0;
        h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Where children of this tier dial, resolved from `callback`.
    fn callback_mode(&self) -> Callback {
        match self.options.callback {
            Callback::Auto if self.options.host_network && self.api_is_loopback() => Callback::Loopback,
            Callback::Auto if self.options.host_network => Callback::NodeIp,
            Callback::Auto => Callback::PodIp,
            c => c,
        }
    }

    fn namespace(&self) -> Result<String, KubeError> {
        self.namespace.lock().expect("namespace lock").clone().ok_or(KubeError::NoNamespace)
    }

    fn own_namespace(&self) -> bool {
        self.options.namespace.is_empty()
    }

    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// The watch for the pods this tier launches, opened before the first of them is created.
    async fn watch_for(&self, spec: &LaunchSpec, ns: &str) -> Result<Arc<PodWatch>, KubeError> {
        let selector = names::selector(spec);
        let mut watches = self.watches.lock().await;
        if let Some(w) = watches.get(&selector) {
            return Ok(w.clone());
        }
        let w = PodWatch::start(self.pods(ns), selector.clone())
            .await
            .map_err(|source| KubeError::Watch { namespace: ns.to_owned(), selector: selector.clone(), source })?;
        watches.insert(selector, w.clone());
        Ok(w)
    }

    fn watch_of(&self, pod: &str) -> Option<Arc<PodWatch>> {
        self.followed.lock().expect("followed lock").get(pod).cloned()
    }

    /// KUBERNETES_SERVICE_HOST/PORT for scenario pods, per `api_host_override`.
    fn api_override(&self) -> Option<(String, String)> {
        match &self.options.api_host_override {
            ApiHostOverride::None => None,
            ApiHostOverride::Address(a) => a.rsplit_once(':').map(|(h, p)| (h.to_owned(), p.to_owned())),
            ApiHostOverride::Auto => {
                // A scenario pod that itself got an override passes it on (its own client dials it).
                if let (Ok(h), Ok(p)) = (std::env::var("KUBERNETES_SERVICE_HOST"), std::env::var("KUBERNETES_SERVICE_PORT")) {
                    if std::env::var(NAMESPACE_ENV).is_ok() {
                        return Some((h, p));
                    }
                }
                (self.options.host_network && self.api_is_loopback()).then(|| (self.api_address.0.clone(), self.api_address.1.to_string()))
            }
        }
    }

    /// The pod for `spec` in `ns`.
    pub fn pod(&self, spec: &LaunchSpec, ns: &str) -> Pod {
        let o = &self.options;
        let scenario = spec.role == TierRole::Scenario;
        let mut env: Vec<EnvVar> =
            spec.env.iter().map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() }).collect();
        for (name, field) in [(NODE_IP_ENV, "status.hostIP"), (POD_IP_ENV, "status.podIP")] {
            env.push(EnvVar {
                name: name.to_owned(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { field_path: field.to_owned(), ..Default::default() }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        if scenario {
            env.push(EnvVar { name: NAMESPACE_ENV.to_owned(), value: Some(ns.to_owned()), ..Default::default() });
            if let Some((h, p)) = self.api_override() {
                env.push(EnvVar { name: "KUBERNETES_SERVICE_HOST".into(), value: Some(h), ..Default::default() });
                env.push(EnvVar { name: "KUBERNETES_SERVICE_PORT".into(), value: Some(p), ..Default::default() });
            }
        }
        let quantities = |pairs: [(&str, &String); 2]| {
            let m: BTreeMap<String, Quantity> =
                pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| ((*k).to_owned(), Quantity((*v).clone()))).collect();
            (!m.is_empty()).then_some(m)
        };
        let resources = ResourceRequirements {
            requests: quantities([("cpu", &o.cpu_request), ("memory", &o.memory_request)]),
            limits: quantities([("cpu", &o.cpu_limit), ("memory", &o.memory_limit)]),
            ..Default::default()
        };
        let tolerations: Vec<Toleration> = o
            .tolerations
            .iter()
            .filter_map(|t| parse_toleration(t).ok())
            .map(|(key, value, effect)| Toleration {
                operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_owned()),
                key: Some(key),
                value,
                effect,
                ..Default::default()
            })
            .collect();
        Pod {
            metadata: ObjectMeta {
                name: Some(names::pod_name(spec)),
                namespace: Some(ns.to_owned()),
                labels: Some(spec.labels()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "stampede".into(),
                    image: Some(spec.image.clone()),
                    image_pull_policy: Some(o.image_pull_policy.as_str().to_owned()),
                    args: Some(spec.args.clone()),
                    env: Some(env),
                    resources: (resources != ResourceRequirements::default()).then_some(resources),
                    ..Default::default()
                }],
                restart_policy: Some("Never".into()),
                host_network: o.host_network.then_some(true),
                // Actions are disposable: no grace on delete. Scenarios are deleted after their
                // report is in, also with grace 0 (see `remove`).
                termination_grace_period_seconds: (!scenario).then_some(0),
                // Only scenario pods talk to the API; actions get no token volume (faster start).
                service_account_name: scenario.then(|| SERVICE_ACCOUNT.to_owned()),
                automount_service_account_token: Some(scenario),
                enable_service_links: Some(false),
                node_selector: (!o.node_selector.is_empty()).then(|| o.node_selector.clone()),
                tolerations: (!tolerations.is_empty()).then_some(tolerations),
                ..Default::default()
            }),
            status: None,
        }
    }

    async fn create_run_objects(&self, run_id: &str) -> Result<String, KubeError> {
        let mut run_labels = BTreeMap::new();
        run_labels.insert(labels::RUN.to_owned(), run_id.to_owned());
        run_labels.insert(labels::ROLE.to_owned(), "driver".to_owned());
        let meta = |name: &str, ns: Option<&str>| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: ns.map(str::to_owned),
            labels: Some(run_labels.clone()),
            ..Default::default()
        };
        let ns = if self.own_namespace() {
            let ns = names::namespace(run_id);
            self.pacer.acquire().await;
            Api::<Namespace>::all(self.client.clone())
                .create(&PostParams::default(), &Namespace { metadata: meta(&ns, None), ..Default::default() })
                .await
                .map_err(|source| KubeError::Create { what: format!("namespace {ns}"), source })?;
            ns
        } else {
            self.options.namespace.clone()
        };
        // In a namespace of its own the names need no run id; in a shared one they do.
        let rbac_name = if self.own_namespace() { SERVICE_ACCOUNT.to_owned() } else { format!("{SERVICE_ACCOUNT}-{run_id}") };
        self.create_in(&ns, &ServiceAccount { metadata: meta(SERVICE_ACCOUNT, Some(&ns)), ..Default::default() })
            .await
            .or_else(already_exists)
            .map_err(|source| KubeError::Create { what: format!("service account {ns}/{SERVICE_ACCOUNT}"), source })?;
        let role = Role {
            metadata: meta(&rbac_name, Some(&ns)),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                verbs: ["create", "get", "list", "watch", "delete", "deletecollection"].map(String::from).to_vec(),
                ..Default::default()
            }]),
        };
        self.create_in(&ns, &role)
            .await
            .map_err(|source| KubeError::Create { what: format!("role {ns}/{rbac_name}"), source })?;
        let binding = RoleBinding {
            metadata: meta(&rbac_name, Some(&ns)),
            role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: rbac_name.clone() },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: SERVICE_ACCOUNT.into(),
                namespace: Some(ns.clone()),
                ..Default::default()
            }]),
        };
        self.create_in(&ns, &binding)
            .await
            .map_err(|source| KubeError::Create { what: format!("role binding {ns}/{rbac_name}"), source })?;
        Ok(ns)
    }

    /// Creates `object` in namespace `ns`, paced as every create and delete is.
    async fn create_in<K>(&self, ns: &str, object: &K) -> Result<K, kube::Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.pacer.acquire().await;
        Api::<K>::namespaced(self.client.clone(), ns).create(&PostParams::default(), object).await
    }

    /// Whether this client may `verb` `resource` (in `ns`): the server's own answer.
    async fn may(&self, verb: &str, group: &str, resource: &str, ns: Option<&str>) -> Result<(bool, String), KubeError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    namespace: ns.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| KubeError::Create { what: "a self subject access review".into(), source })?;
        let status = r.status.unwrap_or_default();
        Ok((status.allowed, status.reason.unwrap_or_default()))
    }

    /// Delete the namespaces labelled with `run_id` (every stampede namespace when `None`) and
    /// wait until they are gone; returns how many.
    async fn delete_namespaces(&self, selector: &str) -> Result<usize, KubeError> {
        let api = Api::<Namespace>::all(self.client.clone());
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|source| KubeError::List { what: format!("namespaces labelled {selector}"), source })?;
        let names: Vec<String> = list.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
        for name in &names {
            self.pacer.acquire().await;
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(source) => return Err(KubeError::Delete { what: format!("namespace {name}"), source }),
            }
        }
        // Namespace deletion finalises asynchronously; the run is clean only when it is gone.
        let deadline = Instant::now() + GONE_TIMEOUT;
        for name in &names {
            loop {
                match api.get_opt(name).await {
                    Ok(None) => break,
                    Ok(Some(_)) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
                    Ok(Some(_)) => return Err(KubeError::NotGone { what: format!("namespace {name}"), after: GONE_TIMEOUT }),
                    Err(source) => return Err(KubeError::Get { what: format!("namespace {name}"), source }),
                }
            }
        }
        Ok(names.len())
    }

    /// Delete the labelled pods and RBAC objects in `ns` (a namespace stampede did not create).
    async fn delete_labelled_in(&self, ns: &str, selector: &str) -> Result<usize, KubeError> {
        let lp = ListParams::default().labels(selector);
        let dp = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
        let mut n = 0;
        let pods = self.pods(ns);
        let list = pods.list(&lp).await.map_err(|source| KubeError::List { what: format!("pods in {ns}"), source })?;
        n += list.items.len();
        if !list.items.is_empty() {
            self.pacer.acquire().await;
            pods.delete_collection(&dp, &lp)
                .await
                .map_err(|source| KubeError::Delete { what: format!("pods labelled {selector} in {ns}"), source })?;
        }
        macro_rules! delete_kind {
            ($t:ty, $what:literal) => {{
                let api = Api::<$t>::namespaced(self.client.clone(), ns);
                let list = api.list(&lp).await.map_err(|source| KubeError::List { what: format!("{} in {ns}", $what), source })?;
                for o in list.items {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    self.pacer.acquire().await;
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => n += 1,
                        Err(e) if is_not_found(&e) => {}
                        Err(source) => return Err(KubeError::Delete { what: format!("{} {ns}/{name}", $what), source }),
                    }
                }
            }};
        }
        delete_kind!(RoleBinding, "role binding");
        delete_kind!(Role, "role");
        delete_kind!(ServiceAccount, "service account");
        Ok(n)
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn already_exists<T: Default>(e: kube::Error) -> Result<T, kube::Error> {
    match e {
        kube::Error::Api(s) if s.code == 409 => Ok(T::default()),
        e => Err(e),
    }
}

#[async_trait]
impl Runtime for KubernetesRuntime {
    fn name(&self) -> &'static str {
        KUBERNETES
    }

    async fn preflight(&self, _image: &str) -> Result<String, RuntimeError> {
        let v = self.client.apiserver_version().await.map_err(|e| KubeError::Version(e).unavailable())?;
        // Whether we may do what a run needs, asked of the server (its RBAC, not our guess).
        let ns = self.namespace.lock().expect("namespace lock").clone();
        let checks: Vec<(&str, &str, &str, Option<&str>)> = if self.own_namespace() && ns.is_none() {
            vec![("create", "", "namespaces", None), ("delete", "", "namespaces", None)]
        } else {
            vec![("create", "", "pods", ns.as_deref()), ("watch", "", "pods", ns.as_deref())]
        };
        for (verb, group, resource, ns) in checks {
            let (allowed, reason) = self.may(verb, group, resource, ns).await.map_err(KubeError::unavailable)?;
            if !allowed {
                return Err(KubeError::Forbidden {
                    what: format!("{verb} {resource}{}", ns.map(|n| format!(" in namespace {n}")).unwrap_or_default()),
                    reason,
                }
                .unavailable());
            }
        }
        // The image is pulled (or not, with `Never`) by each node: a missing one shows per pod,
        // at once, as ErrImageNeverPull / ImagePullBackOff.
        Ok(format!("Kubernetes {} ({})", v.git_version, v.platform))
    }

    async fn begin_run(&self, run_id: &str) -> Result<(), RuntimeError> {
        let ns = self.create_run_objects(run_id).await.map_err(KubeError::unavailable)?;
        *self.namespace.lock().expect("namespace lock") = Some(ns);
        Ok(())
    }

    async fn callback_host(&self) -> Result<String, RuntimeError> {
        let from_env = |var: &str| {
            std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                KubeError::NoCallbackHost(format!(
                    "{var} is not set: this process is not a pod of this runtime; run the driver with --advertise HOST \
                     (an address pods can reach), or kubernetes = {{ callback = \"loopback\" }} on a one-node cluster"
                ))
                .unavailable()
            })
        };
        match self.callback_mode() {
            Callback::Loopback => Ok("127.0.0.1".to_owned()),
            Callback::NodeIp => from_env(NODE_IP_ENV),
            Callback::PodIp | Callback::Auto => from_env(POD_IP_ENV),
        }
    }

    fn children_dial_loopback(&self) -> bool {
        self.callback_mode() == Callback::Loopback
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError> {
        let launch_err = |e: KubeError| e.into_launch(&spec.instance_id);
        let ns = self.namespace().map_err(launch_err)?;
        let watch = self.watch_for(spec, &ns).await.map_err(launch_err)?;
        let pod = self.pod(spec, &ns);
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.followed.lock().expect("followed lock").insert(name.clone(), watch);
        self.pacer.acquire().await;
        self.pods(&ns)
            .create(&PostParams::default(), &pod)
            .await
            .map_err(|source| launch_err(KubeError::Create { what: format!("pod {ns}/{name}"), source }))?;
        let created = Instant::now();
        Ok(Launched { handle: Handle { id: name, detail: Some(ns) }, created: Some(created), started: created })
    }

    async fn wait_failed(&self, h: &Handle) -> String {
        let Some(w) = self.watch_of(&h.id) else { return std::future::pending().await };
        match w.wait_for(&h.id, |t| t.failed.clone()).await {
            Ok(why) => why,
            // The watch broke: the launch's own timeout decides, as without a watch.
            Err(_) => std::future::pending().await,
        }
    }

    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError> {
        let ns = h.detail.clone().unwrap_or_default();
        self.deleted.lock().expect("deleted lock").insert(h.id.clone());
        self.pacer.acquire().await;
        match self.pods(&ns).delete(&h.id, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(KubeError::Delete { what: format!("pod {ns}/{}", h.id), source }.into_control("kill", &h.id)),
        }
    }

    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError> {
        let watch = self.watch_of(&h.id);
        // Decided by what we asked, not by how far the watch got: the same calls every time.
        if !self.deleted.lock().expect("deleted lock").contains(&h.id) {
            self.kill(h).await?;
        }
        let Some(w) = watch else { return Ok(()) };
        let gone = tokio::time::timeout(GONE_TIMEOUT, w.wait_for(&h.id, |t| t.gone.then_some(()))).await;
        match gone {
            Ok(Ok(())) => {
                w.forget(&h.id);
                self.followed.lock().expect("followed lock").remove(&h.id);
                self.deleted.lock().expect("deleted lock").remove(&h.id);
                Ok(())
            }
            Ok(Err(why)) => Err(KubeError::WatchBroken(why).into_control("remove", &h.id)),
            Err(_) => Err(KubeError::NotGone { what: format!("pod {}", h.id), after: GONE_TIMEOUT }.into_control("remove", &h.id)),
        }
    }

    async fn native_times(&self, h: &Handle) -> NativeTimes {
        let Some(w) = self.watch_of(&h.id) else { return NativeTimes::default() };
        let t = w.track(&h.id);
        NativeTimes {
            started_unix_us: None,
            states: t.seen,
            source: WATCH_SOURCE,
            reference: t.api,
            reference_source: CONDITION_SOURCE,
            node: None,
        }
    }

    async fn is_running(&self, h: &Handle) -> bool {
        match self.watch_of(&h.id) {
            Some(w) => {
                let t = w.track(&h.id);
                !(t.ended || t.gone || t.failed.is_some())
            }
            None => false,
        }
    }

    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError> {
        let selector = match run_id {
            Some(r) => format!("{}={r}", labels::RUN),
            None => labels::RUN.to_owned(),
        };
        let cleanup = |e: KubeError| RuntimeError::Cleanup { run_id: run_id.unwrap_or("*").to_owned(), source: Box::new(e) };
        if self.own_namespace() {
            // Pods of a namespace go with it; stop following them first.
            self.watches.lock().await.clear();
            self.delete_namespaces(&selector).await.map_err(cleanup)
        } else {
            self.delete_labelled_in(&self.options.namespace, &selector).await.map_err(cleanup)
        }
    }
}
