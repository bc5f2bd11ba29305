//! Metrics shared by every role, and register-or-get registration.
//!
//! In `redtail demo` three roles share one registry, so the same metric (`redtail_build_info`,
//! `redtail_watcher_redis_up`, the process metrics) is registered more than once. Prometheus
//! answers the second registration with `AlreadyReg`; simply ignoring that would hand the second
//! role a private copy whose values are never exported. [`register`] instead returns the
//! collector that *is* registered in that registry, so every role updates the same series.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, Opts, Registry};

pub use crate::process::ProcessCollector;

/// Metrics every role exports.
#[derive(Debug, Clone)]
pub struct CommonMetrics {
    /// `redtail_build_info{version,role}`, set to 1 by [`CommonMetrics::set_build_info`].
    pub build_info: GaugeVec,
    /// `redtail_watcher_redis_up`: 1 when the last Redis round trip succeeded (watch, subscribe).
    pub redis_up: IntGauge,
}

impl CommonMetrics {
    /// Registers (or finds, if another role already registered them) the common metrics and the
    /// `redtail_process_*` collector in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let build_info = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "redtail_build_info",
                    "Build identity of the running redtail role; always 1.",
                ),
                &["version", "role"],
            )?,
        )?;
        let redis_up = register(
            registry,
            IntGauge::new(
                "redtail_watcher_redis_up",
                "1 when the last Redis round trip succeeded, else 0.",
            )?,
        )?;
        register(registry, ProcessCollector::new()?)?;
        Ok(CommonMetrics {
            build_info,
            redis_up,
        })
    }

    /// Exports `redtail_build_info{version,role} 1`.
    pub fn set_build_info(&self, version: &str, role: &str) {
        self.build_info.with_label_values(&[version, role]).set(1.0);
    }
}

/// Registers `c` in `registry`, or returns the equal collector registered there before.
///
/// "Equal" means the same metric names and constant labels (Prometheus' own identity); if the
/// earlier one was registered through this function and has the same Rust type, that earlier
/// instance is returned so both callers feed one series. If it was registered some other way,
/// it cannot be retrieved: `c` itself is returned, with a warning, because its values would
/// not be exported. A name clash with different labels or help is an error, as in Prometheus.
pub fn register<C>(registry: &Registry, c: C) -> Result<C, prometheus::Error>
where
    C: Collector + Clone + 'static,
{
    let key: Vec<u64> = c.desc().iter().map(|d| d.id).collect();
    // Help text and label names; the id above only covers names and constant labels.
    let shape: Vec<u64> = c.desc().iter().map(|d| d.dim_hash).collect();
    let mut cache = cache().lock().unwrap_or_else(PoisonError::into_inner);
    match registry.register(Box::new(c.clone())) {
        Ok(()) => {
            let id = registry_id(registry, &mut cache)?;
            let entry = Registered {
                shape,
                collector: Box::new(c.clone()),
            };
            cache.by_registry.entry(id).or_default().insert(key, entry);
            Ok(c)
        }
        Err(prometheus::Error::AlreadyReg) => {
            let id = registry_id(registry, &mut cache)?;
            let existing = cache
                .by_registry
                .get(&id)
                .and_then(|collectors| collectors.get(&key));
            match existing {
                Some(existing) if existing.shape != shape => Err(prometheus::Error::Msg(format!(
                    "metric {:?} is already registered with different help or label names",
                    names(&c)
                ))),
                // `None`: same metric name registered as another type (Gauge vs IntGauge…).
                Some(existing) => existing
                    .collector
                    .downcast_ref::<C>()
                    .cloned()
                    .ok_or(prometheus::Error::AlreadyReg),
                None => {
                    tracing::warn!(
                        metrics = ?names(&c),
                        "Metric registered outside redtail_telemetry::metrics::register; this copy is not exported."
                    );
                    Ok(c)
                }
            }
        }
        Err(err) => Err(err),
    }
}

fn names<C: Collector>(c: &C) -> Vec<String> {
    c.desc().iter().map(|d| d.fq_name.clone()).collect()
}

/// A collector registered through [`register`].
struct Registered {
    /// `dim_hash` of each descriptor, to tell a true duplicate from a clash.
    shape: Vec<u64>,
    /// The collector, a `C` in a box.
    collector: Box<dyn Any + Send + Sync>,
}

