//! What a resource says about every span under it, read once per resource.

use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::call::DimensionValues;
use crate::normalizer::Normalizer;
use crate::value::{as_label, find_str};

/// Resource-level facts shared by all spans and log records of one `ResourceSpans`/`ResourceLogs`.
#[derive(Debug, Clone, Default)]
pub struct ResourceInfo<'a> {
    /// `service.name`; `None` when absent or the SDK's `unknown_service…` placeholder.
    pub service_name: Option<&'a str>,
    /// The placeholder or nothing, used only when no span names a service either.
    pub fallback_service_name: &'a str,
    pub environment: Option<&'a str>,
    pub dimensions: DimensionValues<'a>,
}

impl Normalizer {
    pub fn resource<'a>(&self, resource: Option<&'a Resource>) -> ResourceInfo<'a> {
        let Some(resource) = resource else {
            return ResourceInfo::default();
        };
        let attributes = &resource.attributes;
        let raw_service = find_str(attributes, "service.name");
        let service_name = raw_service
            .filter(|s| !s.starts_with("unknown_service"))
            .or_else(|| find_str(attributes, "openinference.project.name"));
        let environment = find_str(attributes, "deployment.environment.name")
            .or_else(|| find_str(attributes, "deployment.environment"));
        let mut info = ResourceInfo {
            service_name,
            fallback_service_name: raw_service.unwrap_or(""),
            environment,
            dimensions: Default::default(),
        };
        let mut ranks = [usize::MAX; crate::MAX_DIMENSIONS];
        for kv in attributes {
            let Some(&(index, rank)) = self.dimension_keys.get(kv.key.as_str()) else {
                continue;
            };
            if let Some(value) = kv.value.as_ref().and_then(as_label)
                && rank < ranks[index]
            {
                ranks[index] = rank;
                info.dimensions[index] = Some(value);
            }
        }
        info
    }
}