/// Collectors registered through [`register`], per registry.
#[derive(Default)]
struct Cache {
    /// Identifiers already handed to registries (see [`registry_id`]).
    known_ids: Vec<u64>,
    /// registry id → desc ids of a collector → that collector.
    by_registry: HashMap<u64, HashMap<Vec<u64>, Registered>>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// A stable identifier for `registry`.
///
/// `Registry` exposes no identity, so each registry seen here gets an invisible marker
/// collector carrying a unique id. Registering a known id's marker again answers "is this that
/// registry?": `AlreadyReg` means yes; success means no, and the probe is unregistered again.
fn registry_id(registry: &Registry, cache: &mut Cache) -> Result<u64, prometheus::Error> {
    for &id in &cache.known_ids {
        match registry.register(Box::new(Marker::new(id)?)) {
            Err(prometheus::Error::AlreadyReg) => return Ok(id),
            Ok(()) => registry.unregister(Box::new(Marker::new(id)?))?,
            Err(err) => return Err(err),
        }
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry.register(Box::new(Marker::new(id)?))?;
    cache.known_ids.push(id);
    Ok(id)
}

/// A collector that exports nothing; only its descriptor (name + `id` label) matters.
#[derive(Debug, Clone)]
struct Marker {
    desc: Desc,
}

impl Marker {
    fn new(id: u64) -> Result<Self, prometheus::Error> {
        Ok(Marker {
            desc: Desc::new(
                "redtail_internal_registry_marker".to_string(),
                "Identifies a registry to redtail_telemetry; never exported.".to_string(),
                Vec::new(),
                HashMap::from([("id".to_string(), id.to_string())]),
            )?,
        })
    }
}

impl Collector for Marker {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, IntCounter, TextEncoder};

    fn text(registry: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .expect("encode");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn second_registration_returns_the_registered_collector() {
        let registry = Registry::new();
        let first = register(
            &registry,
            IntCounter::new("redtail_t_a_total", "help").unwrap(),
        )
        .expect("first");
        let second = register(
            &registry,
            IntCounter::new("redtail_t_a_total", "help").unwrap(),
        )
        .expect("second");
        first.inc();
        second.inc_by(2);
        assert_eq!(first.get(), 3);
        assert!(text(&registry).contains("redtail_t_a_total 3"));
        assert!(!text(&registry).contains("marker"));
    }

    #[test]
    fn registries_are_kept_apart() {
        let a = Registry::new();
        let b = Registry::new();
        let in_a = register(&a, IntCounter::new("redtail_t_b_total", "help").unwrap()).unwrap();
        let in_b = register(&b, IntCounter::new("redtail_t_b_total", "help").unwrap()).unwrap();
        in_a.inc();
        assert_eq!(in_b.get(), 0);
        assert!(text(&a).contains("redtail_t_b_total 1"));
        assert!(text(&b).contains("redtail_t_b_total 0"));
        // A registry clone is the same registry.
        let again = register(
            &b.clone(),
            IntCounter::new("redtail_t_b_total", "help").unwrap(),
        )
        .unwrap();
        again.inc();
        assert_eq!(in_b.get(), 1);
    }

    #[test]
    fn type_or_label_conflicts_are_errors() {
        let registry = Registry::new();
        register(&registry, IntGauge::new("redtail_t_c", "help").unwrap()).unwrap();
        let as_gauge = register(
            &registry,
            prometheus::Gauge::new("redtail_t_c", "help").unwrap(),
        );
        assert!(matches!(as_gauge, Err(prometheus::Error::AlreadyReg)));
        let other_help = register(&registry, IntGauge::new("redtail_t_c", "other").unwrap());
        assert!(other_help.is_err());
    }

    #[test]
    fn common_metrics_register_twice_and_export() {
        let registry = Registry::new();
        let watcher = CommonMetrics::register(&registry).expect("first role");
        let subscriber = CommonMetrics::register(&registry).expect("second role");
        watcher.set_build_info("0.1.0", "watch");
        subscriber.set_build_info("0.1.0", "subscribe");
        subscriber.redis_up.set(1);
        assert_eq!(watcher.redis_up.get(), 1);
        let out = text(&registry);
        assert!(
            out.contains(r#"redtail_build_info{role="watch",version="0.1.0"} 1"#),
            "{out}"
        );
        assert!(out.contains(r#"redtail_build_info{role="subscribe",version="0.1.0"} 1"#));
        assert!(out.contains("redtail_watcher_redis_up 1"));
        assert!(out.contains("redtail_process_resident_memory_bytes"));
        assert!(out.contains("# TYPE redtail_process_cpu_seconds_total counter"));
    }
}
